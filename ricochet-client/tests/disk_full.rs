//! A full disk in the real process (issue 25): the receiver's profile and
//! download folder sit on a small tmpfs that fills up during a burst of
//! messages and two incoming files. Nothing is acknowledged that was not
//! stored, calls fail with [`StorageError::DiskFull`], the application
//! hears [`Event::DiskFull`] once, a download that ran out of room is
//! deleted and never reported complete, and once there is room again
//! everything arrives, exactly once and in order, without anyone calling
//! anything.
//!
//! Mounting needs a mount namespace of its own: the test runs itself again
//! under `unshare` (as root `unshare --mount`, otherwise with a user
//! namespace as well), so that nothing stays mounted whatever happens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{befriend, eventually, start};
use ricochet_client::transport::tcp::Directory;
use ricochet_client::{
    ClientError, DiskFull, Event, MessageDirection, MessageStatus, StorageError, TransferFailure,
    TransferOutcome,
};

/// Set in the run inside the namespace.
const INSIDE_ENV: &str = "RICOCHET_DISK_FULL_INSIDE";
/// The small disk.
const DISK_SIZE: u64 = 8 << 20;
/// Room left when the burst starts: less than the two files together.
const ROOM: u64 = 1536 << 10;
/// The files offered during the burst.
const FILE_SIZE: usize = 1 << 20;
/// Each of the two bursts: the first while there is some room, the second
/// onto a full disk.
const MESSAGES: usize = 1500;

