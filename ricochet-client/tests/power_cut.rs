//! Power cuts (issue 25): nothing acknowledged and nothing that
//! `send_message` returned for is lost when the power fails, not only when
//! the process is killed.
//!
//! The child client (this test binary again, the ignored test `child`) runs
//! under `tests/power_cut/lazysync.c`, an `LD_PRELOAD` library that records
//! what reached stable storage in its profile directory: the content of a
//! file at its last `fsync`/`fdatasync`, the names of the directory at its
//! last `fsync`. A cut is a SIGKILL followed by putting the directory back
//! to that record, so every write that was not synced is lost, as on a
//! machine whose power failed (Jepsen's LazyFS does the same with FUSE).
//!
//! Both sides send while the cuts come: the parent (never cut) sends
//! `a-0, a-1, …`, the child `b-0, b-1, …`, one call at a time. After every
//! cut, before the child starts again:
//!
//! - every message of the parent's that the parent saw acknowledged is in
//!   the child's history, and the child's incoming history is exactly
//!   `a-0 … a-k`: once each, in order;
//! - every message the child's `send_message` returned for is in its
//!   history, which is exactly `b-0 … b-m`.
//!
//! At the end everything is delivered both ways, once each, in order.
//!
//! `RICOCHET_POWER_CUTS` sets the number of cuts (default 12; the long run
//! of BENCHMARKS.md uses 200) and `RICOCHET_POWER_CUT_SEED` the seed of
//! their timing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rand::{RngExt as _, SeedableRng};
use ricochet_client::transport::tcp::Directory;
use ricochet_client::{Event, MessageDirection, MessageStatus, RicochetId};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const CHILD_ENV: &str = "RICOCHET_POWER_CUT_CHILD";

/// What the child needs, one line each: its profile, the directory file
/// of addresses, its key file, the parent's id, and whether this is its
/// first start (it then waits for the parent's contact request).
fn child_spec(
    profile: &Path,
    directory: &Path,
    key: &Path,
    peer: RicochetId,
    first: bool,
) -> String {
    format!(
        "{}\n{}\n{}\n{peer}\n{first}",
        profile.display(),
        directory.display(),
        key.display()
    )
}

/// The child: accepts the parent's request on its first start, then sends
/// `b-<n>` one call at a time from where its history ends, printing
/// `CHILD queued <n>` once `send_message` has returned, until it reads
/// `stop` on stdin (then `CHILD stopped-at <count>`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of the power-cut test"]
async fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let fields: Vec<&str> = spec.split('\n').collect();
    let [profile, directory, key, peer, first] = fields[..] else {
        panic!("five fields: {spec:?}");
    };
    let peer: RicochetId = peer.parse().unwrap();
    let (client, mut events) = common::start_child_client(profile, directory, key).await;
    if first == "true" {
        loop {
            if let Some(Event::ContactRequestReceived(request)) = events.next().await {
                request.accept("parent").await.unwrap();
                break;
            }
        }
    }
    let history = history(&client, peer).await;
    let first_index = history
        .iter()
        .filter(|m| m.direction == MessageDirection::Outgoing)
        .count();
    println!("CHILD started {first_index}");

    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut next = first_index;
            while !stop.load(Ordering::Relaxed) {
                client
                    .send_message(peer, &format!("b-{next}"))
                    .await
                    .unwrap();
                println!("CHILD queued {next}");
                next += 1;
            }
            println!("CHILD stopped-at {next}");
        })
    };
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut sender = Some(sender);
    loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(line)) if line == "stop" => {
                    stop.store(true, Ordering::Relaxed);
                    if let Some(sender) = sender.take() {
                        sender.await.unwrap();
                    }
                }
                Ok(Some(_)) => {}
                _ => std::future::pending::<()>().await,
            },
            event = events.next() => if event.is_none() { return },
        }
    }
}

/// Builds the `LD_PRELOAD` library into `dir` with the system's C compiler.
fn build_lazysync(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/power_cut/lazysync.c");
    let library = dir.join("lazysync.so");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = std::process::Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {compiler:?} ({e}); install gcc"));
    assert!(
        status.success(),
        "{compiler} failed on {}",
        source.display()
    );
    library
}

/// What a cut did to the directory.
#[derive(Debug, Default)]
struct CutReport {
    /// Files put back to their last synced content.
    restored: usize,
    /// Files removed: never synced, or created after the directory's last
    /// sync.
    removed: usize,
    /// Bytes that differed from the synced record (lost writes).
    bytes_lost: u64,
}

