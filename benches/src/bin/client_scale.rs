//! Connection-scale and bot-style figures of the full client stack over
//! loopback TCP (results go to BENCHMARKS.md; nothing here is asserted in
//! tests).
//!
//! ```text
//! cargo build --release -p ricochet-benches --bin client_scale
//! target/release/client_scale throughput 20000 1000
//! target/release/client_scale pair 100000 1000
//! target/release/client_scale pair 20000 1
//! target/release/client_scale concurrent 50000 64
//! target/release/client_scale fanout 200 100 100
//! target/release/client_scale handshakes v3 2000
//! target/release/client_scale idle 10000
//! ```
//!
//! - `throughput N [BATCH]`: one client sends N messages to another, BATCH
//!   texts per call (`send_message` for 1, else `send_messages`; default 1),
//!   both clients in this process on one tokio current-thread runtime, i.e.
//!   one core (plus each client's store thread).
//! - `pair N [BATCH]`: the same with the sender in this process and the
//!   receiver in a child process (this binary, hidden mode `receivers`),
//!   each on its own current-thread runtime. If `taskset` exists (and there
//!   are two CPUs), this process is pinned to CPU 0 and the child to CPU 1;
//!   the output says whether. The timer runs from the first send until the
//!   sender has seen N acknowledgements (an acknowledgement means that the
//!   receiver stored the message).
//! - `concurrent N [TASKS]`: like `pair`, but TASKS concurrent tasks
//!   (default 64) on the sender's runtime each call `send_message` (one
//!   message per call) for their share of the N messages.
//! - `fanout M [CONTACTS [BATCH]]`: one sender here, CONTACTS receiver
//!   clients (default 100) in one child process on one current-thread
//!   runtime; the sender sends each of M messages to every contact, one task
//!   per contact, BATCH texts per call (default 100); the timer stops when
//!   all M × CONTACTS deliveries are acknowledged.
//! - `handshakes v2|v3 N`: full authentications per second against a
//!   running client (one core for both ends).
//! - `idle N`: the server's resident memory per idle contact connection; its
//!   peers run in a child process so that the server's memory is its own.
//!
//! Besides the rate (acknowledged messages/s, or deliveries/s for
//! `fanout`), the message modes report for each process, over the timed
//! part only:
//!
//! - CPU time per message (or delivery): user + system time of the whole
//!   process (every thread, the store's included), from `utime` + `stime`
//!   of `/proc/self/stat`, read before and after. Its unit is a clock tick
//!   (`getconf CLK_TCK`, usually 10 ms), so short runs are coarse.
//! - Bytes written per message (or delivery): `write_bytes` of
//!   `/proc/self/io`, i.e. what the process sent to the storage layer
//!   (SQLite's WAL and its checkpoints into the database; socket writes
//!   are not counted there). The kernel counts a page when it is dirtied,
//!   so a page rewritten before it reaches the disk counts once, and it
//!   shows only where the profile directory is on a real disk (the profiles
//!   are in the temporary directory; a tmpfs shows 0).
//!
//! Every client uses the default [`Limits`] (raised where a mode needs more
//! connections), except that `CLIENT_SCALE_WINDOW=N` in the environment
//! sets `max_unacknowledged_messages` (the window of messages in flight per
//! contact, 2048 by default) of every client of the run.
//!
//! The message modes use short texts (`message 123`), profiles in fresh
//! temporary directories, v3 ids, and talk to 127.0.0.1 only. The child
//! process of `pair`, `concurrent` and `fanout` is killed if the parent
//! panics, and a run that sees no acknowledgement for 10 s panics (a stall),
//! naming how many of its messages were acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
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
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinSet;

