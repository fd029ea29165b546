//! What a developer embedding the client relies on: our service's state,
//! dial failures as events, `connect_now`, a control port that does not
//! answer, and error chains that print each cause once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::start_with;
use ricochet_client::transport::tcp::Directory;
use ricochet_client::transport::{ErrorKind, ServiceStatus};
use ricochet_client::{ClientError, Event, Generation, IdentityKey, ReconnectPolicy};

/// A client on the direct transport is published at once; a request to
/// someone offline fails as an event with the time of the next attempt;
/// `connect_now` reaches the peer as soon as it is up, long before that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_state_dial_failures_and_connect_now() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let an_hour = Duration::from_secs(3600);
    let mut alice = start_with(&dir.path().join("alice"), &directory, |builder| {
        builder.reconnect(ReconnectPolicy::fixed(an_hour))
    })
    .await;
    alice.client.published().await.unwrap();
    assert_eq!(alice.client.service_status(), ServiceStatus::Published);
    let alice_id = alice.id();
    let published = alice
        .expect("our service's state", |event| match event {
            Event::ServiceStatusChanged { id, status } if id == alice_id => Some(status),
            _ => None,
        })
        .await;
    assert_eq!(published, ServiceStatus::Published);

    // Bob is not running yet.
    let bob_key = IdentityKey::generate(Generation::V3).unwrap();
    let bob_id = bob_key.service_id().into();
    alice
        .client
        .send_contact_request(bob_id, "bob", "hello")
        .await
        .unwrap();
    let (error, retry_in) = alice
        .expect("a dial failure", |event| match event {
            Event::DialFailed {
                contact,
                error,
                retry_in,
            } if contact == bob_id => Some((error, retry_in)),
            _ => None,
        })
        .await;
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    let retry_in = retry_in.expect("a next attempt");
    assert!(
        retry_in > an_hour - Duration::from_secs(60) && retry_in <= an_hour,
        "{retry_in:?}"
    );

    // Bob comes up; Alice's schedule says an hour, connect_now says now.
    let mut bob = start_with(&dir.path().join("bob"), &directory, |builder| {
        builder.identity(bob_key)
    })
    .await;
    alice.client.connect_now(bob_id).await.unwrap();
    let request = bob.expect_request().await;
    assert_eq!(request.sender(), alice_id);

    // Only contacts and pending requests can be dialled.
    let stranger = IdentityKey::generate(Generation::V3).unwrap();
    let error = alice
        .client
        .connect_now(stranger.service_id().into())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::NoSuchContact { .. }),
        "{error}"
    );
    alice.client.shutdown().await;
    bob.client.shutdown().await;
}

/// A control address that accepts and never answers fails `start()` with
/// `TimedOut` within the handshake bound, naming the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_port_that_never_answers_fails_start() {
    use ricochet_client::transport::control::{ControlAddr, SystemTor, SystemTorConfig};

    let address = ricochet_testnet::silent_listener();
    let mut config = SystemTorConfig::new(ControlAddr::Tcp(address));
    config.handshake_timeout = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        ricochet_client::ClientBuilder::new(dir.path())
            .transport(SystemTor::new(config))
            .start(),
    )
    .await
    .expect("start() returns");
    let Err(ClientError::Transport(error)) = outcome else {
        panic!("start() should fail with a transport error");
    };
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(15));
    let chain = ricochet_client::ErrorChain(&error).to_string();
    assert!(chain.contains(&address.to_string()), "{chain}");
}

/// The messages of an error's `source()` chain, outermost first.
fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        messages.push(error.to_string());
        next = error.source();
    }
    messages
}

/// Each message of the chain says its own part: no message repeats the
/// text of a cause below it (as `{}` of the outer and `source()` both
/// would, which `anyhow`'s `{:#}` and `ErrorChain` then print twice).
fn assert_each_cause_once(what: &str, error: &(dyn std::error::Error + 'static), depth: usize) {
    let messages = chain(error);
    assert!(
        messages.len() >= depth,
        "{what}: expected a chain of {depth}, got {messages:?}"
    );
    for (i, outer) in messages.iter().enumerate() {
        assert!(
            !outer.is_empty(),
            "{what}: an empty message in {messages:?}"
        );
        for inner in &messages[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{what}: {outer:?} repeats its cause {inner:?}"
            );
        }
    }
    eprintln!("{what}: {}", ricochet_client::ErrorChain(error));
}

