//! Whole clients talking over the direct transport on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Peer, befriend, eventually, start};
use ricochet_client::transport::tcp::Directory;
use ricochet_client::{ContactStatus, Event, MessageDirection, MessageStatus, RequestAnswer};

#[tokio::test]
async fn request_pending_accept_and_chat_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = common::start_with(&dir.path().join("alice"), &directory, |b| {
        b.nickname("alice")
    })
    .await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());

    alice
        .client
        .send_contact_request(bob_id, "Bob", "hello, it's me")
        .await
        .unwrap();
    alice
        .expect_status(bob_id, ContactStatus::RequestPending)
        .await;
    let listed = alice.client.contact(bob_id).await.unwrap().unwrap();
    assert_eq!(listed.nickname, "Bob");
    let request = bob.expect_request().await;
    assert_eq!(request.sender(), alice_id);
    assert_eq!(request.request().nickname, "alice");
    assert_eq!(request.request().message, "hello, it's me");
    alice
        .expect("the request delivered", |event| match event {
            Event::ContactRequestDelivered { contact } if contact == bob_id => Some(()),
            Event::ContactRequestAnswered { answer, .. } => panic!("answered {answer} first"),
            _ => None,
        })
        .await;
    assert_eq!(bob.client.contact_requests().await.unwrap().len(), 1);

    request.accept("alice").await.unwrap();
    alice.expect_status(bob_id, ContactStatus::Online).await;
    bob.expect_status(alice_id, ContactStatus::Online).await;
    assert!(bob.client.contact_requests().await.unwrap().is_empty());

    let mut hello = alice.client.send_message(bob_id, "hi bob").await.unwrap();
    assert_eq!(bob.expect_message(alice_id).await, "hi bob");
    assert_eq!(hello.finished().await, MessageStatus::Acknowledged);

    let mut reply = bob.client.send_message(alice_id, "hi alice").await.unwrap();
    assert_eq!(alice.expect_message(bob_id).await, "hi alice");
    assert_eq!(reply.finished().await, MessageStatus::Acknowledged);

    let history = alice.client.messages(bob_id, None, 10).await.unwrap();
    let texts: Vec<_> = history
        .iter()
        .map(|m| (m.direction, m.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (MessageDirection::Outgoing, "hi bob"),
            (MessageDirection::Incoming, "hi alice")
        ]
    );
    alice.client.shutdown().await;
    bob.client.shutdown().await;
}

#[tokio::test]
async fn rejected_request_blocks_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());

    alice
        .client
        .send_contact_request(bob_id, "", "let me in")
        .await
        .unwrap();
    let request = bob.expect_request().await;
    request.reject().await.unwrap();
    let answer = alice
        .expect("a final answer", |event| match event {
            Event::ContactRequestAnswered { answer, .. } => Some(answer),
            _ => None,
        })
        .await;
    assert_eq!(answer, RequestAnswer::Rejected);
    alice.expect_status(bob_id, ContactStatus::Rejected).await;
    assert_eq!(bob.client.blocked().await.unwrap(), [alice_id]);
    assert!(bob.client.contact_requests().await.unwrap().is_empty());

    // A rejected request is not retried (§8.3) ...
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(bob.client.stats().await.unwrap().connections, 0);
    // ... and a new one is refused automatically (§8.2), unseen by bob's user.
    alice
        .client
        .send_contact_request(bob_id, "", "please?")
        .await
        .unwrap();
    let answer = alice
        .expect("a final answer", |event| match event {
            Event::ContactRequestAnswered { answer, .. } => Some(answer),
            _ => None,
        })
        .await;
    assert_eq!(answer, RequestAnswer::Rejected);
    while let Some(event) = bob.events.try_next() {
        assert!(
            !matches!(event, Event::ContactRequestReceived(_)),
            "a blocked sender's request reached the user"
        );
    }
    // Messages to a rejecting id are refused locally.
    assert!(alice.client.send_message(bob_id, "hello?").await.is_err());
}

#[tokio::test]
async fn messages_to_an_offline_contact_are_delivered_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());
    befriend(&mut alice, &mut bob).await;

    bob.client.shutdown().await;
    drop(bob);
    alice.expect_status(bob_id, ContactStatus::Offline).await;
    let mut handles = Vec::new();
    for text in ["one", "two", "three"] {
        let handle = alice.client.send_message(bob_id, text).await.unwrap();
        assert_eq!(handle.status(), MessageStatus::Queued);
        handles.push(handle);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut bob = start(&dir.path().join("bob"), &directory).await;
    let mut received = Vec::new();
    for _ in 0..3 {
        let message = bob
            .expect("a queued message", |event| match event {
                Event::MessageReceived(message) => Some(message),
                _ => None,
            })
            .await;
        assert_eq!(message.contact, alice_id);
        received.push(message);
    }
    let texts: Vec<_> = received.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    // Sent late: the negative time_delta dates them back to when they were written.
    let now = std::time::SystemTime::now();
    for message in &received {
        assert!(now.duration_since(message.time).unwrap() >= Duration::from_secs(1));
    }
    for handle in &mut handles {
        assert_eq!(handle.finished().await, MessageStatus::Acknowledged);
    }
}

