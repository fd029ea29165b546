//! Every identity vector of spec §14.1–§14.4, read from `tests/data/`,
//! checked byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{data, record, records, table};
use ricochet_identity::{
    AuthCookies, AuthProof, Generation, IdentityKey, RicochetId, ServiceId, ServiceIdError,
    V2IdentityKey, V2ServiceId, V3IdentityKey, V3ServiceId, proof_hmac, verify_v1_proof,
    verify_v3_proof,
};
use sha1::{Digest as _, Sha1};

fn alice() -> V2IdentityKey {
    let alice = record("v2_identities.txt", "alice");
    V2IdentityKey::from_pkcs1_pem(&data(alice.get("private_key_pem_file"))).unwrap()
}

fn cookies(record: &common::Record) -> AuthCookies {
    AuthCookies {
        client: record.hex_array("client_cookie"),
        server: record.hex_array("server_cookie"),
    }
}

#[test]
fn v2_identities() {
    for r in records("v2_identities.txt") {
        let der = r.hex("public_der");
        assert_eq!(
            der.len(),
            140,
            "[{}] PKCS#1 DER of RSA-1024 is 140 bytes",
            r.name
        );
        assert_eq!(Sha1::digest(&der).as_slice(), r.hex("sha1"), "[{}]", r.name);
        let id = V2ServiceId::from_public_key_der(&der);
        assert_eq!(id.as_bytes()[..], r.hex("sha1")[..10], "[{}]", r.name);
        assert_eq!(id.to_string(), r.get("service_id"), "[{}]", r.name);
        assert_eq!(
            ServiceId::V2(id).ricochet_id().to_string(),
            r.get("ricochet_id")
        );
        let parsed: ServiceId = r.get("ricochet_id").parse().unwrap();
        assert_eq!(parsed, ServiceId::V2(id));
        assert_eq!(parsed.generation(), Generation::V2);
    }
}

#[test]
fn v2_private_key_formats() {
    let r = record("v2_identities.txt", "alice");
    let pem = data(r.get("private_key_pem_file"));
    let key = alice();
    assert_eq!(key.public_key_der(), r.hex("public_der"));
    assert_eq!(key.service_id().to_string(), r.get("service_id"));
    // PEM out is byte-identical to what OpenSSL (Ricochet 1.1) wrote.
    assert_eq!(key.to_pkcs1_pem().unwrap().as_str(), pem);
    // Tor's RSA1024 blob round-trips, and is base64 of the DER.
    let blob = key.to_tor_key_blob().unwrap();
    assert!(blob.starts_with("RSA1024:"));
    let again = IdentityKey::from_tor_key_blob(&blob).unwrap();
    assert_eq!(again.service_id(), ServiceId::V2(key.service_id()));
    let from_der = V2IdentityKey::from_pkcs1_der(&key.to_pkcs1_der().unwrap()).unwrap();
    assert_eq!(from_der.service_id(), key.service_id());
    // Format detection on file contents.
    let decoded = IdentityKey::decode(pem.as_bytes()).unwrap();
    assert_eq!(decoded.ricochet_id().to_string(), r.get("ricochet_id"));
}

#[test]
fn v2_auth_proof() {
    let r = record("v2_proof.txt", "alice-to-bob");
    let alice_id: ServiceId = record("v2_identities.txt", "alice")
        .get("service_id")
        .parse()
        .unwrap();
    let bob_id: ServiceId = record("v2_identities.txt", "bob")
        .get("service_id")
        .parse()
        .unwrap();
    assert_eq!(format!("{alice_id}{bob_id}"), r.get("hmac_message"));
    let cookies = cookies(&r);
    let hmac = proof_hmac(&cookies, &alice_id, &bob_id).unwrap();
    assert_eq!(hmac.to_vec(), r.hex("proof"));

    let key = IdentityKey::V2(alice());
    let proof = key.auth_proof(&cookies, &bob_id).unwrap();
    let expected = AuthProof::V1 {
        public_key: record("v2_identities.txt", "alice").hex("public_der"),
        signature: r.hex("signature"),
    };
    assert_eq!(proof, expected, "RSA PKCS#1 v1.5 signing is deterministic");

    let ServiceId::V2(bob) = bob_id else {
        unreachable!()
    };
    let AuthProof::V1 {
        public_key,
        signature,
    } = &expected
    else {
        unreachable!()
    };
    let verified = verify_v1_proof(public_key, signature, &cookies, &bob).unwrap();
    assert_eq!(ServiceId::V2(verified), alice_id);
    assert_eq!(expected.verify(&cookies, &bob_id).unwrap(), alice_id);
}

#[test]
fn v3_identities() {
    for r in records("v3_identities.txt") {
        let key = V3IdentityKey::from_seed(&r.hex_array("seed"));
        assert_eq!(
            key.public_key().as_bytes().to_vec(),
            r.hex("public_key"),
            "[{}]",
            r.name
        );
        let id = key.service_id();
        assert_eq!(id.to_string(), r.get("service_id"), "[{}]", r.name);
        let raw = base32::decode(
            base32::Alphabet::Rfc4648Lower { padding: false },
            r.get("service_id"),
        )
        .unwrap();
        assert_eq!(raw[32..34], r.hex("checksum")[..], "[{}] checksum", r.name);
        assert_eq!(raw[34], 3, "[{}] version byte", r.name);
        let parsed: V3ServiceId = r.get("service_id").parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.public_key_bytes().to_vec(), r.hex("public_key"));
        assert_eq!(
            RicochetId(ServiceId::V3(id)).to_string(),
            format!("ricochet:{}", r.get("service_id"))
        );
    }
}