/// Representative errors of every crate, made the way an application
/// meets them, print each cause once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_chains_print_each_cause_once() {
    use ricochet_client::transport::control::{ControlAddr, SystemTor, SystemTorConfig};

    let dir = tempfile::tempdir().unwrap();

    // A key file that is not there (identity → io).
    let missing = IdentityKey::load(dir.path().join("no-such-key")).unwrap_err();
    assert_each_cause_once("key file", &missing, 2);
    let wrapped = ClientError::from(missing);
    assert_each_cause_once("client identity", &wrapped, 3);

    // A profile directory under a regular file (client → io).
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let Err(error) = ricochet_client::ClientBuilder::new(file.join("profile"))
        .transport(ricochet_client::transport::tcp::TcpTransport::new(
            Directory::new(),
        ))
        .start()
        .await
    else {
        panic!("a profile under a file cannot start");
    };
    assert_each_cause_once("profile directory", &error, 2);

    // No tor at the control address (client → transport → control port → io).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let Err(error) = ricochet_client::ClientBuilder::new(dir.path().join("p"))
        .transport(SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(
            closed,
        ))))
        .start()
        .await
    else {
        panic!("no tor there");
    };
    assert_each_cause_once("control port refused", &error, 4);

    // A contact request and a nickname that break the spec's rules.
    let directory = Directory::new();
    let alice = start_with(&dir.path().join("alice"), &directory, |b| b).await;
    let bob = IdentityKey::generate(Generation::V3).unwrap();
    let Err(error) = ricochet_client::ClientBuilder::new(dir.path().join("q"))
        .transport(ricochet_client::transport::tcp::TcpTransport::new(
            directory.clone(),
        ))
        .nickname("<bob>")
        .start()
        .await
    else {
        panic!("a nickname with < cannot be ours");
    };
    assert_each_cause_once("bad nickname", &error, 2);
    let error = alice
        .client
        .send_contact_request(bob.service_id().into(), "bob", &"x".repeat(3000))
        .await
        .unwrap_err();
    assert_each_cause_once("long request", &error, 2);

    // An id with a typo (no cause, but a hint).
    let error = "ricochet:qfdsfxtrywyu45en74zcvz7xyqk45zkyozsjkkjm23cmbjvj34up6ayX"
        .parse::<ricochet_client::RicochetId>()
        .unwrap_err();
    assert_each_cause_once("id", &error, 1);
    alice.client.shutdown().await;
}

/// The statuses each side sees from a request to chat: the request is
/// reported delivered (not as an answer), and the contact goes straight
/// from pending to online, without an `Offline` in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_from_request_to_online() {
    use ricochet_client::ContactStatus;

    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = common::start(&dir.path().join("alice"), &directory).await;
    let mut bob = common::start(&dir.path().join("bob"), &directory).await;
    let (alice_id, bob_id) = (alice.id(), bob.id());
    alice
        .client
        .send_contact_request(bob_id, "bob", "hello")
        .await
        .unwrap();
    let request = bob.expect_request().await;
    let mut alice_saw = Vec::new();
    alice
        .expect("the request delivered", |event| match event {
            Event::ContactStatusChanged { status, .. } => {
                alice_saw.push(status.to_string());
                None
            }
            Event::ContactRequestDelivered { contact } => Some(contact),
            _ => None,
        })
        .await;
    request.accept("alice").await.unwrap();
    let mut bob_saw = Vec::new();
    bob.expect("alice online", |event| match event {
        Event::ContactStatusChanged { contact, status } if contact == alice_id => {
            bob_saw.push(status.to_string());
            (status == ContactStatus::Online).then_some(())
        }
        _ => None,
    })
    .await;
    alice
        .expect("bob online", |event| match event {
            Event::ContactStatusChanged { contact, status } if contact == bob_id => {
                alice_saw.push(status.to_string());
                (status == ContactStatus::Online).then_some(())
            }
            _ => None,
        })
        .await;
    assert_eq!(alice_saw, ["request pending", "online"]);
    assert_eq!(bob_saw, ["online"]);
    alice.client.shutdown().await;
    bob.client.shutdown().await;
}

/// `Events` is a `futures` stream; the message-length helpers say how
/// `send_message` cuts a text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_a_stream_and_texts_split_as_sent() {
    use futures_core::Stream as _;

    let dir = tempfile::tempdir().unwrap();
    let mut alice = common::start(&dir.path().join("alice"), &Directory::new()).await;
    let first = std::future::poll_fn(|cx| std::pin::Pin::new(&mut alice.events).poll_next(cx))
        .await
        .expect("an event");
    assert!(
        matches!(first, Event::ServiceStatusChanged { .. }),
        "{first:?}"
    );

    let text = "é".repeat(2500);
    assert_eq!(ricochet_client::message_len(&text), 2500);
    let parts = ricochet_client::split_message(&text);
    assert_eq!(
        parts
            .iter()
            .map(|p| ricochet_client::message_len(p))
            .collect::<Vec<_>>(),
        [ricochet_client::MAX_MESSAGE_UTF16, 500]
    );
    assert!(ricochet_client::split_message("").is_empty());
    alice.client.shutdown().await;
}

/// What a `tracing` subscriber at `info` sees: published (at once, on the
/// direct transport),
/// and a contact that cannot be reached warned about once per run of
/// failures, not at every attempt.
#[tokio::test(flavor = "current_thread")]
async fn logs_say_what_matters_once() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This runtime's one thread: the driver, the core, the connections.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let mut alice = start_with(&dir.path().join("alice"), &Directory::new(), |b| b).await;
    let nobody = IdentityKey::generate(Generation::V3).unwrap();
    let nobody_id = nobody.service_id().into();
    alice
        .client
        .send_contact_request(nobody_id, "nobody", "hello?")
        .await
        .unwrap();
    for _ in 0..3 {
        alice
            .expect("a dial failure", |event| {
                matches!(event, Event::DialFailed { contact, .. } if contact == nobody_id)
                    .then_some(())
            })
            .await;
    }
    alice.client.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines = |level: &str, text: &str| {
        logs.lines()
            .filter(|l| l.contains(level) && l.contains(text))
            .count()
    };
    assert_eq!(lines("INFO", "connected to the Tor network"), 1, "{logs}");
    assert_eq!(lines("INFO", "our onion service is published"), 1, "{logs}");
    assert_eq!(lines("INFO", "status=request pending"), 1, "{logs}");
    assert_eq!(lines("WARN", "could not reach the contact"), 1, "{logs}");
    assert!(!logs.contains("Stream(None)"), "{logs}");
}
