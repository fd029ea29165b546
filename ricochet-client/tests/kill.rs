//! No message is lost or delivered twice when a client's process is killed
//! with SIGKILL while messages are in flight: the sender's (it resends what
//! was not acknowledged, with the same ids) or the receiver's (it stores a
//! message before its acknowledgement leaves).
//!
//! The tests re-run this test binary as a child process (the ignored test
//! `child`), which plays the side that gets killed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{ChildFixture, start};
use ricochet_client::transport::tcp::{Directory, TcpTransport};
use ricochet_client::{Event, MessageDirection, MessageStatus, RicochetId};

const CHILD_ENV: &str = "RICOCHET_KILL_TEST_CHILD";
const MESSAGES: usize = 400;

/// The child's settings, passed in one environment variable.
struct ChildSpec {
    profile: String,
    directory: String,
    key: String,
    peer: String,
    mode: String,
}

impl ChildSpec {
    fn encode(&self) -> String {
        [
            &self.profile,
            &self.directory,
            &self.key,
            &self.peer,
            &self.mode,
        ]
        .map(|s| s.as_str())
        .join("\n")
    }

    fn decode(text: &str) -> Self {
        let mut parts = text.split('\n').map(str::to_owned);
        let mut next = || parts.next().expect("five fields");
        Self {
            profile: next(),
            directory: next(),
            key: next(),
            peer: next(),
            mode: next(),
        }
    }
}