/// The power cut, after the process is dead: `profile` becomes what
/// `shadow` recorded as synced.
fn cut(profile: &Path, shadow: &Path) -> CutReport {
    let names: HashSet<String> = std::fs::read_to_string(shadow.join(".names"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut report = CutReport::default();
    for entry in std::fs::read_dir(profile).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        let name = entry.file_name().into_string().unwrap();
        let now = std::fs::read(entry.path()).unwrap();
        let synced = shadow.join(&name);
        if names.contains(&name) && synced.exists() {
            let record = std::fs::read(&synced).unwrap();
            if record != now {
                let same = now.iter().zip(&record).take_while(|(a, b)| a == b).count();
                report.bytes_lost += (now.len().max(record.len()) - same) as u64;
                std::fs::write(entry.path(), record).unwrap();
            }
            report.restored += 1;
        } else {
            report.bytes_lost += now.len() as u64;
            std::fs::remove_file(entry.path()).unwrap();
            report.removed += 1;
        }
    }
    // A removal that was not synced did not happen.
    for name in &names {
        let path = profile.join(name);
        if !path.exists() && shadow.join(name).exists() {
            std::fs::copy(shadow.join(name), path).unwrap();
            report.restored += 1;
        }
    }
    report
}

/// Records the directory as it is as synced: after the checks, whose
/// SQLite connection (`synchronous=FULL`, its default) may have
/// checkpointed and removed the log.
fn resync(profile: &Path, shadow: &Path) {
    let mut names = String::new();
    for entry in std::fs::read_dir(profile).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let name = entry.file_name().into_string().unwrap();
            std::fs::copy(entry.path(), shadow.join(&name)).unwrap();
            names.push_str(&name);
            names.push('\n');
        }
    }
    std::fs::write(shadow.join(".names"), names).unwrap();
}