#[test]
fn a_full_disk_loses_nothing_and_everything_resumes_when_there_is_room() {
    if std::env::var_os(INSIDE_ENV).is_some() {
        let disk = SmallDisk::mount();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(burst_onto_a_full_disk(disk.path()));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    let mut unshare = Command::new("unshare");
    if !root {
        unshare.arg("--user").arg("--map-root-user");
    }
    let output = unshare
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([
            "--exact",
            "a_full_disk_loses_nothing_and_everything_resumes_when_there_is_room",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INSIDE_ENV, "1")
        .output()
        .expect("unshare (util-linux) runs");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the test in its own mount namespace failed ({}); without root it needs \
         unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the test did not run inside the namespace"
    );
}

/// A tmpfs of [`DISK_SIZE`], in this process's own mount namespace.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={DISK_SIZE},mode=0700"))
            .arg("ricochet-small-disk")
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs failed: {status}");
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// What the receiver's application saw.
#[derive(Default)]
struct Seen {
    disk_full: Vec<DiskFull>,
    freed: usize,
    files: Vec<TransferOutcome>,
    received: Vec<String>,
}

async fn burst_onto_a_full_disk(disk: &Path) {
    let directory = Directory::new();
    let sender_dir = tempfile::tempdir().unwrap();
    let profile = disk.join("profile");
    let downloads = disk.join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let mut alice = start(&sender_dir.path().join("alice"), &directory).await;
    let mut bob = start(&profile, &directory).await;
    befriend(&mut alice, &mut bob).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());

    // Bob's application: accepts every file, and notes what it hears.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut bob_events = bob.events;
    let watcher = {
        let seen = Arc::clone(&seen);
        let downloads = downloads.clone();
        tokio::spawn(async move {
            while let Some(event) = bob_events.next().await {
                match event {
                    Event::DiskFull(full) => {
                        println!("bob: {full}");
                        seen.lock().unwrap().disk_full.push(full);
                    }
                    Event::DiskSpaceFreed { .. } => seen.lock().unwrap().freed += 1,
                    Event::FileOffered(offer) => {
                        let to = downloads.join(offer.name());
                        offer.accept(&to).await.unwrap();
                    }
                    Event::FileTransferFinished {
                        direction: ricochet_client::FileDirection::Download,
                        outcome,
                        ..
                    } => {
                        println!("bob: a download ended: {outcome:?}");
                        seen.lock().unwrap().files.push(outcome);
                    }
                    Event::MessageReceived(message) => {
                        seen.lock().unwrap().received.push(message.text);
                    }
                    Event::Error { error, .. } => {
                        panic!("bob: an error besides the full disk: {error}");
                    }
                    _ => {}
                }
            }
        })
    };

    // The disk has ROOM left.
    let filler = disk.join("filler");
    let free = available(disk);
    assert!(free > ROOM, "the small disk has {free} bytes");
    write_filler(&filler, free - ROOM);

    // A burst, and two files of which at most one fits.
    let texts: Vec<String> = (0..2 * MESSAGES)
        .map(|i| format!("{i:05} {}", "x".repeat(300)))
        .collect();
    let mut handles = alice
        .client
        .send_messages(bob_id, &texts[..MESSAGES])
        .await
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    for name in ["one.bin", "two.bin"] {
        let path = files.path().join(name);
        std::fs::write(&path, content(FILE_SIZE, name)).unwrap();
        alice.client.send_file(bob_id, &path).await.unwrap();
    }
    eventually("both downloads to end", || async {
        seen.lock().unwrap().files.len() == 2
    })
    .await;

    // Not one more byte, and another burst: bob says the disk is full,
    // once.
    write_filler(&disk.join("filler-2"), u64::MAX);
    handles.extend(
        alice
            .client
            .send_messages(bob_id, &texts[MESSAGES..])
            .await
            .unwrap(),
    );
    eventually("bob to say the disk is full", || async {
        !seen.lock().unwrap().disk_full.is_empty()
    })
    .await;
    let full = seen.lock().unwrap().disk_full[0].clone();
    assert!(full.path.starts_with(&profile), "{full:?}");
    assert!(full.needed > 0, "{full:?}");
    assert!(full.available.is_some_and(|free| free < ROOM), "{full:?}");

    // A call that writes fails, saying why.
    let mut queued_by_bob = Vec::new();
    let error = loop {
        // The log may still hold room from before; each try takes some.
        match bob.client.send_message(alice_id, "from bob").await {
            Ok(handle) => {
                queued_by_bob.push(handle);
                assert!(queued_by_bob.len() < 500, "bob's writes never fail");
            }
            Err(error) => break error,
        }
    };
    let ClientError::Storage(StorageError::DiskFull(call_full)) = &error else {
        panic!("a call on a full disk failed with {error:?}");
    };
    println!("bob's call: {error}");
    assert!(call_full.path.starts_with(&profile));

    // Nothing acknowledged that bob did not store, while the disk stays
    // full for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acknowledged = handles
        .iter()
        .filter(|handle| handle.status() == MessageStatus::Acknowledged)
        .count();
    let stored = stored_from(&bob.client, alice_id).await;
    println!(
        "while full: {acknowledged} of {} acknowledged, {} stored by bob",
        2 * MESSAGES,
        stored.len()
    );
    assert!(
        acknowledged < 2 * MESSAGES,
        "the bursts fitted; the disk never filled"
    );
    assert!(
        stored.len() >= acknowledged,
        "{acknowledged} acknowledged, but bob stored only {}",
        stored.len()
    );
    assert_eq!(seen.lock().unwrap().disk_full.len(), 1, "said once");

    // The downloads: one or both ran out of room and left nothing behind;
    // one that completed is whole.
    let outcomes = seen.lock().unwrap().files.clone();
    let mut out_of_room = 0;
    for outcome in &outcomes {
        match outcome {
            TransferOutcome::Failed(TransferFailure::DiskFull(full)) => {
                assert!(full.path.starts_with(&downloads), "{full:?}");
                assert_eq!(full.needed, FILE_SIZE as u64);
                out_of_room += 1;
            }
            TransferOutcome::Completed { path } => {
                let name = path.file_name().unwrap().to_str().unwrap();
                assert!(
                    std::fs::read(path).unwrap() == content(FILE_SIZE, name),
                    "{name} whole"
                );
            }
            other => panic!("a download ended with {other:?}"),
        }
    }
    assert!(out_of_room >= 1, "{outcomes:?}");
    let parts: Vec<PathBuf> = std::fs::read_dir(&downloads)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "part"))
        .collect();
    assert!(parts.is_empty(), "part files left: {parts:?}");

    // Room again: everything arrives by itself.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(disk.join("filler-2")).unwrap();
    eventually("bob to say there is room again", || async {
        seen.lock().unwrap().freed == 1
    })
    .await;
    for handle in &handles {
        let mut handle = handle.clone();
        tokio::time::timeout(common::PATIENCE, handle.finished())
            .await
            .expect("every message is acknowledged once there is room");
        assert_eq!(handle.status(), MessageStatus::Acknowledged);
    }
    for handle in &mut queued_by_bob {
        let status = tokio::time::timeout(common::PATIENCE, handle.finished())
            .await
            .expect("bob's queued messages are delivered");
        assert_eq!(status, MessageStatus::Acknowledged);
    }
    let stored = stored_from(&bob.client, alice_id).await;
    assert_eq!(stored, texts, "exactly once, in order");
    assert_eq!(
        seen.lock().unwrap().received,
        texts,
        "each told once, in order"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.disk_full.len(), 1, "said once");
        assert_eq!(seen.freed, 1, "said once");
    }
    println!(
        "after room: all {} acknowledged and stored once, in order",
        texts.len()
    );

    alice.client.shutdown().await;
    bob.client.shutdown().await;
    watcher.abort();
}

/// Fills `path` with up to `len` bytes, until the disk is full.
fn write_filler(path: &Path, len: u64) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0xA5u8; 64 << 10];
    let mut written = 0u64;
    while written < len {
        let take = usize::try_from((len - written).min(block.len() as u64)).unwrap();
        match file.write(&block[..take]) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
            Err(error) => panic!("filling the disk: {error}"),
        }
    }
}

/// Free bytes on the filesystem of `path`, from `df`.
fn available(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .expect("df prints the free bytes")
}

/// The texts bob stored from `from`, oldest first.
async fn stored_from(
    client: &ricochet_client::Client,
    from: ricochet_client::RicochetId,
) -> Vec<String> {
    client
        .messages(from, None, MESSAGES * 4)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == MessageDirection::Incoming)
        .map(|m| m.text)
        .collect()
}

/// The bytes of the file called `name`.
fn content(len: usize, name: &str) -> Vec<u8> {
    let seed = usize::from(name.as_bytes()[0]);
    (0..len).map(|i| (i * 7 + seed + i / 251) as u8).collect()
}