const USAGE: &str = "usage: client_scale throughput [N [BATCH]] | pair [N [BATCH]] | \
                     concurrent [N [TASKS]] | fanout [M [CONTACTS [BATCH]]] | \
                     handshakes v2|v3 [N] | idle [N]";

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
        Some("pair") => runtime.block_on(remote(Load::Pair {
            messages: number(1, 20_000),
            batch: number(2, 1),
        })),
        Some("concurrent") => runtime.block_on(remote(Load::Concurrent {
            messages: number(1, 20_000),
            tasks: number(2, 64).max(1),
        })),
        Some("fanout") => runtime.block_on(remote(Load::Fanout {
            messages: number(1, 200),
            contacts: number(2, 100).max(1),
            batch: number(3, 100),
        })),
        Some("receivers") => runtime.block_on(receivers(number(1, 1), number(2, 0))),
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
        _ => eprintln!("{USAGE}"),
    }
}

async fn client(
    dir: &Path,
    directory: &Directory,
    mut limits: Limits,
    v2: bool,
) -> (Client, Events) {
    if let Some(window) = std::env::var("CLIENT_SCALE_WINDOW")
        .ok()
        .and_then(|w| w.parse().ok())
    {
        limits.max_unacknowledged_messages = window;
    }
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
/// `send_messages`). Both clients share this process, so its CPU time and
/// bytes written are the sum of both ends.
async fn throughput(messages: usize, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let (alice, mut alice_events) =
        client(&dir.path().join("a"), &directory, Limits::default(), false).await;
    let (bob, mut bob_events) =
        client(&dir.path().join("b"), &directory, Limits::default(), false).await;
    befriend(&alice, &mut alice_events, &mut bob_events, bob.id()).await;
    let before = Usage::now();
    let started = Instant::now();
    let mut sending = JoinSet::new();
    sending.spawn(send_texts(alice.clone(), bob.id(), 0..messages, batch));
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
            Some(done) = sending.join_next() => done.unwrap(),
        }
    }
    let elapsed = started.elapsed();
    let cost = Usage::now().since(before);
    while let Some(done) = sending.join_next().await {
        done.unwrap();
    }
    println!(
        "throughput: {messages} messages sent ({batch} per call), received and acknowledged \
         in {elapsed:.2?}: {:.0} acked messages/s (one runtime, both clients in this process); \
         CPU {:.1} µs/message; {:.0} bytes written/message",
        messages as f64 / elapsed.as_secs_f64(),
        cost.cpu_us_per(messages),
        cost.written_per(messages),
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

/// Sends `message {i}` for each `i` of `range` to `to`, `batch` texts per
/// call (`send_message` for 1 or less, else `send_messages`).
async fn send_texts(sender: Client, to: RicochetId, range: std::ops::Range<usize>, batch: usize) {
    let texts: Vec<String> = range.map(|i| format!("message {i}")).collect();
    if batch <= 1 {
        for text in &texts {
            sender.send_message(to, text).await.unwrap();
        }
    } else {
        for chunk in texts.chunks(batch) {
            sender.send_messages(to, chunk).await.unwrap();
        }
    }
}

/// CPU time and storage writes of this whole process so far.
#[derive(Debug, Clone, Copy)]
struct Usage {
    /// `utime` + `stime`, in clock ticks.
    cpu_ticks: u64,
    /// `write_bytes` of `/proc/self/io`.
    written: u64,
}

/// What a process spent on a timed part.
#[derive(Debug, Clone, Copy)]
struct Cost {
    cpu: Duration,
    written: u64,
}

impl Usage {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        // The command name (field 2) is in parentheses and may hold spaces;
        // the fields after it start with field 3 (state): utime is field 14,
        // stime field 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        let utime: u64 = fields[11].parse().unwrap();
        let stime: u64 = fields[12].parse().unwrap();
        let io = std::fs::read_to_string("/proc/self/io").unwrap();
        let written = io
            .lines()
            .find_map(|line| line.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        Self {
            cpu_ticks: utime + stime,
            written,
        }
    }

    fn since(self, before: Self) -> Cost {
        let ticks = self.cpu_ticks.saturating_sub(before.cpu_ticks);
        Cost {
            cpu: Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64),
            written: self.written.saturating_sub(before.written),
        }
    }
}

