//! Latency of the full client stack over Tor, on the private Tor network of
//! the tests (`testnet/`, everything on 127.0.0.1), with both Tor backends:
//! the system tor (C tor through its control port) and embedded arti.
//! Results go to BENCHMARKS.md; nothing here is asserted in tests.
//!
//! ```text
//! cargo build --release -p ricochet-benches --bin tor_latency
//! target/release/tor_latency both --messages 200
//! target/release/tor_latency system --starts 1 --messages 20   # short run
//! ```
//!
//! Options: `[system|arti|both]` (default both), `--starts K` (default 3),
//! `--messages N` (default 200), `--reconnect S` (dial contacts again every
//! S seconds; default: the library's [`ReconnectPolicy::default`], 30 s
//! after a failed dial).
//!
//! For each backend, two clients "A" (on the tor "hs", or arti profile A)
//! and "B" (on the tor "cl", or arti profile B):
//!
//! 1. **start → first acknowledged message**: A and B become contacts and
//!    stop; then, K times: both `ClientBuilder::start()` at the same moment,
//!    A sends one message as soon as its `start()` returned, and we note
//!    when each `start()` returned, when A sees B online, when B receives
//!    the message and when A sees it acknowledged (all from the moment both
//!    `start()` were called). Both stop between runs, except after the last.
//! 2. **message round trip**: with A and B connected, N messages one after
//!    the other, each sent once the previous is acknowledged: time from
//!    `send_message` to `Acknowledged` (SQLite on both sides included).
//! 3. **Tor's own round trip**: an echo onion service published with the
//!    same backend (`Transport::listen`, on the tor "cl" / a fresh arti),
//!    dialled through the same backend (tor "hs" / another fresh arti):
//!    N round trips of 1 byte, then N of 64 bytes, on one stream, once A
//!    and B have stopped. The library's share of a message round trip is
//!    (2) minus this.
//!
//! Loopback has a quirk (see [`STALLED`]): some circuits take a steady
//! ~40 or ~88 ms per round trip instead of ~1 ms. The tool says so when it
//! happens; such a run measures the quirk, not the library.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ricochet_client::transport::arti::{ArtiConfig, ArtiTransport};
use ricochet_client::transport::control::{ControlAddr, SystemTor, SystemTorConfig};
use ricochet_client::transport::{Listener, Transport};
use ricochet_client::{
    Client, ClientBuilder, ContactStatus, Event, Events, Generation, IdentityKey, MessageStatus,
    ReconnectPolicy, RicochetId,
};
use ricochet_testnet::TorNet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The port of the echo onion service.
const ECHO_PORT: u16 = 7;
/// Echo payload sizes, in bytes.
const ECHO_SIZES: [usize; 2] = [1, 64];
/// A round trip this slow on loopback is the private network's stall, not
/// Tor's cost: a steady ~40 ms or ~88 ms on some circuits (testnet/README.md).
/// Probably Nagle's algorithm: C tor never sets `TCP_NODELAY` (its source
/// has no such call), so a relay's small write that follows an
/// unacknowledged one waits for the peer's delayed ACK (40 ms at least on
/// Linux); on loopback every cell is far below the 64 KiB segment size.
const STALLED: Duration = Duration::from_millis(20);
/// Longest wait for any one step (a start run, a message, a dial).
const PATIENCE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    SystemTor,
    Arti,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::SystemTor => "system tor",
            Self::Arti => "arti",
        }
    }
}

/// Which of the two clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

#[derive(Debug)]
struct Options {
    backends: Vec<Backend>,
    starts: usize,
    messages: usize,
    /// Fixed redial delay; `None`: the library's default policy.
    reconnect: Option<Duration>,
}

const USAGE: &str = "usage: tor_latency [system|arti|both] [--starts K] [--messages N] \
                     [--reconnect SECONDS]";