#[tokio::test]
async fn long_texts_are_split() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    let alice_id = alice.id();
    befriend(&mut alice, &mut bob).await;

    // 4500 UTF-16 units, with surrogate pairs across the 2000 boundary.
    let text = format!("{}{}", "a".repeat(1999), "\u{1F600}".repeat(1250));
    let mut handle = alice.client.send_message(bob.id(), &text).await.unwrap();
    assert_eq!(handle.ids().len(), 3);
    let mut joined = String::new();
    for _ in 0..3 {
        joined.push_str(&bob.expect_message(alice_id).await);
    }
    assert_eq!(joined, text);
    assert_eq!(handle.finished().await, MessageStatus::Acknowledged);
}

#[tokio::test]
async fn simultaneous_dials_leave_one_connection_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    befriend(&mut alice, &mut bob).await;
    alice.client.shutdown().await;
    bob.client.shutdown().await;
    drop((alice, bob));

    for round in 0..5 {
        // Both start at once and dial each other at once.
        let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
        let (mut alice, mut bob) =
            tokio::join!(start(&alice_dir, &directory), start(&bob_dir, &directory));
        let (alice_id, bob_id) = (alice.id(), bob.id());
        alice.expect_status(bob_id, ContactStatus::Online).await;
        bob.expect_status(alice_id, ContactStatus::Online).await;
        let settled = || async {
            let a = alice.client.stats().await.unwrap();
            let b = bob.client.stats().await.unwrap();
            a.connections == 1 && b.connections == 1
        };
        eventually("one connection on each side", settled).await;
        // Stable, and it works.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            alice.client.stats().await.unwrap().connections,
            1,
            "round {round}"
        );
        assert_eq!(
            bob.client.stats().await.unwrap().connections,
            1,
            "round {round}"
        );
        let mut ping = alice.client.send_message(bob_id, "ping").await.unwrap();
        assert_eq!(bob.expect_message(alice_id).await, "ping");
        assert_eq!(ping.finished().await, MessageStatus::Acknowledged);
        alice.client.shutdown().await;
        bob.client.shutdown().await;
    }
}

#[tokio::test]
async fn three_clients_chat_pairwise() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    let mut carol = start(&dir.path().join("carol"), &directory).await;
    befriend(&mut alice, &mut bob).await;
    befriend(&mut bob, &mut carol).await;
    befriend(&mut carol, &mut alice).await;
    let ids = [alice.id(), bob.id(), carol.id()];
    let peers: [&mut Peer; 3] = [&mut alice, &mut bob, &mut carol];
    let [a, b, c] = peers;
    a.client.send_message(ids[1], "a→b").await.unwrap();
    a.client.send_message(ids[2], "a→c").await.unwrap();
    b.client.send_message(ids[2], "b→c").await.unwrap();
    assert_eq!(b.expect_message(ids[0]).await, "a→b");
    let mut at_carol = vec![c.expect_message_any().await, c.expect_message_any().await];
    at_carol.sort();
    let mut expected = vec![(ids[0], "a→c".to_owned()), (ids[1], "b→c".to_owned())];
    expected.sort();
    assert_eq!(at_carol, expected);
    for peer in [a, b, c] {
        assert_eq!(peer.client.stats().await.unwrap().contact_connections, 2);
        assert_eq!(peer.client.contacts().await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn restart_with_queued_messages_delivers_each_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let mut alice = start(&alice_dir, &directory).await;
    let mut bob = start(&bob_dir, &directory).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());
    befriend(&mut alice, &mut bob).await;
    bob.client.shutdown().await;
    drop(bob);

    for i in 0..20 {
        alice
            .client
            .send_message(bob_id, &format!("queued {i}"))
            .await
            .unwrap();
    }
    alice.client.shutdown().await;
    drop(alice);

    let alice = start(&alice_dir, &directory).await;
    let mut bob = start(&bob_dir, &directory).await;
    for i in 0..20 {
        assert_eq!(bob.expect_message(alice_id).await, format!("queued {i}"));
    }
    let acked = || async {
        let history = alice.client.messages(bob_id, None, 100).await.unwrap();
        history.len() == 20
            && history
                .iter()
                .all(|m| m.status == MessageStatus::Acknowledged)
    };
    eventually("every message acknowledged", acked).await;

    // Another restart of both sends nothing again.
    alice.client.shutdown().await;
    bob.client.shutdown().await;
    drop((alice, bob));
    let alice = start(&alice_dir, &directory).await;
    let mut bob = start(&bob_dir, &directory).await;
    bob.expect_status(alice_id, ContactStatus::Online).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Some(event) = bob.events.try_next() {
        assert!(!matches!(event, Event::MessageReceived(_)), "{event:?}");
    }
    let history = bob.client.messages(alice_id, None, 100).await.unwrap();
    assert_eq!(history.len(), 20);
    assert!(
        history
            .iter()
            .all(|m| m.direction == MessageDirection::Incoming)
    );
    drop(alice);
}

