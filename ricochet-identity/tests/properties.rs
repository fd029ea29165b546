//! Property tests: ids round-trip through text, proofs verify, and any
//! flipped bit anywhere in a proof's inputs makes verification fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use proptest::prelude::*;
use ricochet_identity::{
    AuthCookies, AuthProof, IdentityKey, RicochetId, ServiceId, V2IdentityKey, V2ServiceId,
    V3IdentityKey, V3ServiceId,
};

/// RSA key generation takes a while, so the v2 properties share a few keys
/// made once from OS randomness.
fn rsa_keys() -> &'static [V2IdentityKey] {
    static KEYS: OnceLock<Vec<V2IdentityKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..3).map(|_| V2IdentityKey::generate().unwrap()).collect())
}

fn flip(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

fn cookies_strategy() -> impl Strategy<Value = AuthCookies> {
    (any::<[u8; 16]>(), any::<[u8; 16]>())
        .prop_map(|(client, server)| AuthCookies { client, server })
}

/// The five inputs of a proof check, as byte strings, so that one bit of
/// any of them can be flipped.
struct ProofInputs {
    cookies: AuthCookies,
    signature: Vec<u8>,
    key: Vec<u8>,
    server: Vec<u8>,
}

impl ProofInputs {
    fn flip(&mut self, field: usize, bit: usize) {
        match field % 5 {
            0 => flip(&mut self.cookies.client, bit),
            1 => flip(&mut self.cookies.server, bit),
            2 => flip(&mut self.signature, bit),
            3 => flip(&mut self.key, bit),
            _ => flip(&mut self.server, bit),
        }
    }
}

proptest! {
    #[test]
    fn v3_ids_round_trip(seed in any::<[u8; 32]>()) {
        let id = ServiceId::V3(V3IdentityKey::from_seed(&seed).service_id());
        let text = id.to_string();
        prop_assert_eq!(text.len(), 56);
        prop_assert_eq!(text.parse::<ServiceId>().unwrap(), id);
        prop_assert_eq!(ServiceId::from_canonical(&text).unwrap(), id);
        let ricochet = RicochetId(id).to_string();
        prop_assert_eq!(ricochet.parse::<RicochetId>().unwrap(), RicochetId(id));
        let pasted = format!("  {}.ONION\n", ricochet.to_uppercase());
        prop_assert_eq!(pasted.parse::<ServiceId>().unwrap(), id);
    }

    #[test]
    fn v2_ids_round_trip(digest in any::<[u8; 10]>()) {
        let id = ServiceId::V2(V2ServiceId::from_bytes(digest));
        let text = id.to_string();
        prop_assert_eq!(text.len(), 16);
        prop_assert_eq!(text.parse::<ServiceId>().unwrap(), id);
        prop_assert_eq!(format!("torsion:{text}").parse::<ServiceId>().unwrap(), id);
        prop_assert_eq!(RicochetId(id).to_string().parse::<RicochetId>().unwrap(), RicochetId(id));
    }

    #[test]
    fn any_flipped_bit_in_a_v3_checksum_or_version_is_caught(
        seed in any::<[u8; 32]>(),
        bit in (52usize * 5)..(56 * 5),
    ) {
        // Characters 52..56 encode only checksum and version bits, so every
        // flip there must be caught (a flip in the key part is caught by the
        // checksum only with probability 1 - 2^-16, and by the proof always).
        let id = V3IdentityKey::from_seed(&seed).service_id().to_string();
        let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut chars = id.into_bytes();
        let (pos, shift) = (bit / 5, bit % 5);
        let value = alphabet.iter().position(|&c| c == chars[pos]).unwrap();
        chars[pos] = alphabet[value ^ (1 << shift)];
        let damaged = String::from_utf8(chars).unwrap();
        prop_assert!(damaged.parse::<ServiceId>().is_err(), "{damaged} parsed");
    }

    #[test]
    fn v3_sign_verify_and_bit_flips(
        client_seed in any::<[u8; 32]>(),
        server_seed in any::<[u8; 32]>(),
        cookies in cookies_strategy(),
        field in 0usize..5,
        bit in any::<usize>(),
    ) {
        let client = V3IdentityKey::from_seed(&client_seed);
        let server = V3IdentityKey::from_seed(&server_seed).service_id();
        let proof = client.auth_proof(&cookies, &server);
        prop_assert_eq!(
            proof.verify(&cookies, &ServiceId::V3(server)).unwrap(),
            ServiceId::V3(client.service_id())
        );

        let AuthProof::V3 { signature, service_id } = proof else { unreachable!() };
        let mut inputs = ProofInputs {
            cookies,
            signature,
            key: service_id.into_bytes(),
            server: server.to_string().into_bytes(),
        };
        inputs.flip(field, bit);
        let rejected = match (String::from_utf8(inputs.key), String::from_utf8(inputs.server)) {
            (Ok(service_id), Ok(server)) => match V3ServiceId::from_canonical(&server) {
                Ok(server) => ricochet_identity::verify_v3_proof(
                    &inputs.signature, &service_id, &inputs.cookies, &server,
                ).is_err(),
                Err(_) => true,
            },
            // Not UTF-8: the protobuf string field would not even decode.
            _ => true,
        };
        prop_assert!(rejected);
    }

    #[test]
    fn v2_sign_verify_and_bit_flips(
        client_index in 0usize..3,
        server_digest in any::<[u8; 10]>(),
        cookies in cookies_strategy(),
        field in 0usize..5,
        bit in any::<usize>(),
    ) {
        let client = &rsa_keys()[client_index];
        let server = V2ServiceId::from_bytes(server_digest);
        let proof = client.auth_proof(&cookies, &server).unwrap();
        prop_assert_eq!(
            proof.verify(&cookies, &ServiceId::V2(server)).unwrap(),
            ServiceId::V2(client.service_id())
        );

        let AuthProof::V1 { public_key, signature } = proof else { unreachable!() };
        let mut inputs = ProofInputs {
            cookies,
            signature,
            key: public_key,
            server: server_digest.to_vec(),
        };
        inputs.flip(field, bit);
        let server = V2ServiceId::from_bytes(inputs.server.try_into().unwrap());
        prop_assert!(ricochet_identity::verify_v1_proof(
            &inputs.key, &inputs.signature, &inputs.cookies, &server,
        ).is_err());
    }

    #[test]
    fn parsers_never_panic(text in ".{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = text.parse::<ServiceId>();
        let _ = ServiceId::from_canonical(&text);
        let _ = IdentityKey::decode(&bytes);
        let _ = IdentityKey::decode(text.as_bytes());
        let _ = IdentityKey::from_tor_key_blob(&format!("ED25519-V3:{text}"));
        let _ = IdentityKey::from_tor_key_blob(&format!("RSA1024:{text}"));
        let cookies = AuthCookies { client: [0; 16], server: [1; 16] };
        let server = V2ServiceId::from_bytes([2; 10]);
        let split = bytes.len() / 2;
        prop_assert!(ricochet_identity::verify_v1_proof(
            &bytes[..split], &bytes[split..], &cookies, &server
        ).is_err());
    }
}

#[test]
fn generated_keys_have_the_right_shape() {
    for key in rsa_keys() {
        assert_eq!(key.public_key_der().len(), 140);
        assert_eq!(key.service_id().to_string().len(), 16);
    }
    let a = V3IdentityKey::generate().unwrap();
    let b = V3IdentityKey::generate().unwrap();
    assert_ne!(
        a.service_id(),
        b.service_id(),
        "OS randomness gives distinct keys"
    );
    assert!(a.seed().is_some());
}

#[test]
fn wrong_generation_proofs_are_rejected() {
    let v3 = V3IdentityKey::from_seed(&[9; 32]);
    let v2 = &rsa_keys()[0];
    let cookies = AuthCookies {
        client: [1; 16],
        server: [2; 16],
    };
    let v2_server = ServiceId::V2(v2.service_id());
    let v3_server = ServiceId::V3(v3.service_id());
    assert!(
        IdentityKey::V3(V3IdentityKey::from_seed(&[9; 32]))
            .auth_proof(&cookies, &v2_server)
            .is_err()
    );
    let v3_proof = v3.auth_proof(&cookies, &v3.service_id());
    assert!(v3_proof.verify(&cookies, &v2_server).is_err());
    let v2_proof = v2.auth_proof(&cookies, &v2.service_id()).unwrap();
    assert!(v2_proof.verify(&cookies, &v3_server).is_err());
    assert!(ricochet_identity::proof_hmac(&cookies, &v2_server, &v3_server).is_err());
}
