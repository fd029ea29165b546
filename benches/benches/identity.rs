//! Signing and verifying the authentication proof (spec §7) for both
//! generations, plus id parsing.
//!
//! `cargo bench -p ricochet-benches --bench identity`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use ricochet_identity::{AuthCookies, ServiceId, V2IdentityKey, V3IdentityKey};
use std::hint::black_box;

const COOKIES: AuthCookies = AuthCookies {
    client: [0x11; 16],
    server: [0x22; 16],
};

fn v3(c: &mut Criterion) {
    let client = V3IdentityKey::from_seed(&[1; 32]);
    let server = V3IdentityKey::from_seed(&[2; 32]).service_id();
    let proof = client.auth_proof(&COOKIES, &server);
    let server_id = ServiceId::V3(server);
    let mut group = c.benchmark_group("v3-ed25519");
    group.bench_function("sign-proof", |b| {
        b.iter(|| client.auth_proof(black_box(&COOKIES), black_box(&server)))
    });
    group.bench_function("verify-proof", |b| {
        b.iter(|| {
            proof
                .verify(black_box(&COOKIES), black_box(&server_id))
                .unwrap()
        })
    });
    let text = server.to_string();
    group.bench_function("parse-id", |b| {
        b.iter(|| black_box(&text).parse::<ServiceId>().unwrap())
    });
    group.finish();
}

fn v2(c: &mut Criterion) {
    let client = V2IdentityKey::generate().unwrap();
    let server = V2IdentityKey::generate().unwrap().service_id();
    let proof = client.auth_proof(&COOKIES, &server).unwrap();
    let server_id = ServiceId::V2(server);
    let mut group = c.benchmark_group("v2-rsa1024");
    group.bench_function("sign-proof", |b| {
        b.iter(|| {
            client
                .auth_proof(black_box(&COOKIES), black_box(&server))
                .unwrap()
        })
    });
    group.bench_function("verify-proof", |b| {
        b.iter(|| {
            proof
                .verify(black_box(&COOKIES), black_box(&server_id))
                .unwrap()
        })
    });
    let text = server.to_string();
    group.bench_function("parse-id", |b| {
        b.iter(|| black_box(&text).parse::<ServiceId>().unwrap())
    });
    group.finish();
}

criterion_group!(benches, v3, v2);
criterion_main!(benches);