#[tokio::test]
async fn protocol_1_pair_main_flow() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = common::start_with(&dir.path().join("alice"), &directory, |b| {
        b.v2_identity(true)
    })
    .await;
    let mut bob =
        common::start_with(&dir.path().join("bob"), &directory, |b| b.v2_identity(true)).await;
    let (alice_v2, bob_v2) = (alice.client.ids()[1], bob.client.ids()[1]);
    assert_eq!(alice_v2.generation(), ricochet_client::Generation::V2);

    alice
        .client
        .send_contact_request(bob_v2, "bob", "old school")
        .await
        .unwrap();
    let request = bob.expect_request().await;
    assert_eq!(request.sender(), alice_v2);
    request.accept("alice").await.unwrap();
    alice.expect_status(bob_v2, ContactStatus::Online).await;
    bob.expect_status(alice_v2, ContactStatus::Online).await;

    let mut hello = alice
        .client
        .send_message(bob_v2, "hi over v2")
        .await
        .unwrap();
    assert_eq!(bob.expect_message(alice_v2).await, "hi over v2");
    assert_eq!(hello.finished().await, MessageStatus::Acknowledged);
    let mut reply = bob.client.send_message(alice_v2, "and back").await.unwrap();
    assert_eq!(alice.expect_message(bob_v2).await, "and back");
    assert_eq!(reply.finished().await, MessageStatus::Acknowledged);

    // The same client talks to a v3 contact with its v3 identity.
    let mut carol = start(&dir.path().join("carol"), &directory).await;
    befriend(&mut carol, &mut alice).await;
    let mut to_carol = alice
        .client
        .send_message(carol.id(), "hi over v3")
        .await
        .unwrap();
    assert_eq!(carol.expect_message(alice.id()).await, "hi over v3");
    assert_eq!(to_carol.finished().await, MessageStatus::Acknowledged);
    let mut to_bob = alice.client.send_message(bob_v2, "still v2").await.unwrap();
    assert_eq!(bob.expect_message(alice_v2).await, "still v2");
    assert_eq!(to_bob.finished().await, MessageStatus::Acknowledged);

    // Files are a protocol-3 feature.
    let file = dir.path().join("f.txt");
    std::fs::write(&file, b"data").unwrap();
    assert!(matches!(
        alice.client.send_file(bob_v2, &file).await,
        Err(ricochet_client::ClientError::FileTransferUnsupported { .. })
    ));
}

#[tokio::test]
async fn a_requested_contact_connecting_to_us_accepts_implicitly() {
    let dir = tempfile::tempdir().unwrap();
    // Alice cannot reach Bob (her directory lacks him); Bob can reach Alice.
    let (alice_directory, bob_directory) = (Directory::new(), Directory::new());
    let mut alice = start(&dir.path().join("alice"), &alice_directory).await;
    let mut bob = start(&dir.path().join("bob"), &bob_directory).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());
    bob_directory.insert(
        *alice_id.service_id(),
        alice_directory.get(alice_id.service_id()).unwrap(),
    );

    alice
        .client
        .send_contact_request(bob_id, "bob", "")
        .await
        .unwrap();
    // Bob asks Alice too; his connection proves who he is, and Alice's
    // pending request makes him a contact at once (§8.3, §11.4).
    bob.client
        .send_contact_request(alice_id, "alice", "")
        .await
        .unwrap();
    let answer = alice
        .expect("an implicit acceptance", |event| match event {
            Event::ContactRequestAnswered { contact, answer } if contact == bob_id => Some(answer),
            _ => None,
        })
        .await;
    assert_eq!(answer, RequestAnswer::Accepted);
    alice.expect_status(bob_id, ContactStatus::Online).await;
    bob.expect_status(alice_id, ContactStatus::Online).await;
    assert!(alice.client.contact_requests().await.unwrap().is_empty());
    assert!(bob.client.contact_requests().await.unwrap().is_empty());
    let mut hi = bob.client.send_message(alice_id, "hi").await.unwrap();
    assert_eq!(alice.expect_message(bob_id).await, "hi");
    assert_eq!(hi.finished().await, MessageStatus::Acknowledged);
}