impl Cost {
    fn cpu_us_per(self, units: usize) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / units.max(1) as f64
    }

    fn written_per(self, units: usize) -> f64 {
        self.written as f64 / units.max(1) as f64
    }

    /// As one line of the child's report: `<cpu µs> <bytes written>`.
    fn to_line(self) -> String {
        format!("{} {}", self.cpu.as_micros(), self.written)
    }

    fn from_fields<'a>(mut fields: impl Iterator<Item = &'a str>) -> Self {
        let cpu_us: u64 = fields.next().unwrap().parse().unwrap();
        let written = fields.next().unwrap().parse().unwrap();
        Self {
            cpu: Duration::from_micros(cpu_us),
            written,
        }
    }
}

/// `getconf CLK_TCK` (the unit of `/proc/self/stat`'s times), 100 if it
/// cannot be asked.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .stderr(Stdio::null())
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// Pins every thread of this process to `cpu` with `taskset`, if there is
/// one and the machine has two CPUs or more; whether it did.
fn pin_self(cpu: usize) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    cpus >= 2
        && std::process::Command::new("taskset")
            .args([
                "-a",
                "-pc",
                &cpu.to_string(),
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// The message modes that run their receivers in a child process.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// One contact; `batch` texts per call.
    Pair { messages: usize, batch: usize },
    /// One contact; `tasks` tasks calling `send_message`.
    Concurrent { messages: usize, tasks: usize },
    /// `messages` to each of `contacts`, one task per contact, `batch`
    /// texts per call.
    Fanout {
        messages: usize,
        contacts: usize,
        batch: usize,
    },
}

impl Load {
    fn contacts(self) -> usize {
        match self {
            Self::Pair { .. } | Self::Concurrent { .. } => 1,
            Self::Fanout { contacts, .. } => contacts,
        }
    }

    /// Acknowledgements to wait for (= messages the receivers get).
    fn deliveries(self) -> usize {
        match self {
            Self::Pair { messages, .. } | Self::Concurrent { messages, .. } => messages,
            Self::Fanout {
                messages, contacts, ..
            } => messages * contacts,
        }
    }

    /// Starts the sending tasks.
    fn spawn(self, sender: &Client, contacts: &[RicochetId], tasks: &mut JoinSet<()>) {
        match self {
            Self::Pair { messages, batch } => {
                tasks.spawn(send_texts(sender.clone(), contacts[0], 0..messages, batch));
            }
            Self::Concurrent {
                messages,
                tasks: count,
            } => {
                for task in 0..count {
                    let from = messages * task / count;
                    let to = messages * (task + 1) / count;
                    tasks.spawn(send_texts(sender.clone(), contacts[0], from..to, 1));
                }
            }
            Self::Fanout {
                messages, batch, ..
            } => {
                for &contact in contacts {
                    tasks.spawn(send_texts(sender.clone(), contact, 0..messages, batch));
                }
            }
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Pair { messages, batch } => {
                format!("pair: {messages} messages ({batch} per call) to one contact")
            }
            Self::Concurrent { messages, tasks } => format!(
                "concurrent: {messages} messages to one contact from {tasks} tasks \
                 (send_message, 1 per call)"
            ),
            Self::Fanout {
                messages,
                contacts,
                batch,
            } => format!(
                "fanout: {messages} messages ({batch} per call) to each of {contacts} contacts \
                 (one task per contact) = {} deliveries",
                messages * contacts
            ),
        }
    }
}

/// The receivers' child process, seen from the sender's.
struct Receivers {
    // Killed if dropped (a panic here).
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Each receiver's id and listening address.
    peers: Vec<(RicochetId, std::net::SocketAddr)>,
}

impl Receivers {
    /// Starts `count` receivers in a child process (on CPU 1 if `pin`), which
    /// report once they got `expected` messages.
    async fn spawn(count: usize, expected: usize, pin: bool) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut command = if pin {
            let mut command = tokio::process::Command::new("taskset");
            command.args(["-c", "1"]).arg(exe);
            command
        } else {
            tokio::process::Command::new(exe)
        };
        let mut child = command
            .args(["receivers", &count.to_string(), &expected.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut receivers = Self {
            child,
            stdin,
            lines,
            peers: Vec::with_capacity(count),
        };
        loop {
            let line = receivers.line().await;
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("receiver") => {
                    let id = fields.next().unwrap().parse().unwrap();
                    let address = fields.next().unwrap().parse().unwrap();
                    receivers.peers.push((id, address));
                }
                Some("listening") => break,
                _ => panic!("unexpected line from the receivers: {line:?}"),
            }
        }
        assert_eq!(receivers.peers.len(), count);
        receivers
    }

    /// The child's next line of output (within a minute).
    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("no word from the receivers' process for 60 s")
            .unwrap()
            .expect("the receivers' process ended")
    }

    async fn tell(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Closes the child's input (it then shuts its clients down and ends)
    /// and waits for it, killing it after 10 s.
    async fn finish(self) {
        let Self {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            eprintln!("the receivers' process did not end; killing it");
            child.kill().await.unwrap();
        }
    }
}

/// `pair`, `concurrent` and `fanout`: the sender here, the receivers in a
/// child process (see the module docs).
async fn remote(load: Load) {
    let contacts = load.contacts();
    let deliveries = load.deliveries();
    let pinned = pin_self(0);
    let mut receivers = Receivers::spawn(contacts, deliveries, pinned).await;

    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut limits = Limits::default();
    limits.max_pending_requests = contacts + 16;
    limits.max_unauthenticated_connections = contacts + 16;
    let (sender, mut events) = client(&dir.path().join("sender"), &directory, limits, false).await;
    let address = directory.get(sender.id().service_id()).unwrap();
    // The receivers can dial us too, as contacts can.
    receivers
        .tell(&format!("sender {} {address}", sender.id()))
        .await;
    let ids: Vec<RicochetId> = receivers.peers.iter().map(|&(id, _)| id).collect();
    let befriending = Instant::now();
    for &(id, address) in &receivers.peers {
        directory.insert(*id.service_id(), address);
        sender.send_contact_request(id, "", "").await.unwrap();
    }
    let mut waiting: HashSet<RicochetId> = ids.iter().copied().collect();
    while !waiting.is_empty() {
        let event = tokio::time::timeout(Duration::from_secs(60), events.next())
            .await
            .unwrap_or_else(|_| panic!("{} contacts still not online after 60 s", waiting.len()))
            .unwrap();
        if let Event::ContactStatusChanged {
            contact,
            status: ContactStatus::Online,
        } = event
        {
            waiting.remove(&contact);
        }
    }
    let befriended = befriending.elapsed();
    while events.try_next().is_some() {}

    // The child reads its figures when told, then says it is ready.
    receivers.tell("go").await;
    assert_eq!(receivers.line().await, "ready");
    let before = Usage::now();
    let started = Instant::now();
    let mut sending = JoinSet::new();
    load.spawn(&sender, &ids, &mut sending);
    let mut acked = 0;
    let mut check = tokio::time::interval(Duration::from_secs(10));
    let mut last_check = usize::MAX;
    while acked < deliveries {
        tokio::select! {
            Some(event) = events.next() => {
                if let Event::MessageStatusChanged { status: MessageStatus::Acknowledged, .. } = event {
                    acked += 1;
                }
            }
            Some(done) = sending.join_next() => done.unwrap(),
            _ = check.tick() => {
                assert_ne!(
                    acked, last_check,
                    "stalled: {acked} of {deliveries} acknowledged, none in the last 10 s"
                );
                last_check = acked;
            }
        }
    }
    let elapsed = started.elapsed();
    let sender_cost = Usage::now().since(before);
    while let Some(done) = sending.join_next().await {
        done.unwrap();
    }
    let report = receivers.line().await;
    let mut fields = report.split_whitespace();
    assert_eq!(fields.next(), Some("done"), "{report:?}");
    let receiver_elapsed = Duration::from_micros(fields.next().unwrap().parse().unwrap());
    let receiver_cost = Cost::from_fields(fields);

    let (rate, unit) = match load {
        Load::Fanout { .. } => ("deliveries/s", "delivery"),
        _ => ("acked messages/s", "message"),
    };
    let placement = if pinned {
        "sender pinned to CPU 0, receivers' process to CPU 1 (taskset)"
    } else {
        "not pinned (no taskset or one CPU)"
    };
    println!(
        "{}; {placement}; befriended in {befriended:.2?}: acknowledged in {elapsed:.2?}: \
         {:.0} {rate} (the receivers had all {receiver_elapsed:.2?} after their first); \
         CPU µs/{unit}: sender {:.1}, receivers {:.1}, total {:.1}; \
         bytes written/{unit}: sender {:.0}, receivers {:.0}",
        load.describe(),
        deliveries as f64 / elapsed.as_secs_f64(),
        sender_cost.cpu_us_per(deliveries),
        receiver_cost.cpu_us_per(deliveries),
        sender_cost.cpu_us_per(deliveries) + receiver_cost.cpu_us_per(deliveries),
        sender_cost.written_per(deliveries),
        receiver_cost.written_per(deliveries),
    );
    sender.shutdown().await;
    receivers.finish().await;
}

/// The child of `pair`, `concurrent` and `fanout`: `count` clients on this
/// runtime that accept every contact request. Talks to its parent by lines:
/// prints `receiver <id> <address>` for each client and `listening`; reads
/// `sender <id> <address>` (put in its directory) and `go`, then reads its
/// figures, prints `ready`, and once its clients received `expected`
/// messages in all prints `done <µs since the first> <CPU µs> <bytes
/// written>`. It shuts down when its input ends (the parent is done, or
/// gone).
async fn receivers(count: usize, expected: usize) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut limits = Limits::default();
    limits.max_pending_requests = 16;
    limits.max_unauthenticated_connections = 16 + count;
    let (received, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let (receiver, mut events) = client(
            &dir.path().join(format!("r{i}")),
            &directory,
            limits.clone(),
            false,
        )
        .await;
        let address = directory.get(receiver.id().service_id()).unwrap();
        println!("receiver {} {address}", receiver.id());
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Event::ContactRequestReceived(request) => {
                        request.accept("sender").await.unwrap();
                    }
                    Event::MessageReceived(_) => {
                        let _ = received.send(Instant::now());
                    }
                    _ => {}
                }
            }
        });
        clients.push(receiver);
    }
    println!("listening");
    // The parent's lines, read on a thread of their own; the channel ends
    // with the input.
    let (lines, mut input) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let Some(line) = input.recv().await else {
            return;
        };
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("sender") => {
                let id: RicochetId = fields.next().unwrap().parse().unwrap();
                let address = fields.next().unwrap().parse().unwrap();
                directory.insert(*id.service_id(), address);
            }
            Some("go") => break,
            _ => panic!("unexpected line from the sender: {line:?}"),
        }
    }
    let before = Usage::now();
    println!("ready");
    let mut first = None;
    let mut got = 0;
    while got < expected {
        tokio::select! {
            Some(at) = arrivals.recv() => {
                first.get_or_insert(at);
                got += 1;
            }
            line = input.recv() => {
                if line.is_none() {
                    // The parent is gone.
                    return;
                }
            }
        }
    }
    let cost = Usage::now().since(before);
    let elapsed = first.map_or(Duration::ZERO, |first| first.elapsed());
    println!("done {} {}", elapsed.as_micros(), cost.to_line());
    while input.recv().await.is_some() {}
    for receiver in clients {
        receiver.shutdown().await;
    }
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