/// The texts of one direction of a profile's messages, in order.
fn stored(profile: &Path, direction: i64) -> Vec<String> {
    let db = rusqlite::Connection::open(profile.join(ricochet_client::PROFILE_DATABASE)).unwrap();
    let mut query = db
        .prepare("SELECT text FROM messages WHERE direction = ?1 ORDER BY id")
        .unwrap();
    query
        .query_map([direction], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The whole conversation of `client` with `contact`, oldest first.
async fn history(
    client: &ricochet_client::Client,
    contact: RicochetId,
) -> Vec<ricochet_client::Message> {
    client.messages(contact, None, 1 << 30).await.unwrap()
}

/// `prefix-0 … prefix-(n-1)`.
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The index of `a-<n>` / `b-<n>`.
fn index(text: &str) -> usize {
    text.split_once('-').unwrap().1.parse().unwrap()
}

struct Child {
    process: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Waits for the child's line `<prefix><n>` and returns n.
async fn expect_line(child: &mut Child, prefix: &str) -> usize {
    tokio::time::timeout(common::PATIENCE, async {
        loop {
            match child.lines.recv().await {
                Some(line) => {
                    if let Some(n) = line.strip_prefix(prefix) {
                        return n.parse::<usize>().unwrap();
                    }
                }
                None => panic!("the child ended while we waited for {prefix:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for the child's {prefix:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_or_queued_is_lost_in_power_cuts() {
    let cuts: usize = std::env::var("RICOCHET_POWER_CUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("RICOCHET_POWER_CUT_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20261208);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let library = build_lazysync(&root);
    let directory = Directory::new();
    let mut parent = common::start(&root.join("parent"), &directory).await;
    let parent_id = parent.id();

    let fixture = common::ChildFixture::new(&root, &directory, parent_id);
    let (child_id, profile) = (fixture.id, fixture.profile.clone());
    let shadow = root.join("synced");
    std::fs::create_dir(&shadow).unwrap();

    let spawn = |first: bool| {
        let spec = child_spec(
            &profile,
            &fixture.directory_file,
            &fixture.key_file,
            parent_id,
            first,
        );
        let mut process = common::child_command(CHILD_ENV, spec, &[])
            .env("LD_PRELOAD", &library)
            .env("LAZYSYNC_DIR", &profile)
            .env("LAZYSYNC_SHADOW", &shadow)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = process.stdin.take().unwrap();
        let lines = common::child_lines(&mut process);
        Child {
            process,
            stdin,
            lines,
        }
    };
    let mut child = spawn(true);
    parent
        .client
        .send_contact_request(child_id, "child", "")
        .await
        .unwrap();
    expect_line(&mut child, "started ").await;

    // The parent sends a-0, a-1, … one call at a time until told to stop,
    // at most 200 per cut (the checks read its whole history after every
    // cut; a long run would otherwise spend its time there).
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let most = 200 * (cuts + 1);
    let sender = {
        let (client, sent, stop) = (parent.client.clone(), Arc::clone(&sent), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < most {
                let n = sent.load(Ordering::Relaxed);
                client
                    .send_message(child_id, &format!("a-{n}"))
                    .await
                    .unwrap();
                sent.store(n + 1, Ordering::Relaxed);
                // A chat, not a bulk load: the cuts should find both
                // directions at every stage.
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        })
    };

    let mut queued_by_child = 0usize; // one past the highest `queued` seen
    let (mut restored, mut removed, mut bytes_lost) = (0, 0, 0);
    for round in 1..=cuts {
        let run = Duration::from_millis(rng.random_range(100..600));
        tokio::time::sleep(run).await;
        child.process.start_kill().unwrap();
        child.process.wait().await.unwrap();
        while let Some(line) = child.lines.recv().await {
            if let Some(n) = line.strip_prefix("queued ") {
                queued_by_child = queued_by_child.max(n.parse::<usize>().unwrap() + 1);
            }
        }
        let report = cut(&profile, &shadow);
        restored += report.restored;
        removed += report.removed;
        bytes_lost += report.bytes_lost;

        // Acknowledgements that left the child before the cut may still be
        // on their way into the parent's store.
        tokio::time::sleep(Duration::from_millis(100)).await;
        parent.drain().await;
        let history = history(&parent.client, child_id).await;
        let acknowledged: Vec<usize> = history
            .iter()
            .filter(|m| m.direction == MessageDirection::Outgoing)
            .filter(|m| m.status == MessageStatus::Acknowledged)
            .map(|m| index(&m.text))
            .collect();

        let incoming = stored(&profile, 1);
        assert!(
            incoming == numbered("a", incoming.len()),
            "cut {round}: the child's incoming history is not a-0 … a-{} once each in order",
            incoming.len()
        );
        let lost: Vec<usize> = acknowledged
            .iter()
            .copied()
            .filter(|&i| i >= incoming.len())
            .collect();
        assert!(
            lost.is_empty(),
            "cut {round}: {} messages the parent saw acknowledged are not in the child's \
             history (it has {}; lost e.g. a-{}); cut: {report:?}",
            lost.len(),
            incoming.len(),
            lost[0]
        );
        let outgoing = stored(&profile, 0);
        assert!(
            outgoing == numbered("b", outgoing.len()),
            "cut {round}: the child's outgoing history is not b-0 … b-{} once each in order",
            outgoing.len()
        );
        assert!(
            outgoing.len() >= queued_by_child,
            "cut {round}: send_message returned for {} messages and {} are stored \
             ({} lost); cut: {report:?}",
            queued_by_child,
            outgoing.len(),
            queued_by_child - outgoing.len()
        );
        println!(
            "cut {round} after {run:?}: child has a-0…a-{} (parent saw {} acknowledged, sent {}), \
             b-0…b-{} (send_message returned for {queued_by_child}); {report:?}",
            incoming.len(),
            acknowledged.len(),
            sent.load(Ordering::Relaxed),
            outgoing.len(),
        );
        resync(&profile, &shadow);
        child = spawn(false);
        let first_index = expect_line(&mut child, "started ").await;
        assert_eq!(first_index, outgoing.len());
    }

    // Calm: both stop sending, and everything arrives.
    stop.store(true, Ordering::Relaxed);
    sender.await.unwrap();
    let a_total = sent.load(Ordering::Relaxed);
    child.stdin.write_all(b"stop\n").await.unwrap();
    let b_total = expect_line(&mut child, "stopped-at ").await;
    let everything = || async {
        let history = history(&parent.client, child_id).await;
        let received = history
            .iter()
            .filter(|m| m.direction == MessageDirection::Incoming)
            .count();
        let acknowledged = history
            .iter()
            .filter(|m| m.direction == MessageDirection::Outgoing)
            .all(|m| m.status == MessageStatus::Acknowledged);
        received >= b_total && acknowledged
    };
    common::eventually("everything delivered both ways", everything).await;
    let history = history(&parent.client, child_id).await;
    let received: Vec<String> = history
        .into_iter()
        .filter(|m| m.direction == MessageDirection::Incoming)
        .map(|m| m.text)
        .collect();
    assert!(
        received == numbered("b", b_total),
        "the child's messages at the parent: once each, in order (got {} of {b_total})",
        received.len()
    );
    child.process.start_kill().unwrap();
    child.process.wait().await.unwrap();
    assert_eq!(stored(&profile, 1), numbered("a", a_total));
    println!(
        "power cuts: {cuts} cuts (seed {seed}) in {:?}; {a_total} messages parent → child and \
         {b_total} child → parent, each once, in order; the cuts restored {restored} files, \
         removed {removed} and dropped {bytes_lost} unsynced bytes",
        started.elapsed()
    );
}
