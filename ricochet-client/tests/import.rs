//! Importing a Ricochet Refresh 3.x profile (`tests/data/refresh-3.0`, see
//! its README): the user keeps their id and contacts, and their pending
//! request goes out again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::start_with;
use ricochet_client::transport::tcp::Directory;
use ricochet_client::{
    ClientBuilder, ClientError, ContactStatus, IdentityKey, ImportError, RicochetId,
};
use ricochet_identity::V3IdentityKey;

const OWN: &str = "byjlgk3cwshf5ucnxrylebuj75kt3fppyjubbeslqybibcmcb5iiroqd";
const ALICE: &str = "r63d7hy3kxk7nairtmmrezzkaotyh7t4yxk7lnsybf4ugiq5zml52cyd";
const BOB: &str = "wzvaiv7maqfgthd6nsl5t5dknac2dziblngkhqrruwd2ydrby5wpfpqd";
const DANIELLE: &str = "akielcykeck3ztujozpmrmhhgalp7nzkatohhindlkxoosrpuo55bgqd";
/// Danielle's seed (N = 3 in the data's README).
const DANIELLE_SEED: &str = "e446c73fc4781666123cd09934831c6dc4c0653e1063a6a7c6c1e3457ddc37dc";
const ASKS_US: &str = "km4f33gnqiie6bwesaizi72fqqfo26wgnt3f6473pb4lrw5nt22yfdyd";
const BLOCKED: &str = "7hfnftkfcudbzcqcqnkmtrjgrqoahxtq2wr3li3ugnki2647ve7jgjad";
const REFUSED_US: &str = "losi2qlzo4vw7oc5hnmpbxntjo7ugrec4xdewbowvrwita2vzuedz2qd";

fn id(text: &str) -> RicochetId {
    text.parse().unwrap()
}

/// A copy of the Refresh profile directory in `dir`.
fn refresh_profile(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/refresh-3.0");
    let copy = dir.join("ricochet-refresh");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(source.join("ricochet.json"), copy.join("ricochet.json")).unwrap();
    copy
}