#[tokio::test]
async fn unauthenticated_connections_are_bounded_and_time_out() {
    use tokio::io::AsyncReadExt;

    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut limits = ricochet_client::Limits::default();
    limits.max_unauthenticated_connections = 4;
    limits.authentication_timeout = Duration::from_secs(1);
    let mut bob =
        common::start_with(&dir.path().join("bob"), &directory, |b| b.limits(limits)).await;
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    befriend(&mut alice, &mut bob).await;
    let bob_addr = directory.get(bob.id().service_id()).unwrap();

    // Ten peers connect and say nothing.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(tokio::net::TcpStream::connect(bob_addr).await.unwrap());
    }
    let closed_at = |mut stream: tokio::net::TcpStream| async move {
        let started = tokio::time::Instant::now();
        let mut buf = [0; 16];
        // Closed means EOF (or a reset), never data: we never introduced ourselves.
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => started.elapsed(),
            other => panic!("expected the connection to close, got {other:?}"),
        }
    };
    let mut waits = Vec::new();
    for stream in silent {
        waits.push(tokio::spawn(closed_at(stream)));
    }
    let mut times = Vec::new();
    for wait in waits {
        times.push(wait.await.unwrap());
    }
    times.sort();
    // Six were refused at once; four were held until the 1 s deadline.
    let quick = times
        .iter()
        .filter(|t| **t < Duration::from_millis(700))
        .count();
    assert_eq!(quick, 6, "{times:?}");
    assert!(times[9] < Duration::from_secs(5), "{times:?}");
    // The contact kept chatting all along.
    let mut hi = alice
        .client
        .send_message(bob.id(), "still here")
        .await
        .unwrap();
    assert_eq!(bob.expect_message(alice.id()).await, "still here");
    assert_eq!(hi.finished().await, MessageStatus::Acknowledged);
}

#[tokio::test]
async fn mutual_requests_at_once_make_contacts_with_one_connection() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::new();
        let mut alice = start(&dir.path().join("alice"), &directory).await;
        let mut bob = start(&dir.path().join("bob"), &directory).await;
        let (alice_id, bob_id) = (alice.id(), bob.id());
        let (a, b) = tokio::join!(
            alice.client.send_contact_request(bob_id, "bob", ""),
            bob.client.send_contact_request(alice_id, "alice", "")
        );
        a.unwrap();
        b.unwrap();
        alice.expect_status(bob_id, ContactStatus::Online).await;
        bob.expect_status(alice_id, ContactStatus::Online).await;
        let settled = || async {
            let a = alice.client.stats().await.unwrap();
            let b = bob.client.stats().await.unwrap();
            a.connections == 1 && b.connections == 1
        };
        eventually("one connection on each side", settled).await;
        assert!(
            alice.client.contact_requests().await.unwrap().is_empty(),
            "round {round}"
        );
        assert!(
            bob.client.contact_requests().await.unwrap().is_empty(),
            "round {round}"
        );
        let mut hi = bob.client.send_message(alice_id, "hi").await.unwrap();
        assert_eq!(alice.expect_message(bob_id).await, "hi");
        assert_eq!(hi.finished().await, MessageStatus::Acknowledged);
    }
}

#[tokio::test]
async fn a_request_to_an_offline_id_is_retried_until_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    // Bob's identity exists, but Bob is not running yet.
    let bob_key = ricochet_client::IdentityKey::generate(ricochet_client::Generation::V3).unwrap();
    let bob_id: ricochet_client::RicochetId = bob_key.service_id().into();
    alice
        .client
        .send_contact_request(bob_id, "Bob", "are you there?")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        alice.client.contact(bob_id).await.unwrap().unwrap().status,
        ContactStatus::RequestPending
    );

    let mut bob =
        common::start_with(&dir.path().join("bob"), &directory, |b| b.identity(bob_key)).await;
    assert_eq!(bob.id(), bob_id);
    let request = bob.expect_request().await;
    assert_eq!(request.request().message, "are you there?");
    request.accept("Alice").await.unwrap();
    alice.expect_status(bob_id, ContactStatus::Online).await;
}