#[test]
fn v3_tor_key_blob() {
    let r = record("v3_identities.txt", "key1");
    let from_seed = V3IdentityKey::from_seed(&r.hex_array("seed"));
    assert_eq!(from_seed.to_tor_key_blob().as_str(), r.get("tor_key_blob"));
    let from_blob = V3IdentityKey::from_tor_key_blob(r.get("tor_key_blob")).unwrap();
    assert_eq!(from_blob.service_id().to_string(), r.get("service_id"));
    assert_eq!(from_blob.seed(), None, "Tor does not keep the seed");
    assert_eq!(from_blob.to_tor_key_blob().as_str(), r.get("tor_key_blob"));
    let decoded = IdentityKey::decode(r.get("tor_key_blob").as_bytes()).unwrap();
    assert_eq!(decoded.generation(), Generation::V3);
    let seed_file = IdentityKey::decode(&r.hex("seed")).unwrap();
    assert_eq!(seed_file.service_id(), decoded.service_id());
}

#[test]
fn v3_auth_proof() {
    let r = record("v3_proof.txt", "key1-to-key2");
    let key1 = record("v3_identities.txt", "key1");
    let key2 = record("v3_identities.txt", "key2");
    let client_id: ServiceId = key1.get("service_id").parse().unwrap();
    let server_id: ServiceId = key2.get("service_id").parse().unwrap();
    assert_eq!(format!("{client_id}{server_id}"), r.get("hmac_message"));
    let cookies = cookies(&r);
    assert_eq!(
        proof_hmac(&cookies, &client_id, &server_id)
            .unwrap()
            .to_vec(),
        r.hex("proof")
    );

    let expected = AuthProof::V3 {
        signature: r.hex("signature"),
        service_id: key1.get("service_id").to_owned(),
    };
    // A key known only in expanded form (Tor / Ricochet Refresh) signs the
    // same bytes as the key made from its seed.
    for key in [
        V3IdentityKey::from_tor_key_blob(key1.get("tor_key_blob")).unwrap(),
        V3IdentityKey::from_seed(&key1.hex_array("seed")),
    ] {
        let proof = IdentityKey::V3(key)
            .auth_proof(&cookies, &server_id)
            .unwrap();
        assert_eq!(proof, expected);
    }

    let ServiceId::V3(server) = server_id else {
        unreachable!()
    };
    let verified = verify_v3_proof(
        &r.hex("signature"),
        key1.get("service_id"),
        &cookies,
        &server,
    )
    .unwrap();
    assert_eq!(ServiceId::V3(verified), client_id);
    assert_eq!(expected.verify(&cookies, &server_id).unwrap(), client_id);
}

#[test]
fn lenient_parse_accepts_pasted_forms() {
    for (input, canonical) in table("service_ids_valid.txt") {
        let id: ServiceId = input
            .parse()
            .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
        assert_eq!(id.to_string(), canonical, "{input:?}");
        let ricochet: RicochetId = input.parse().unwrap();
        assert_eq!(ricochet.to_string(), format!("ricochet:{canonical}"));
        assert_eq!(ServiceId::from_canonical(&canonical).unwrap(), id);
    }
}

#[test]
fn malformed_ids_are_rejected_with_their_reason() {
    let rows = table("service_ids_invalid.txt");
    assert!(rows.len() >= 20);
    for (input, variant) in rows {
        let err = input
            .parse::<ServiceId>()
            .expect_err(&format!("{input:?} must not parse"));
        let debug = format!("{err:?}");
        assert!(
            debug == variant || debug.starts_with(&format!("{variant} ")),
            "{input:?}: expected {variant}, got {debug}"
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn error_details_name_the_problem() {
    assert_eq!(
        "mi5b77eu3d4o3tk1".parse::<ServiceId>().unwrap_err(),
        ServiceIdError::BadCharacter {
            character: '1',
            position: 16
        }
    );
    assert_eq!(
        "ricochet:abc".parse::<ServiceId>().unwrap_err(),
        ServiceIdError::BadLength { len: 3 }
    );
    assert_eq!(
        "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sie"
            .parse::<ServiceId>()
            .unwrap_err(),
        ServiceIdError::BadVersion { version: 4 }
    );
}

#[test]
fn generation_specific_and_canonical_parsing() {
    let v2 = "mi5b77eu3d4o3tk6";
    let v3 = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid";
    assert_eq!(
        v2.parse::<V3ServiceId>().unwrap_err(),
        ServiceIdError::WrongGeneration {
            expected: Generation::V3,
            found: Generation::V2
        }
    );
    assert_eq!(
        v3.parse::<V2ServiceId>().unwrap_err(),
        ServiceIdError::WrongGeneration {
            expected: Generation::V2,
            found: Generation::V3
        }
    );
    assert!(V2ServiceId::from_canonical(v2).is_ok());
    assert!(V3ServiceId::from_canonical(v3).is_ok());
    for not_canonical in [
        format!("{v3}.onion"),
        format!("ricochet:{v3}"),
        v3.to_uppercase(),
        format!(" {v3}"),
        format!("{v3}\n"),
    ] {
        assert_eq!(
            V3ServiceId::from_canonical(&not_canonical).unwrap_err(),
            ServiceIdError::NotCanonical,
            "{not_canonical:?}"
        );
    }
    assert_eq!(
        V3ServiceId::from_canonical(&v3[..55]).unwrap_err(),
        ServiceIdError::BadLength { len: 55 }
    );
}
