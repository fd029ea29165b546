//! Saving and loading identity keys: every format, file modes, atomic
//! replacement, and the errors for impossible combinations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ricochet_identity::{Generation, IdentityKey, KeyError, KeyFormat, V3IdentityKey};

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_format_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (Generation::V3, KeyFormat::TorKeyBlob),
        (Generation::V3, KeyFormat::Ed25519Seed),
        (Generation::V2, KeyFormat::TorKeyBlob),
        (Generation::V2, KeyFormat::Pkcs1Pem),
    ];
    for (i, (generation, format)) in cases.into_iter().enumerate() {
        let key = IdentityKey::generate(generation).unwrap();
        let path = dir.path().join(format!("identity-{i}"));
        key.save(&path, format).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600, "{generation} {format}");
        let loaded = IdentityKey::load(&path).unwrap();
        assert_eq!(
            loaded.service_id(),
            key.service_id(),
            "{generation} {format}"
        );
        assert_eq!(loaded.generation(), generation);
        let contents = std::fs::read(&path).unwrap();
        match format {
            KeyFormat::Ed25519Seed => assert_eq!(contents.len(), 32),
            KeyFormat::Pkcs1Pem => {
                assert!(contents.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"))
            }
            _ => assert!(contents.starts_with(b"ED25519-V3:") || contents.starts_with(b"RSA1024:")),
        }
    }
}

#[test]
fn saving_replaces_the_old_file_and_keeps_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity");
    std::fs::write(&path, "old contents").unwrap();
    let key = IdentityKey::generate(Generation::V3).unwrap();
    key.save(&path, KeyFormat::TorKeyBlob).unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        IdentityKey::load(&path).unwrap().service_id(),
        key.service_id()
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn impossible_formats_are_refused() {
    let v3 = IdentityKey::generate(Generation::V3).unwrap();
    assert!(matches!(
        v3.encode(KeyFormat::Pkcs1Pem),
        Err(KeyError::FormatMismatch { .. })
    ));
    let v2 = IdentityKey::generate(Generation::V2).unwrap();
    assert!(matches!(
        v2.encode(KeyFormat::Ed25519Seed),
        Err(KeyError::FormatMismatch { .. })
    ));
    // A key that came from Tor has no seed to save.
    let blob = v3.to_tor_key_blob().unwrap();
    let from_tor = IdentityKey::V3(V3IdentityKey::from_tor_key_blob(&blob).unwrap());
    assert!(matches!(
        from_tor.encode(KeyFormat::Ed25519Seed),
        Err(KeyError::SeedUnavailable)
    ));
}

#[test]
fn bad_key_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert!(matches!(
        IdentityKey::load(&missing),
        Err(KeyError::Io { .. })
    ));
    type Expectation = fn(&KeyError) -> bool;
    let cases: [(&[u8], Expectation); 5] = [
        (b"hello", |e| matches!(e, KeyError::UnrecognizedFormat)),
        (b"ED25519-V3:!!!!", |e| matches!(e, KeyError::Base64(_))),
        (b"ED25519-V3:AAAA", |e| {
            matches!(e, KeyError::ExpandedKeyLength { len: 3 })
        }),
        (b"RSA1024:AAAA", |e| {
            matches!(e, KeyError::MalformedRsaKey(_))
        }),
        (
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            |e| matches!(e, KeyError::MalformedRsaKey(_)),
        ),
    ];
    for (bytes, expected) in cases {
        let err = IdentityKey::decode(bytes).unwrap_err();
        assert!(
            expected(&err),
            "{:?}: {err:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let v3 = V3IdentityKey::from_seed(&[0x42; 32]);
    let blob = v3.to_tor_key_blob();
    let base64_part = blob.strip_prefix("ED25519-V3:").unwrap();
    let debug = format!("{:?}", IdentityKey::V3(v3));
    assert!(debug.contains("<redacted>"));
    assert!(!debug.contains(base64_part));
    assert!(!debug.contains("42, 42") && !debug.contains("4242"));

    let v2 = IdentityKey::generate(Generation::V2).unwrap();
    let pem = v2.encode(KeyFormat::Pkcs1Pem).unwrap();
    let pem = std::str::from_utf8(&pem).unwrap();
    let debug = format!("{v2:?}");
    assert!(debug.contains("<redacted>"));
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!debug.contains(line));
    }
    assert!(!debug.contains("BoxedUint"), "no big integers in {debug}");
}