/// `send_messages` queues a burst in order with one handle per text, an
/// empty text refuses the whole call, and sends from many tasks at once
/// (which the store takes in shared transactions) each arrive once, in
/// the order each task sent them, all acknowledged.
#[tokio::test]
async fn bursts_and_concurrent_sends_arrive_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    befriend(&mut alice, &mut bob).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());

    assert!(matches!(
        alice.client.send_messages(bob_id, ["a", ""]).await,
        Err(ricochet_client::ClientError::EmptyMessage)
    ));
    assert!(
        alice
            .client
            .messages(bob_id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let burst: Vec<String> = (0..300).map(|i| format!("burst {i}")).collect();
    let handles = alice.client.send_messages(bob_id, &burst).await.unwrap();
    assert_eq!(handles.len(), burst.len());
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let client = alice.client.clone();
            tokio::spawn(async move {
                let mut handles = Vec::new();
                for i in 0..25 {
                    let text = format!("task {task} message {i}");
                    handles.push(client.send_message(bob_id, &text).await.unwrap());
                }
                handles
            })
        })
        .collect();
    let mut all = handles;
    for task in tasks {
        all.extend(task.await.unwrap());
    }

    let mut received = Vec::new();
    while received.len() < 500 {
        received.push(bob.expect_message(alice_id).await);
    }
    let bursts: Vec<&String> = received.iter().filter(|t| t.starts_with("burst")).collect();
    assert_eq!(bursts, burst.iter().collect::<Vec<_>>());
    for task in 0..8 {
        let prefix = format!("task {task} ");
        let mine: Vec<&String> = received.iter().filter(|t| t.starts_with(&prefix)).collect();
        let expected: Vec<String> = (0..25).map(|i| format!("{prefix}message {i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
    for mut handle in all {
        assert_eq!(handle.finished().await, MessageStatus::Acknowledged);
    }
    // Nothing more arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        bob.client
            .messages(alice_id, None, 1000)
            .await
            .unwrap()
            .len(),
        500
    );
}

async fn receive(peer: &mut Peer, from: ricochet_client::RicochetId, count: usize) -> Vec<String> {
    let mut received = Vec::new();
    while received.len() < count {
        received.push(peer.expect_message(from).await);
    }
    received
}

/// Two clients sending each other long texts at once, more of them than
/// the bytes a connection lets wait before it stops reading
/// (`Limits::max_queued_output`, small here): if each side's own chat
/// could fill that, both would stop reading and neither would drain.
#[tokio::test]
async fn long_texts_both_ways_at_once_keep_flowing() {
    const COUNT: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let small_output = |builder: ricochet_client::ClientBuilder| {
        let mut limits = ricochet_client::Limits::default();
        limits.max_queued_output = 256 * 1024;
        builder.limits(limits)
    };
    let mut alice = common::start_with(&dir.path().join("alice"), &directory, small_output).await;
    let mut bob = common::start_with(&dir.path().join("bob"), &directory, small_output).await;
    befriend(&mut alice, &mut bob).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());

    // 1985 three-byte characters and a label: nearly the longest text of
    // one message (2000 UTF-16 units), about 6 000 bytes; 2000 of them
    // are 11.4 MiB each way, more than the sockets between the two hold.
    // (Without the bound on the bytes in flight, this stalled for good.)
    let texts = |from: &str| -> Vec<String> {
        (0..COUNT)
            .map(|i| format!("{from} {i:04} {}", "€".repeat(1985)))
            .collect()
    };
    let (to_bob, to_alice) = (texts("alice"), texts("bob"));
    let (sent_to_bob, sent_to_alice) = tokio::join!(
        alice.client.send_messages(bob_id, &to_bob),
        bob.client.send_messages(alice_id, &to_alice)
    );
    let (sent_to_bob, sent_to_alice) = (sent_to_bob.unwrap(), sent_to_alice.unwrap());
    assert_eq!(sent_to_bob.len(), COUNT);
    let (at_bob, at_alice) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(
            receive(&mut bob, alice_id, COUNT),
            receive(&mut alice, bob_id, COUNT)
        )
    })
    .await
    .expect("both directions delivered everything");
    // Whole, once each, in order (compared without printing 5 MiB).
    assert!(at_bob == to_bob, "alice's texts arrived changed");
    assert!(at_alice == to_alice, "bob's texts arrived changed");
    for mut handle in sent_to_bob.into_iter().chain(sent_to_alice) {
        assert_eq!(handle.finished().await, MessageStatus::Acknowledged);
    }
}
