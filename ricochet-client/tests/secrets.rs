//! Secrets stay secret: no identity key, private service key or
//! client-authorization seed in logs (at TRACE level) or in
//! `Debug` output, and the profile is private on disk (a profile directory
//! that was open to others is made private).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{befriend, start_with};
use ricochet_client::transport::tcp::Directory;

/// Collects everything logged, from every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The secrets stored in a profile: the secret parts of the Tor key blobs
/// (identities and the private service), and the seed of our
/// client-authorization keys.
fn stored_secrets(profile: &std::path::Path) -> Vec<String> {
    let db = rusqlite::Connection::open(profile.join(ricochet_client::PROFILE_DATABASE)).unwrap();
    let mut query = db
        .prepare(
            "SELECT key FROM identities
             UNION ALL SELECT service_key FROM private_mode
             UNION ALL SELECT client_auth_seed FROM private_mode",
        )
        .unwrap();
    query
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|blob| {
            let blob = blob.unwrap();
            let secret = blob
                .split_once(':')
                .map_or(blob.as_str(), |(_, secret)| secret);
            secret.trim().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_logs_or_debug_output_and_files_are_private() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    // Bob's profile directory exists already, open to everyone: the client
    // makes it private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(&bob_dir).unwrap();
        std::fs::set_permissions(&bob_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // v2 too: RSA keys are the longest secrets.
    let mut alice = start_with(&alice_dir, &directory, |b| b.v2_identity(true)).await;
    let mut bob = start_with(&bob_dir, &directory, |b| b.v2_identity(true)).await;
    befriend(&mut alice, &mut bob).await;
    let mut hi = alice.client.send_message(bob.id(), "hi").await.unwrap();
    hi.finished().await;
    let debug = format!("{:?} {:?} {:?}", alice.client, bob.client, hi);
    alice.client.shutdown().await;
    bob.client.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("DEBUG") || logs.contains("TRACE"),
        "nothing was logged"
    );
    let secrets: Vec<String> = [&alice_dir, &bob_dir]
        .iter()
        .flat_map(|profile| stored_secrets(profile))
        .collect();
    assert_eq!(
        secrets.len(),
        8,
        "a v3 and a v2 identity key, a private service key and a seed per profile"
    );
    for secret in &secrets {
        // Any 24-character piece of the base64 secret would be a leak.
        for start in (0..secret.len().saturating_sub(24)).step_by(24) {
            let piece = &secret[start..start + 24];
            assert!(!logs.contains(piece), "a key leaked into the logs");
            assert!(!debug.contains(piece), "a key leaked into Debug output");
        }
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for profile in [&alice_dir, &bob_dir] {
            let mode = |path: &std::path::Path| {
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777
            };
            assert_eq!(mode(profile), 0o700, "profile directory");
            for entry in std::fs::read_dir(profile).unwrap() {
                let path = entry.unwrap().path();
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
        }
    }
}
