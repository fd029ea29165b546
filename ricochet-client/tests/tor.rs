//! The main flow (request → pending → accept → chat both ways with acks)
//! over real onion services on the private Tor network, with the system-tor
//! backend (C tor through its control port) and with embedded arti.
//!
//! Needs `tor` (the network is started once per test process); without it
//! the tests say so loudly and pass, unless `RICOCHET_REQUIRE_TOR` is set,
//! as in CI. The arti test needs the `arti` feature.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::{Peer, start_on};
use ricochet_client::{ContactStatus, Event, MessageStatus, RequestAnswer};

/// Runs the main flow and prints how long each step took.
async fn main_flow(backend: &str, alice: &mut Peer, bob: &mut Peer, started: Instant) {
    let (alice_id, bob_id) = (alice.id(), bob.id());
    let up = started.elapsed();
    alice
        .client
        .send_contact_request(bob_id, "bob", "over tor")
        .await
        .unwrap();
    let request = bob.expect_request().await;
    let request_arrived = started.elapsed();
    assert_eq!(request.from(), alice_id);
    let answer = alice
        .expect("a pending answer", |event| match event {
            Event::ContactRequestAnswered { answer, .. } => Some(answer),
            _ => None,
        })
        .await;
    assert_eq!(answer, RequestAnswer::Pending);
    request.accept("alice").await.unwrap();
    alice.expect_status(bob_id, ContactStatus::Online).await;
    bob.expect_status(alice_id, ContactStatus::Online).await;

    let sent = Instant::now();
    let mut hello = alice
        .client
        .send_message(bob_id, "hello over tor")
        .await
        .unwrap();
    assert_eq!(bob.expect_message(alice_id).await, "hello over tor");
    assert_eq!(hello.finished().await, MessageStatus::Acknowledged);
    let round_trip = sent.elapsed();
    let mut reply = bob
        .client
        .send_message(alice_id, "hello back")
        .await
        .unwrap();
    assert_eq!(alice.expect_message(bob_id).await, "hello back");
    assert_eq!(reply.finished().await, MessageStatus::Acknowledged);
    eprintln!(
        "{backend}: clients up {up:?}; request arrived {request_arrived:?}; \
         acked round trip {round_trip:?}; whole flow {:?}",
        started.elapsed()
    );
    assert_eq!(alice.client.stats().await.unwrap().contact_connections, 1);
    assert_eq!(bob.client.stats().await.unwrap().contact_connections, 1);
    alice.client.shutdown().await;
    bob.client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_flow_over_system_tor() {
    use ricochet_client::transport_backends::control::{ControlAddr, SystemTor, SystemTorConfig};
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let system_tor = |port: u16| {
        SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(
            ([127, 0, 0, 1], port).into(),
        )))
    };
    let dir = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let started = Instant::now();
    let (mut alice, mut bob) = tokio::join!(
        start_on(&alice_dir, system_tor(net.hs_control)),
        start_on(&bob_dir, system_tor(net.cl_control)),
    );
    main_flow("system tor", &mut alice, &mut bob, started).await;
}

#[cfg(feature = "arti")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_flow_over_arti() {
    use ricochet_client::transport_backends::arti::{ArtiConfig, ArtiTransport};
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let arti = |name: &str| {
        ArtiTransport::new(
            ArtiConfig::new(dir.path().join(format!("{name}-arti")))
                .custom_network(net.arti_toml.clone()),
        )
        .unwrap()
    };
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let started = Instant::now();
    let (mut alice, mut bob) = tokio::join!(
        start_on(&alice_dir, arti("alice")),
        start_on(&bob_dir, arti("bob")),
    );
    main_flow("arti", &mut alice, &mut bob, started).await;
}
