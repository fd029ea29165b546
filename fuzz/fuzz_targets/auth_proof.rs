//! Proof verification on attacker-chosen fields (§7.1, §7.2): never panics
//! and never accepts a forged proof.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_identity::{
    AuthCookies, V2ServiceId, V3IdentityKey, verify_v1_proof, verify_v3_proof,
};

fuzz_target!(|data: &[u8]| {
    // Layout: 32 bytes of cookies, one byte splitting the rest into two fields.
    let Some((cookie_bytes, rest)) = data.split_at_checked(32) else {
        return;
    };
    let Some((&split, fields)) = rest.split_first() else {
        return;
    };
    let (first, second) = fields.split_at(usize::from(split).min(fields.len()));
    let mut client = [0; 16];
    let mut server = [0; 16];
    client.copy_from_slice(&cookie_bytes[..16]);
    server.copy_from_slice(&cookie_bytes[16..]);
    let cookies = AuthCookies { client, server };

    let v2_server = V2ServiceId::from_bytes([0x5a; 10]);
    assert!(verify_v1_proof(first, second, &cookies, &v2_server).is_err());
    assert!(verify_v1_proof(second, first, &cookies, &v2_server).is_err());

    let v3_server = V3IdentityKey::from_seed(&[7; 32]).service_id();
    if let Ok(service_id) = std::str::from_utf8(second) {
        assert!(verify_v3_proof(first, service_id, &cookies, &v3_server).is_err());
    }
});