#[tokio::test]
#[ignore = "the child process of the SIGKILL tests"]
async fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec = ChildSpec::decode(&spec);
    let peer: RicochetId = spec.peer.parse().unwrap();
    let (client, mut events) =
        common::start_child_client(&spec.profile, &spec.directory, &spec.key).await;
    println!("CHILD started");
    if spec.mode == "receive" {
        // Accept requests; everything else is the client's own work.
        while let Some(event) = events.next().await {
            if let Event::ContactRequestReceived(request) = event {
                request.accept("sender").await.unwrap();
            }
        }
        return;
    }
    if spec.mode.starts_with("chaos") {
        return chaos_child(&spec, &client, &mut events, peer).await;
    }
    if spec.mode == "send" {
        // Accept the receiver's request, then send everything at once.
        loop {
            if let Some(Event::ContactRequestReceived(request)) = events.next().await {
                request.accept("receiver").await.unwrap();
                break;
            }
        }
        // One call stores every part in one transaction before any is sent.
        let handle = client
            .send_message(peer, &segments().concat())
            .await
            .unwrap();
        assert_eq!(handle.ids().len(), MESSAGES);
        println!("CHILD queued");
    }
    loop {
        let history = client.messages(peer, None, 10 * MESSAGES).await.unwrap();
        let acked = history
            .iter()
            .filter(|m| m.status == MessageStatus::Acknowledged)
            .count();
        if acked == MESSAGES && history.len() == MESSAGES {
            println!("CHILD all-acked {acked}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stay up until killed.
    while events.next().await.is_some() {}
}

/// The settings of the child of `fixture` that talks to `parent`.
fn child_spec(fixture: &ChildFixture, parent: RicochetId, mode: &str) -> ChildSpec {
    ChildSpec {
        profile: fixture.profile.display().to_string(),
        directory: fixture.directory_file.display().to_string(),
        key: fixture.key_file.display().to_string(),
        peer: parent.to_string(),
        mode: mode.to_owned(),
    }
}

/// The messages: a text of `MESSAGES` × 2000 characters, split into
/// exactly these parts.
fn segments() -> Vec<String> {
    (0..MESSAGES)
        .map(|i| format!("{:.<2000}", format!("msg-{i}")))
        .collect()
}

/// Statuses of the child's outgoing messages, read from its database (as
/// words; schema 4 stores them as numbers).
fn statuses(profile: &Path) -> HashMap<String, usize> {
    let db = rusqlite::Connection::open(profile.join(ricochet_client::PROFILE_DATABASE)).unwrap();
    let mut query = db
        .prepare(
            "SELECT CASE status WHEN 0 THEN 'queued' WHEN 1 THEN 'sent'
                 WHEN 2 THEN 'acknowledged' WHEN 3 THEN 'refused' ELSE 'gone' END,
                 COUNT(*)
             FROM messages WHERE direction = 0 GROUP BY status",
        )
        .unwrap();
    query
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as usize)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn spawn_child(spec: &ChildSpec) -> tokio::process::Child {
    common::child_command(CHILD_ENV, spec.encode(), &[])
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn sender_killed_with_sigkill_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut bob = start(&dir.path().join("bob"), &directory).await;

    // The child (Alice, the sender) has a fixed identity and address.
    let fixture = ChildFixture::new(dir.path(), &directory, bob.id());
    let alice_id = fixture.id;
    let alice_profile = fixture.profile.clone();
    let bob_id = bob.id();
    let spec = |mode: &str| child_spec(&fixture, bob_id, mode);

    let mut child = spawn_child(&spec("send"));
    let lines = common::child_lines(&mut child);
    bob.client
        .send_contact_request(alice_id, "alice", "")
        .await
        .unwrap();

    // Receive a part, then kill the sender mid-stream.
    let mut received = Vec::new();
    let mut events = 0;
    while received.len() < MESSAGES / 4 {
        received.push(bob.expect_message(alice_id).await);
        events += 1;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let at_kill = statuses(&alice_profile);
    println!(
        "statuses at SIGKILL: {at_kill:?}, received so far {}",
        received.len()
    );

    let mut child = spawn_child(&spec("resume"));
    let mut lines_after = common::child_lines(&mut child);
    while received.len() < MESSAGES {
        received.push(bob.expect_message(alice_id).await);
        events += 1;
    }
    let acked = tokio::time::timeout(common::PATIENCE, async {
        loop {
            match lines_after.recv().await {
                Some(line) if line.starts_with("all-acked") => return line,
                Some(_) => {}
                None => panic!("the child ended"),
            }
        }
    })
    .await
    .expect("the sender sees every message acknowledged");
    assert_eq!(acked, format!("all-acked {MESSAGES}"));
    // Nothing more arrives: no duplicate reached the application.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Some(event) = bob.events.try_next() {
        assert!(!matches!(event, Event::MessageReceived(_)), "{event:?}");
    }
    assert!(
        received == segments(),
        "every message once, in order: got {} messages",
        received.len()
    );
    assert_eq!(events, MESSAGES);
    let stored = bob
        .client
        .messages(alice_id, None, 10 * MESSAGES)
        .await
        .unwrap();
    assert_eq!(stored.len(), MESSAGES);
    assert!(
        stored
            .iter()
            .all(|m| m.direction == MessageDirection::Incoming)
    );
    println!(
        "after restart: {:?} (of {MESSAGES})",
        statuses_after_kill(&mut child, &alice_profile).await
    );
    drop(lines);
}

async fn statuses_after_kill(
    child: &mut tokio::process::Child,
    profile: &Path,
) -> HashMap<String, usize> {
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    statuses(profile)
}

#[tokio::test]
async fn receiver_killed_with_sigkill_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let alice_id = alice.id();

    let fixture = ChildFixture::new(dir.path(), &directory, alice_id);
    let (bob_id, bob_profile) = (fixture.id, fixture.profile.clone());
    let spec = child_spec(&fixture, alice_id, "receive");

    let mut child = spawn_child(&spec);
    alice
        .client
        .send_contact_request(bob_id, "bob", "")
        .await
        .unwrap();
    alice
        .expect_status(bob_id, ricochet_client::ContactStatus::Online)
        .await;
    let mut handle = alice
        .client
        .send_message(bob_id, &segments().concat())
        .await
        .unwrap();
    // Kill the receiver once a quarter of the messages are acknowledged.
    let mut acknowledged = 0;
    while acknowledged < MESSAGES / 4 {
        alice
            .expect("an acknowledgement", |event| {
                matches!(
                    event,
                    Event::MessageStatusChanged {
                        status: MessageStatus::Acknowledged,
                        ..
                    }
                )
                .then_some(())
            })
            .await;
        acknowledged += 1;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let at_kill = common::stored_incoming(&bob_profile).len();
    println!(
        "at SIGKILL: {acknowledged} acknowledged at the sender, {at_kill} stored at the receiver"
    );
    assert!(
        at_kill >= acknowledged,
        "an acknowledged message was not stored"
    );

    let mut child = spawn_child(&spec);
    let finished = tokio::time::timeout(common::PATIENCE, handle.finished())
        .await
        .expect("every message acknowledged after the restart");
    assert_eq!(finished, MessageStatus::Acknowledged);
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let stored = common::stored_incoming(&bob_profile);
    assert!(
        stored == segments(),
        "every message stored once, in order: {} stored",
        stored.len()
    );
}

/// Messages each way in the chaos test (`RICOCHET_CHAOS_MESSAGES` overrides).
static CHAOS_MESSAGES: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    std::env::var("RICOCHET_CHAOS_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
});

/// The child of the chaos test: accepts the request ("chaos" mode), sends
/// its messages one call at a time, and reports when everything arrived
/// both ways.
async fn chaos_child(
    spec: &ChildSpec,
    client: &ricochet_client::Client,
    events: &mut ricochet_client::Events,
    peer: RicochetId,
) {
    if spec.mode == "chaos" {
        // Ask, and queue everything while the request is pending, so that
        // all of it is on its way when the kill comes.
        client
            .send_contact_request(peer, "parent", "")
            .await
            .unwrap();
        for i in 0..*CHAOS_MESSAGES {
            client.send_message(peer, &format!("b-{i}")).await.unwrap();
        }
        println!("CHILD queued");
    }
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut reported = false;
    loop {
        tokio::select! {
            event = events.next() => if event.is_none() { return },
            _ = tick.tick(), if !reported => {
                let history = client.messages(peer, None, 3 * *CHAOS_MESSAGES).await.unwrap();
                let incoming = history.iter().filter(|m| m.direction == MessageDirection::Incoming).count();
                let acked = history
                    .iter()
                    .filter(|m| m.direction == MessageDirection::Outgoing && m.status == MessageStatus::Acknowledged)
                    .count();
                if incoming == *CHAOS_MESSAGES && acked == *CHAOS_MESSAGES {
                    println!("CHILD done");
                    reported = true;
                }
            }
        }
    }
}

/// 10,000 messages each way while every connection is cut after a random
/// 20–200 kB and writes are split and stalled, and the child is killed
/// with SIGKILL and restarted in the middle: each message arrives exactly
/// once, in order, and is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_ten_thousand_messages_each_way_with_cuts_and_a_sigkill() {
    use ricochet_client::transport::fault::{FaultPlan, FaultyTransport};

    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let plan = FaultPlan::new(20261127)
        .cut_after(20_000..200_000)
        .max_write(1400)
        .stall(0.002, Duration::from_millis(30));
    let faulty = FaultyTransport::new(
        TcpTransport::new(directory.clone()).listen_on("127.0.0.1:0".parse().unwrap()),
        plan,
    );
    let faults = faulty.stats();
    let mut alice = common::start_with(&dir.path().join("alice"), &directory, |b| {
        b.transport(faulty)
    })
    .await;
    alice.patience = Duration::from_secs(120);
    let alice_id = alice.id();

    let fixture = ChildFixture::new(dir.path(), &directory, alice_id);
    let (bob_id, bob_profile) = (fixture.id, fixture.profile.clone());
    let spec = |mode: &str| child_spec(&fixture, alice_id, mode);

    let mut child = spawn_child(&spec("chaos"));
    let mut lines = common::child_lines(&mut child);
    loop {
        match lines.recv().await.as_deref() {
            Some("queued") => break,
            Some(_) => {}
            None => panic!("the child ended"),
        }
    }
    let request = alice.expect_request().await;
    request.accept("bob").await.unwrap();
    // Alice sends hers while Bob's flow in.
    let sender = alice.client.clone();
    let sending = tokio::spawn(async move {
        for i in 0..*CHAOS_MESSAGES {
            sender
                .send_message(bob_id, &format!("a-{i}"))
                .await
                .unwrap();
        }
    });

    // Receive a third of Bob's messages, then kill him mid-stream.
    let mut received: Vec<String> = Vec::new();
    while received.len() < *CHAOS_MESSAGES / 3 {
        received.push(alice.expect_message(bob_id).await);
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let killed_at = (started.elapsed(), received.len());

    let mut child = spawn_child(&spec("chaos-resume"));
    let mut lines = common::child_lines(&mut child);
    while received.len() < *CHAOS_MESSAGES {
        received.push(alice.expect_message(bob_id).await);
    }
    sending.await.unwrap();
    let queued_by_alice = started.elapsed();
    let wait_done = async {
        loop {
            match lines.recv().await {
                Some(line) if line == "done" => return,
                Some(_) => {}
                None => panic!("the child ended"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(300), wait_done)
        .await
        .expect("the child got everything and saw every message acknowledged");
    let acked = || async {
        let history = alice
            .client
            .messages(bob_id, None, 3 * *CHAOS_MESSAGES)
            .await
            .unwrap();
        history
            .iter()
            .filter(|m| {
                m.direction == MessageDirection::Outgoing && m.status == MessageStatus::Acknowledged
            })
            .count()
            == *CHAOS_MESSAGES
    };
    common::eventually("alice's messages all acknowledged", acked).await;
    // No duplicate reached the application afterwards either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Some(event) = alice.events.try_next() {
        assert!(!matches!(event, Event::MessageReceived(_)), "{event:?}");
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let expected_from_bob: Vec<String> = (0..*CHAOS_MESSAGES).map(|i| format!("b-{i}")).collect();
    assert!(
        received == expected_from_bob,
        "Bob's messages at Alice: each once, in order"
    );
    let expected_from_alice: Vec<String> = (0..*CHAOS_MESSAGES).map(|i| format!("a-{i}")).collect();
    assert!(
        common::stored_incoming(&bob_profile) == expected_from_alice,
        "Alice's messages at Bob: each once, in order"
    );
    assert_eq!(
        statuses(&bob_profile),
        HashMap::from([("acknowledged".to_owned(), *CHAOS_MESSAGES)])
    );
    println!(
        "chaos: {} messages each way; child killed at {:?} after {} of its messages \
         arrived; alice had queued hers at {queued_by_alice:?}; all delivered once, in order, \
         and acknowledged after {:?}; streams {}, cuts {}, stalls {} (alice's side)",
        *CHAOS_MESSAGES,
        killed_at.0,
        killed_at.1,
        started.elapsed(),
        faults.streams.load(std::sync::atomic::Ordering::Relaxed),
        faults.cuts.load(std::sync::atomic::Ordering::Relaxed),
        faults.stalls.load(std::sync::atomic::Ordering::Relaxed),
    );
}
