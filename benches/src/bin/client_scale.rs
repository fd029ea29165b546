//! Connection-scale figures of the full client stack over loopback TCP
//! (results go to BENCHMARKS.md; nothing here is asserted in tests).
//!
//! ```text
//! cargo run --release -p ricochet-benches --bin client_scale -- throughput 20000
//! cargo run --release -p ricochet-benches --bin client_scale -- handshakes v3 2000
//! cargo run --release -p ricochet-benches --bin client_scale -- idle 10000
//! ```
//!
//! Everything runs on one tokio current-thread runtime, i.e. one core,
//! except `idle`, whose peers run in a child process so that the server's
//! resident memory is its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ricochet_client::transport::tcp::{Directory, TcpTransport};
use ricochet_client::{
    Client, ClientBuilder, ContactStatus, Event, Events, Generation, IdentityKey, Limits,
    MessageStatus, ReconnectPolicy, RicochetId, ServiceId,
};
use ricochet_proto::message::contact_request::ContactRequest;
use ricochet_proto::{Event as SessionEvent, Session, SessionConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn main() {
    if std::env::var_os("RICOCHET_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("throughput") => runtime.block_on(throughput(number(1, 20_000), number(2, 1))),
        Some("handshakes") => {
            let generation = match args.get(1).map(String::as_str) {
                Some("v2") => Generation::V2,
                _ => Generation::V3,
            };
            runtime.block_on(handshakes(generation, number(2, 2_000)));
        }
        Some("idle") => runtime.block_on(idle_server(number(1, 10_000))),
        Some("idle-peers") => runtime.block_on(idle_peers(
            args.get(1).unwrap().parse().unwrap(),
            args.get(2).unwrap().parse().unwrap(),
            number(3, 10_000),
        )),
        _ => eprintln!(
            "usage: client_scale throughput [N [BATCH]] | handshakes v2|v3 [N] | idle [N]"
        ),
    }
}

async fn client(dir: &Path, directory: &Directory, limits: Limits, v2: bool) -> (Client, Events) {
    ClientBuilder::new(dir)
        .transport(TcpTransport::new(directory.clone()).listen_on("127.0.0.1:0".parse().unwrap()))
        .reconnect(ReconnectPolicy::fixed(Duration::from_millis(100)))
        .limits(limits)
        .v2_identity(v2)
        .start()
        .await
        .unwrap()
}

async fn wait_online(events: &mut Events, id: RicochetId) {
    while let Some(event) = events.next().await {
        if let Event::ContactStatusChanged {
            contact,
            status: ContactStatus::Online,
        } = event
            && contact == id
        {
            return;
        }
    }
}

/// Two clients become contacts (a's request, b accepts).
async fn befriend(a: &Client, a_events: &mut Events, b_events: &mut Events, b_id: RicochetId) {
    a.send_contact_request(b_id, "", "").await.unwrap();
    loop {
        if let Some(Event::ContactRequestReceived(request)) = b_events.next().await {
            request.accept("peer").await.unwrap();
            break;
        }
    }
    wait_online(a_events, b_id).await;
}

/// Acknowledged chat messages per second on one connection, full stack:
/// API call, SQLite on both sides, sessions, TCP, acknowledgement back.
/// `batch` texts go in each call (`send_message` for 1, else
/// `send_messages`).
async fn throughput(messages: usize, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let (alice, mut alice_events) =
        client(&dir.path().join("a"), &directory, Limits::default(), false).await;
    let (bob, mut bob_events) =
        client(&dir.path().join("b"), &directory, Limits::default(), false).await;
    befriend(&alice, &mut alice_events, &mut bob_events, bob.id()).await;
    let started = Instant::now();
    let sender = alice.clone();
    let bob_id = bob.id();
    let sending = tokio::spawn(async move {
        let texts: Vec<String> = (0..messages).map(|i| format!("message {i}")).collect();
        if batch <= 1 {
            for text in &texts {
                sender.send_message(bob_id, text).await.unwrap();
            }
        } else {
            for chunk in texts.chunks(batch) {
                sender.send_messages(bob_id, chunk).await.unwrap();
            }
        }
    });
    let mut acked = 0;
    let mut received = 0;
    while acked < messages || received < messages {
        tokio::select! {
            Some(event) = alice_events.next() => {
                if let Event::MessageStatusChanged { status: MessageStatus::Acknowledged, .. } = event {
                    acked += 1;
                }
            }
            Some(event) = bob_events.next() => {
                if let Event::MessageReceived(_) = event {
                    received += 1;
                }
            }
        }
    }
    sending.await.unwrap();
    let elapsed = started.elapsed();
    println!(
        "throughput: {messages} messages sent ({batch} per call), received and acknowledged \
         in {elapsed:?}: {:.0} acked messages/s (one core, both clients in this process)",
        messages as f64 / elapsed.as_secs_f64()
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

/// Drives a raw client session over `stream` until `done` says so.
async fn drive(
    session: &mut Session,
    stream: &mut TcpStream,
    mut done: impl FnMut(&mut Session, SessionEvent) -> bool,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        while let Some(bytes) = session.poll_transmit() {
            stream.write_all(&bytes).await.unwrap();
        }
        if let Some(event) = session.poll_event() {
            let finished = done(session, event);
            while let Some(bytes) = session.poll_transmit() {
                stream.write_all(&bytes).await.unwrap();
            }
            if finished {
                return;
            }
            continue;
        }
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        session.handle_input(Instant::now(), &buffer[..n]);
    }
}

/// Full authentications per second against a running client: TCP dial,
/// introduction, proof (sign here, verify there), the server's decision.
async fn handshakes(generation: Generation, count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let v2 = generation == Generation::V2;
    let (server, mut server_events) = client(
        &dir.path().join("server"),
        &directory,
        Limits::default(),
        v2,
    )
    .await;
    let server_id = *server
        .ids()
        .iter()
        .find(|id| id.generation() == generation)
        .unwrap();
    let key = Arc::new(IdentityKey::generate(generation).unwrap());
    let address = directory.get(server_id.service_id()).unwrap();
    // Drain the server's events in the background.
    tokio::spawn(async move { while server_events.next().await.is_some() {} });
    let started = Instant::now();
    for _ in 0..count {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let _ = stream.set_nodelay(true);
        let mut session = Session::client(
            key.clone(),
            *server_id.service_id(),
            SessionConfig::default(),
            Instant::now(),
        )
        .unwrap();
        drive(&mut session, &mut stream, |_, event| {
            matches!(event, SessionEvent::Authenticated { .. })
        })
        .await;
    }
    let elapsed = started.elapsed();
    println!(
        "handshakes {generation}: {count} authentications in {elapsed:?}: {:.0}/s \
         (one core for both ends: dialler signs, client verifies)",
        count as f64 / elapsed.as_secs_f64()
    );
    server.shutdown().await;
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The server of `idle`: a client that accepts every contact request; its
/// resident memory before and after `peers` idle contact connections.
async fn idle_server(peers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut limits = Limits::default();
    limits.max_pending_requests = peers + 16;
    limits.max_unauthenticated_connections = peers + 16;
    let (server, mut events) = client(&dir.path().join("server"), &directory, limits, false).await;
    let address = directory.get(server.id().service_id()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = resident_kib();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "idle-peers",
            &server.id().to_string(),
            &address.to_string(),
            &peers.to_string(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut accepted = 0;
    while accepted < peers {
        if let Some(Event::ContactRequestReceived(request)) = events.next().await {
            request.accept("").await.unwrap();
            accepted += 1;
        }
    }
    // Wait until every connection carries a contact, then let things settle.
    loop {
        let stats = server.stats().await.unwrap();
        if stats.contact_connections >= peers {
            break;
        }
        while events.try_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connected = started.elapsed();
    while events.try_next().is_some() {}
    tokio::time::sleep(Duration::from_secs(2)).await;
    while events.try_next().is_some() {}
    let after = resident_kib();
    let stats = server.stats().await.unwrap();
    println!(
        "idle: {} contact connections (of {} open) in {connected:?}; server RSS {before} KiB before, \
         {after} KiB after: {:.1} KiB per connection",
        stats.contact_connections,
        stats.connections,
        (after.saturating_sub(before)) as f64 / peers as f64
    );
    let _ = lines.next_line().await;
    child.kill().await.unwrap();
}

/// The peers of `idle`: connect, authenticate, ask, stay.
async fn idle_peers(server: RicochetId, address: std::net::SocketAddr, peers: usize) {
    let server: ServiceId = *server.service_id();
    let mut held = Vec::with_capacity(peers);
    for _ in 0..peers {
        let key = Arc::new(IdentityKey::generate(Generation::V3).unwrap());
        let mut stream = TcpStream::connect(address).await.unwrap();
        let _ = stream.set_nodelay(true);
        let mut session =
            Session::client(key, server, SessionConfig::default(), Instant::now()).unwrap();
        drive(&mut session, &mut stream, |session, event| match event {
            SessionEvent::Authenticated { .. } => {
                session
                    .send_contact_request(ContactRequest::default())
                    .unwrap();
                false
            }
            SessionEvent::ContactRequestAnswered { .. } | SessionEvent::BecameContact => true,
            _ => false,
        })
        .await;
        held.push((stream, session));
    }
    println!("connected {peers}");
    std::future::pending::<()>().await;
}