fn seed(hex: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_profile_keeps_its_id_and_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let refresh = refresh_profile(dir.path());
    let original = std::fs::read(refresh.join("ricochet.json")).unwrap();
    let directory = Directory::new();
    let profile = dir.path().join("imported");

    // Danielle is online; our request to her, pending in Refresh, goes out
    // again (without a message, as Refresh sends it).
    let danielle_key = IdentityKey::V3(V3IdentityKey::from_seed(&seed(DANIELLE_SEED)));
    let mut danielle = start_with(&dir.path().join("danielle"), &directory, |b| {
        b.identity(danielle_key)
    })
    .await;
    assert_eq!(danielle.id(), id(DANIELLE));

    let me = start_with(&profile, &directory, |b| {
        b.nickname("me").import_refresh_profile(&refresh)
    })
    .await;
    assert_eq!(me.id(), id(OWN));
    let listed: Vec<(String, RicochetId, ContactStatus)> = me
        .client
        .contacts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.nickname, c.id, c.status))
        .collect();
    let expected = [
        ("alice", ALICE, ContactStatus::Offline),
        ("alice (2)", REFUSED_US, ContactStatus::Rejected),
        ("bob", BOB, ContactStatus::Offline),
        ("danielle", DANIELLE, ContactStatus::RequestPending),
    ];
    for (nickname, contact, status) in expected {
        assert!(
            listed
                .iter()
                .any(|(n, c, s)| n == nickname && *c == id(contact) && *s == status),
            "{nickname} {contact} {status} not in {listed:?}"
        );
    }
    assert_eq!(listed.len(), 4, "{listed:?}");
    let requests = me.client.contact_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].from, id(ASKS_US));
    assert_eq!(me.client.blocked().await.unwrap(), [id(BLOCKED)]);

    let request = danielle.expect_request().await;
    assert_eq!(request.sender(), id(OWN));
    assert_eq!(request.request().nickname, "me");
    assert_eq!(request.request().message, "");
    me.client.shutdown().await;

    // The Refresh profile is only read.
    assert_eq!(
        std::fs::read(refresh.join("ricochet.json")).unwrap(),
        original
    );

    // Starting again with the same import changes nothing.
    let again = start_with(&profile, &directory, |b| b.import_refresh_profile(&refresh)).await;
    assert_eq!(again.id(), id(OWN));
    assert_eq!(again.client.contacts().await.unwrap().len(), 4);
    again.client.shutdown().await;

    // A profile with another identity does not take it.
    let other = dir.path().join("other");
    start_with(&other, &directory, |b| b)
        .await
        .client
        .shutdown()
        .await;
    let Err(error) = ClientBuilder::new(&other)
        .transport(ricochet_client::transport::tcp::TcpTransport::new(
            directory.clone(),
        ))
        .import_refresh_profile(refresh.join("ricochet.json"))
        .start()
        .await
    else {
        panic!("an import into a used profile must fail");
    };
    assert!(
        matches!(
            &error,
            ClientError::Import(ImportError::ProfileInUse { theirs, .. }) if **theirs == id(OWN)
        ),
        "{}",
        ricochet_client::ErrorChain(&error)
    );
    danielle.client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_refresh_profiles_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let start = |profile: PathBuf, refresh: PathBuf| async move {
        ClientBuilder::new(profile)
            .transport(ricochet_client::transport::tcp::TcpTransport::new(
                Directory::new(),
            ))
            .import_refresh_profile(refresh)
            .start()
            .await
            .map(drop)
    };
    let missing = start(dir.path().join("a"), dir.path().join("nowhere")).await;
    assert!(
        matches!(missing, Err(ClientError::Import(ImportError::Read { .. }))),
        "{missing:?}"
    );
    let file = dir.path().join("ricochet.json");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/refresh-3.0/ricochet.json"),
    )
    .unwrap();
    std::fs::write(&file, text.replace("\"allowed\"", "\"friend\"")).unwrap();
    let unknown = start(dir.path().join("b"), file.clone()).await;
    assert!(
        matches!(
            unknown,
            Err(ClientError::Import(ImportError::UnknownType { .. }))
        ),
        "{unknown:?}"
    );
    // A failed import leaves nothing behind: no profile directory, no
    // database.
    for profile in ["a", "b"] {
        assert!(
            !dir.path().join(profile).exists(),
            "{profile} was left behind"
        );
    }
    let retry = start_with(&dir.path().join("b"), &Directory::new(), |b| b).await;
    assert_ne!(retry.id(), id(OWN));
    retry.client.shutdown().await;

    // Refresh writes an empty key until it has one: no identity yet.
    let empty = serde_json::json!({"identity": {"privateKey": ""}, "users": {}});
    std::fs::write(&file, empty.to_string()).unwrap();
    let no_key = start(dir.path().join("c"), file.clone()).await;
    assert!(
        matches!(no_key, Err(ClientError::Import(ImportError::NoIdentity))),
        "{no_key:?}"
    );
    assert!(!dir.path().join("c").exists());
}

/// A Refresh that runs on the profile holds its lock file (`QLockFile`,
/// with an `flock`): it is named, and nothing is imported; a stale lock
/// file (nobody holds it) is no obstacle.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_refresh_is_named() {
    use rustix::fs::{FlockOperation, flock};
    let dir = tempfile::tempdir().unwrap();
    let refresh = refresh_profile(dir.path());
    let lock_path = refresh.join("ricochet.json.lock");
    std::fs::write(&lock_path, "4242\nricochet-refresh\nhost\n").unwrap();
    let lock = std::fs::File::open(&lock_path).unwrap();
    flock(&lock, FlockOperation::NonBlockingLockExclusive).unwrap();
    let start = || {
        ClientBuilder::new(dir.path().join("imported"))
            .transport(ricochet_client::transport::tcp::TcpTransport::new(
                Directory::new(),
            ))
            .import_refresh_profile(&refresh)
            .start()
    };
    let Err(error) = start().await else {
        panic!("imported while Refresh runs");
    };
    let ClientError::Import(ImportError::RefreshRunning { path }) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(path, &lock_path);
    let shown = ricochet_client::ErrorChain(&error).to_string();
    assert!(shown.contains("quit it"), "{shown}");
    assert!(!dir.path().join("imported").exists());
    // Refresh quit without removing its lock file.
    drop(lock);
    let (client, _events) = start().await.unwrap();
    assert_eq!(client.id(), id(OWN));
    client.shutdown().await;
}
