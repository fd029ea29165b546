//! Key-file decoding (Tor blobs, PEM, seeds): never panics; a key that
//! decodes re-encodes to a blob that decodes to the same identity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_identity::{IdentityKey, KeyFormat};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = IdentityKey::decode(data) {
        let blob = key
            .encode(KeyFormat::TorKeyBlob)
            .expect("a decoded key encodes");
        let again = IdentityKey::decode(&blob).expect("our own blob decodes");
        assert_eq!(again.service_id(), key.service_id());
    }
});