fn parse_options() -> Options {
    let mut options = Options {
        backends: vec![Backend::SystemTor, Backend::Arti],
        starts: 3,
        messages: 200,
        reconnect: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> usize {
            args.next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number\n{USAGE}"))
        };
        match arg.as_str() {
            "system" => options.backends = vec![Backend::SystemTor],
            "arti" => options.backends = vec![Backend::Arti],
            "both" => options.backends = vec![Backend::SystemTor, Backend::Arti],
            "--starts" => options.starts = number("--starts").max(1),
            "--messages" => options.messages = number("--messages").max(1),
            "--reconnect" => {
                options.reconnect = Some(Duration::from_secs(number("--reconnect") as u64));
            }
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    options
}

fn main() {
    if std::env::var_os("RICOCHET_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let options = parse_options();
    let Some(net) = ricochet_testnet::tor_network() else {
        eprintln!("tor_latency needs `tor` (apt-get install tor)");
        std::process::exit(1);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut reports = Vec::new();
    for &backend in &options.backends {
        reports.push(runtime.block_on(measure(backend, net, &options)));
    }
    print_report(net, &options, &reports);
}

/// Everything measured for one backend.
#[derive(Debug)]
struct Report {
    backend: Backend,
    starts: Vec<StartRun>,
    /// `send_message` → `Acknowledged`, sorted.
    message_rtts: Vec<Duration>,
    /// Echo round trips per size of [`ECHO_SIZES`], sorted.
    echo_rtts: Vec<Vec<Duration>>,
    /// From publishing the echo service to the first successful dial.
    echo_first_dial: Duration,
    /// Echo circuits given up for the private network's stall (their
    /// warm-up medians).
    echo_stalled: Vec<Duration>,
}

/// One start → first acknowledged message run; times from the moment both
/// `start()` were called.
#[derive(Debug, Clone, Copy)]
struct StartRun {
    a_started: Duration,
    b_started: Duration,
    b_online_at_a: Duration,
    received_by_b: Duration,
    acknowledged: Duration,
}

async fn measure(backend: Backend, net: &'static TorNet, options: &Options) -> Report {
    let name = backend.name();
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let policy = options
        .reconnect
        .map_or_else(ReconnectPolicy::default, ReconnectPolicy::fixed);

    // A and B become contacts (quick redials: only the runs below count).
    eprintln!("[{name}] befriending A and B");
    let setup_policy = ReconnectPolicy::fixed(Duration::from_secs(2));
    let started = Instant::now();
    let (a, b) = tokio::join!(
        start_client(backend, net, &a_dir, Side::A, setup_policy.clone()),
        start_client(backend, net, &b_dir, Side::B, setup_policy),
    );
    let ((alice, mut a_events), (bob, mut b_events)) = (a, b);
    let (a_id, b_id) = (alice.id(), bob.id());
    alice.send_contact_request(b_id, "B", "").await.unwrap();
    within("B gets the request", async {
        loop {
            match b_events.next().await {
                Some(Event::ContactRequestReceived(request)) => {
                    request.accept("A").await.unwrap();
                    return;
                }
                Some(_) => {}
                None => panic!("B stopped"),
            }
        }
    })
    .await;
    within("A sees B online", wait_online(&mut a_events, b_id)).await;
    eprintln!("[{name}] contacts after {:.1?}", started.elapsed());
    alice.shutdown().await;
    bob.shutdown().await;
    drop((a_events, b_events));

    // 1. start → first acknowledged message.
    let mut starts = Vec::new();
    let mut running = None;
    for run in 1..=options.starts {
        // Let the stopped clients' background work (arti's tasks) end, as
        // it would between two runs of an application.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (figures, clients) = within(
            "a start run",
            start_run(backend, net, (&a_dir, &b_dir), (a_id, b_id), &policy, run),
        )
        .await;
        eprintln!("[{name}] start run {run}: {figures:?}");
        starts.push(figures);
        if run < options.starts {
            clients.0.0.shutdown().await;
            clients.1.0.shutdown().await;
        } else {
            running = Some(clients);
        }
    }
    let ((alice, _a_events), (bob, _b_events)) = running.unwrap();

    // 2. Message round trips, one at a time.
    let mut message_rtts = Vec::with_capacity(options.messages);
    for i in 0..options.messages {
        let sent = Instant::now();
        let mut handle = alice
            .send_message(b_id, &format!("round trip {i}"))
            .await
            .unwrap();
        let status = within("an acknowledgement", handle.finished()).await;
        assert_eq!(status, MessageStatus::Acknowledged);
        message_rtts.push(sent.elapsed());
    }
    message_rtts.sort();
    eprintln!(
        "[{name}] {} message round trips: median {}",
        message_rtts.len(),
        ms(percentile(&message_rtts, 0.5))
    );
    alice.shutdown().await;
    bob.shutdown().await;

    // 3. Tor's own round trips through the same backend, on their own:
    // interleaved with the messages, the two circuits (which share relay
    // connections) stalled each other 40 ms at a time (see `STALLED`).
    let mut echo = match backend {
        Backend::SystemTor => {
            Echo::start(system_tor(net.cl_control), system_tor(net.hs_control)).await
        }
        Backend::Arti => {
            Echo::start(
                arti(net, &dir.path().join("echo-host")),
                arti(net, &dir.path().join("echo-dialer")),
            )
            .await
        }
    };
    let mut echo_rtts = Vec::new();
    for size in ECHO_SIZES {
        let mut rtts = Vec::with_capacity(options.messages);
        for _ in 0..options.messages {
            rtts.push(echo.round_trip(size).await);
        }
        rtts.sort();
        eprintln!(
            "[{name}] {size}-byte echo: median {}",
            ms(percentile(&rtts, 0.5))
        );
        echo_rtts.push(rtts);
    }
    let (echo_first_dial, echo_stalled) = (echo.first_dial, echo.stalled.clone());
    drop(echo);
    Report {
        backend,
        starts,
        message_rtts,
        echo_rtts,
        echo_first_dial,
        echo_stalled,
    }
}

type Running = ((Client, Events), (Client, Events));

/// One start run: both clients start at once, A sends as soon as it is up.
async fn start_run(
    backend: Backend,
    net: &'static TorNet,
    (a_dir, b_dir): (&Path, &Path),
    (a_id, b_id): (RicochetId, RicochetId),
    policy: &ReconnectPolicy,
    run: usize,
) -> (StartRun, Running) {
    let t0 = Instant::now();
    let a_side = async {
        let (client, mut events) = start_client(backend, net, a_dir, Side::A, policy.clone()).await;
        let started = t0.elapsed();
        let mut handle = client
            .send_message(b_id, &format!("first message of run {run}"))
            .await
            .unwrap();
        let (mut online, mut acknowledged) = (None, None);
        let finished = handle.finished();
        tokio::pin!(finished);
        while online.is_none() || acknowledged.is_none() {
            tokio::select! {
                status = &mut finished, if acknowledged.is_none() => {
                    assert_eq!(status, MessageStatus::Acknowledged);
                    acknowledged = Some(t0.elapsed());
                }
                event = events.next() => match event {
                    Some(Event::ContactStatusChanged { contact, status: ContactStatus::Online })
                        if contact == b_id => {
                        online.get_or_insert(t0.elapsed());
                    }
                    Some(_) => {}
                    None => panic!("A stopped"),
                },
            }
        }
        (
            client,
            events,
            started,
            online.unwrap(),
            acknowledged.unwrap(),
        )
    };
    let b_side = async {
        let (client, mut events) = start_client(backend, net, b_dir, Side::B, policy.clone()).await;
        let started = t0.elapsed();
        loop {
            match events.next().await {
                Some(Event::MessageReceived(message)) if message.contact == a_id => break,
                Some(_) => {}
                None => panic!("B stopped"),
            }
        }
        (client, events, started, t0.elapsed())
    };
    let (a, b) = tokio::join!(a_side, b_side);
    let figures = StartRun {
        a_started: a.2,
        b_started: b.2,
        b_online_at_a: a.3,
        received_by_b: b.3,
        acknowledged: a.4,
    };
    (figures, ((a.0, a.1), (b.0, b.1)))
}

/// A client on `backend`: A on the tor "hs" (or its own arti), B on the
/// tor "cl" (or its own arti).
async fn start_client(
    backend: Backend,
    net: &'static TorNet,
    profile: &Path,
    side: Side,
    policy: ReconnectPolicy,
) -> (Client, Events) {
    let builder = ClientBuilder::new(profile).reconnect(policy);
    let builder = match (backend, side) {
        (Backend::SystemTor, Side::A) => builder.transport(system_tor(net.hs_control)),
        (Backend::SystemTor, Side::B) => builder.transport(system_tor(net.cl_control)),
        (Backend::Arti, _) => builder.transport(arti(net, profile)),
    };
    builder.start().await.expect("the client starts")
}

fn system_tor(control_port: u16) -> SystemTor {
    SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(
        ([127, 0, 0, 1], control_port).into(),
    )))
}

/// Embedded arti with its files under `profile`, on the private network.
fn arti(net: &TorNet, profile: &Path) -> ArtiTransport {
    ArtiTransport::new(
        ArtiConfig::new(PathBuf::from(profile)).custom_network(net.arti_toml.clone()),
    )
    .unwrap()
}

async fn wait_online(events: &mut Events, id: RicochetId) {
    loop {
        match events.next().await {
            Some(Event::ContactStatusChanged {
                contact,
                status: ContactStatus::Online,
            }) if contact == id => return,
            Some(_) => {}
            None => panic!("the client stopped"),
        }
    }
}

/// Runs `future`, giving up (loudly) after [`PATIENCE`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// A stream to an echo onion service, and what keeps the service up.
struct Echo {
    stream: Box<dyn EchoStream>,
    /// From publishing the service to the first successful dial.
    first_dial: Duration,
    server: tokio::task::JoinHandle<()>,
    /// Warm-up medians of the circuits given up for being stalled.
    stalled: Vec<Duration>,
    /// The two transports.
    _transports: Box<dyn std::any::Any + Send>,
}

trait EchoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> EchoStream for T {}

impl Echo {
    /// Publishes an echo service on `host` and dials it through `dialer`.
    /// A circuit whose round trip is stuck at the private network's ~88 ms
    /// (see [`STALLED`]) is reported and replaced by a new service, i.e. new
    /// circuits, up to twice.
    async fn start<T: Transport>(host: T, dialer: T) -> Self {
        let (a, b) = tokio::join!(host.bootstrap(), dialer.bootstrap());
        a.unwrap();
        b.unwrap();
        let mut stalled = Vec::new();
        loop {
            let (stream, server, first_dial) = publish_echo(&host, &dialer).await;
            let mut echo = Self {
                stream: Box::new(stream),
                first_dial,
                server,
                stalled: Vec::new(),
                _transports: Box::new(()),
            };
            // Round trips first, not counted (circuit windows, caches).
            let mut warm_up: Vec<Duration> = Vec::new();
            for size in ECHO_SIZES {
                for _ in 0..10 {
                    warm_up.push(echo.round_trip(size).await);
                }
            }
            warm_up.sort();
            let median = percentile(&warm_up, 0.5);
            if median < STALLED || stalled.len() >= 2 {
                echo.stalled = stalled;
                echo._transports = Box::new((host, dialer));
                return echo;
            }
            eprintln!(
                "the echo circuit's round trip is {} (the private network's ~88 ms stall, \
                 testnet/README.md): publishing a new echo service",
                ms(median)
            );
            stalled.push(median);
        }
    }

    /// One round trip of `size` bytes.
    async fn round_trip(&mut self, size: usize) -> Duration {
        let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut back = vec![0; size];
        let started = Instant::now();
        self.stream.write_all(&data).await.unwrap();
        self.stream.flush().await.unwrap();
        within("an echo", self.stream.read_exact(&mut back))
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(back, data);
        elapsed
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Publishes an echo service on `host` and dials it through `dialer`
/// (again and again until it is reachable). Returns the stream, the
/// service's task (dropping its listener takes the service down) and the
/// delay from publishing to the first successful dial.
async fn publish_echo<T: Transport>(
    host: &T,
    dialer: &T,
) -> (T::Stream, tokio::task::JoinHandle<()>, Duration) {
    let key = IdentityKey::generate(Generation::V3).unwrap();
    let id = key.service_id();
    let mut listener = host.listen(&key, ECHO_PORT).await.unwrap();
    let published = Instant::now();
    let server = tokio::spawn(async move {
        loop {
            let Ok(mut stream) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0; 4096];
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buffer[..n]).await.is_err()
                                || stream.flush().await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let stream = within("the echo service", async {
        loop {
            match dialer.connect(&id, ECHO_PORT).await {
                Ok(stream) => return stream,
                Err(e) => {
                    eprintln!("dialling the echo service: {e}; again in 0.5 s");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
    .await;
    (stream, server, published.elapsed())
}

/// The `p` quantile (nearest rank) of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn median_of(runs: &[StartRun], field: impl Fn(&StartRun) -> Duration) -> Duration {
    let mut values: Vec<Duration> = runs.iter().map(field).collect();
    values.sort();
    percentile(&values, 0.5)
}

fn print_report(net: &TorNet, options: &Options, reports: &[Report]) {
    println!();
    println!(
        "tor_latency: private Tor network on 127.0.0.1 (3 authorities, 5 relays; up in {}); \
         redial policy: {}",
        secs(net.bring_up),
        match options.reconnect {
            None => "library default (30 s after a failed dial)".to_owned(),
            Some(delay) => format!("fixed {delay:?}"),
        }
    );
    println!();
    println!("1. start -> first acknowledged message (from both ClientBuilder::start() calls)");
    println!();
    println!(
        "| backend | run | A started | B started | B online at A | received by B | acknowledged at A |"
    );
    println!("|---|---|---|---|---|---|---|");
    for report in reports {
        let row = |run: &str, r: &StartRun| {
            println!(
                "| {} | {run} | {} | {} | {} | {} | {} |",
                report.backend.name(),
                secs(r.a_started),
                secs(r.b_started),
                secs(r.b_online_at_a),
                secs(r.received_by_b),
                secs(r.acknowledged)
            );
        };
        for (i, run) in report.starts.iter().enumerate() {
            row(&(i + 1).to_string(), run);
        }
        let median = StartRun {
            a_started: median_of(&report.starts, |r| r.a_started),
            b_started: median_of(&report.starts, |r| r.b_started),
            b_online_at_a: median_of(&report.starts, |r| r.b_online_at_a),
            received_by_b: median_of(&report.starts, |r| r.received_by_b),
            acknowledged: median_of(&report.starts, |r| r.acknowledged),
        };
        row("**median**", &median);
    }
    println!();
    println!(
        "2./3. round trips: message = send_message -> Acknowledged ({0} sequential messages); \
         Tor = echo through an onion service of the same backend ({0} per size, one stream)",
        options.messages
    );
    println!();
    println!(
        "| backend | message RTT median / p90 (min-max) | Tor echo 1 B median / p90 | Tor echo 64 B median / p90 | library share (message - 64 B echo, medians) |"
    );
    println!("|---|---|---|---|---|");
    for report in reports {
        let m = &report.message_rtts;
        let echo = |i: usize| {
            let rtts = &report.echo_rtts[i];
            format!(
                "{} / {}",
                ms(percentile(rtts, 0.5)),
                ms(percentile(rtts, 0.9))
            )
        };
        let message_median = percentile(m, 0.5);
        let tor_median = percentile(&report.echo_rtts[1], 0.5);
        let share = message_median.as_secs_f64() - tor_median.as_secs_f64();
        println!(
            "| {} | {} / {} ({}-{}) | {} | {} | {:.2} ms ({:.0} %) |",
            report.backend.name(),
            ms(message_median),
            ms(percentile(m, 0.9)),
            ms(m[0]),
            ms(m[m.len() - 1]),
            echo(0),
            echo(1),
            share * 1e3,
            100.0 * share / message_median.as_secs_f64(),
        );
    }
    println!();
    for report in reports {
        println!(
            "{}: echo service first reached {} after it was published",
            report.backend.name(),
            secs(report.echo_first_dial)
        );
        if !report.echo_stalled.is_empty() {
            println!(
                "{}: echo circuits given up first for the private network's ~88 ms stall \
                 (warm-up medians): {:?}",
                report.backend.name(),
                report.echo_stalled
            );
        }
        let stalled: Vec<String> = std::iter::once(("messages".to_owned(), &report.message_rtts))
            .chain(
                ECHO_SIZES
                    .iter()
                    .zip(&report.echo_rtts)
                    .map(|(size, rtts)| (format!("{size} B echo"), rtts)),
            )
            .filter(|(_, rtts)| percentile(rtts, 0.5) >= STALLED)
            .map(|(what, _)| what)
            .collect();
        if !stalled.is_empty() {
            println!(
                "{}: STALLED round trips (median >= {STALLED:?}) for {}: the private network's \
                 ~40/88 ms stall (testnet/README.md), not the library's cost; run again",
                report.backend.name(),
                stalled.join(", ")
            );
        }
    }
}
