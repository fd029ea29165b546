//! Helpers shared by the client tests: clients on the direct transport,
//! and waiting for events.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod private;
pub mod raw;
pub mod session_peer;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use ricochet_client::transport::Transport;
use ricochet_client::transport::tcp::{Directory, TcpTransport};
use ricochet_client::{
    Client, ClientBuilder, ContactStatus, Event, Events, MessageStatus, ReconnectPolicy, RicochetId,
};

/// How long any single expected thing may take on loopback.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A client and its events.
pub struct Peer {
    pub client: Client,
    pub events: Events,
    /// How long any one expected event may take.
    pub patience: Duration,
}

impl Peer {
    /// Our id.
    pub fn id(&self) -> RicochetId {
        self.client.id()
    }

    /// Waits for the first event `pick` accepts, skipping others.
    pub async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
        let wait = async {
            loop {
                match self.events.next().await {
                    Some(event) => {
                        if let Some(found) = pick(event) {
                            return found;
                        }
                    }
                    None => panic!("the client stopped while waiting for {what}"),
                }
            }
        };
        match tokio::time::timeout(self.patience, wait).await {
            Ok(found) => found,
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }

    /// Drops the events that came so far.
    pub async fn drain(&mut self) {
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(20), self.events.next()).await
        {}
    }

    /// Waits until `contact` has `status`.
    pub async fn expect_status(&mut self, contact: RicochetId, status: ContactStatus) {
        if self
            .client
            .contact(contact)
            .await
            .unwrap()
            .is_some_and(|c| c.status == status)
        {
            return;
        }
        self.expect(
            &format!("{contact} to become {status:?}"),
            |event| match event {
                Event::ContactStatusChanged {
                    contact: c,
                    status: s,
                } if c == contact && s == status => Some(()),
                _ => None,
            },
        )
        .await;
    }

    /// Waits for a contact request.
    pub async fn expect_request(&mut self) -> ricochet_client::IncomingContactRequest {
        self.expect("a contact request", |event| match event {
            Event::ContactRequestReceived(request) => Some(request),
            _ => None,
        })
        .await
    }

    /// Waits for a message from anyone; returns the sender and the text.
    pub async fn expect_message_any(&mut self) -> (RicochetId, String) {
        self.expect("a message", |event| match event {
            Event::MessageReceived(message) => Some((message.contact, message.text)),
            _ => None,
        })
        .await
    }

    /// Waits for a message from `contact` and returns its text.
    pub async fn expect_message(&mut self, contact: RicochetId) -> String {
        self.expect("a message", |event| match event {
            Event::MessageReceived(message) if message.contact == contact => Some(message.text),
            _ => None,
        })
        .await
    }
}

/// Logs to stderr when `RICOCHET_LOG=debug` (or `trace`) is set.
pub fn init_logging() {
    let level = match std::env::var("RICOCHET_LOG").as_deref() {
        Ok("trace") => tracing::Level::TRACE,
        Ok("debug") => tracing::Level::DEBUG,
        _ => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A client on the direct transport, listening on loopback, registered in
/// `directory`, retrying every 200 ms.
pub async fn start(profile: &Path, directory: &Directory) -> Peer {
    start_with(profile, directory, |b| b).await
}

/// Like [`start`], with the builder adjusted by `adjust`.
pub async fn start_with(
    profile: &Path,
    directory: &Directory,
    adjust: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Peer {
    init_logging();
    let transport = TcpTransport::new(directory.clone())
        .listen_on("127.0.0.1:0".parse().unwrap())
        .connect_timeout(Duration::from_secs(5));
    let builder = ClientBuilder::new(profile)
        .transport(transport)
        .reconnect(ReconnectPolicy::fixed(Duration::from_millis(200)));
    let (client, events) = adjust(builder).start().await.expect("client starts");
    Peer {
        client,
        events,
        patience: PATIENCE,
    }
}

/// A client on `transport` (a Tor backend), retrying every 2 s, patient
/// enough for onion services.
pub async fn start_on<T: Transport>(profile: &Path, transport: T) -> Peer {
    init_logging();
    let (client, events) = ClientBuilder::new(profile)
        .transport(transport)
        .reconnect(ReconnectPolicy::fixed(Duration::from_secs(2)))
        .start()
        .await
        .expect("client starts");
    Peer {
        client,
        events,
        patience: Duration::from_secs(180),
    }
}

/// Makes `a` and `b` contacts: a asks, b accepts; both see each other online.
pub async fn befriend(a: &mut Peer, b: &mut Peer) {
    let (a_id, b_id) = (a.id(), b.id());
    a.client
        .send_contact_request(b_id, "", "hello, it's me")
        .await
        .unwrap();
    let request = b.expect_request().await;
    assert_eq!(request.sender(), a_id);
    request.accept("a friend").await.unwrap();
    a.expect_status(b_id, ContactStatus::Online).await;
    b.expect_status(a_id, ContactStatus::Online).await;
}

/// Waits (polling) until `condition` holds.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a status is final and acknowledged.
pub fn acknowledged(status: &MessageStatus) -> bool {
    *status == MessageStatus::Acknowledged
}

/// How long the steps of [`main_flow`] took.
#[derive(Debug)]
pub struct FlowTimes {
    /// From the call until the request arrived.
    pub request_arrived: Duration,
    /// From sending the first message until it was acknowledged.
    pub round_trip: Duration,
}

/// The main flow: `alice` asks `bob` (Pending), he accepts, both see each
/// other online, then a message each way, each acknowledged.
pub async fn main_flow(alice: &mut Peer, bob: &mut Peer) -> FlowTimes {
    let started = std::time::Instant::now();
    let (alice_id, bob_id) = (alice.id(), bob.id());
    alice
        .client
        .send_contact_request(bob_id, "bob", "hello")
        .await
        .unwrap();
    let request = bob.expect_request().await;
    let request_arrived = started.elapsed();
    assert_eq!(request.sender(), alice_id);
    alice
        .expect("the request delivered", |event| match event {
            Event::ContactRequestDelivered { contact } if contact == bob_id => Some(()),
            _ => None,
        })
        .await;
    request.accept("alice").await.unwrap();
    alice.expect_status(bob_id, ContactStatus::Online).await;
    bob.expect_status(alice_id, ContactStatus::Online).await;

    let sent = std::time::Instant::now();
    let mut hello = alice.client.send_message(bob_id, "hi bob").await.unwrap();
    assert_eq!(bob.expect_message(alice_id).await, "hi bob");
    assert_eq!(hello.finished().await, MessageStatus::Acknowledged);
    let round_trip = sent.elapsed();
    let mut reply = bob.client.send_message(alice_id, "hi alice").await.unwrap();
    assert_eq!(alice.expect_message(bob_id).await, "hi alice");
    assert_eq!(reply.finished().await, MessageStatus::Acknowledged);
    FlowTimes {
        request_arrived,
        round_trip,
    }
}

/// This test binary, to run one of its own (ignored) tests named `child`
/// in a child process, with `spec` in the environment variable `env`;
/// `wrapper` runs it under another program (e.g. strace and its options).
pub fn child_command(
    env: &str,
    spec: String,
    wrapper: &[std::ffi::OsString],
) -> tokio::process::Command {
    let me = std::env::current_exe().unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(args).arg(me);
            command
        }
        None => tokio::process::Command::new(me),
    };
    command
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, spec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// An identity and a loopback address that a child process keeps across
/// kills and restarts: a new v3 key saved to `key_file`, and a port that
/// was free a moment ago.
pub fn fixed_identity(key_file: &Path) -> (ricochet_client::IdentityKey, std::net::SocketAddr) {
    let key = ricochet_client::IdentityKey::generate(ricochet_client::Generation::V3).unwrap();
    key.save(key_file, ricochet_identity::KeyFormat::TorKeyBlob)
        .unwrap();
    // A free port that nobody else is handed meanwhile: not an ephemeral
    // one (32768 and up on Linux), since those go to outgoing connections
    // (the Tor test network makes many) and one of them could take the
    // port before the child binds it (CI saw `AddrInUse`); and below the
    // test network's own ports (20000 and up).
    let port = std::iter::repeat_with(|| rand::random_range(10_000..20_000))
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .unwrap();
    (key, ([127, 0, 0, 1], port).into())
}

/// The lines a child process started by [`child_command`] prints after
/// `CHILD ` (without the test harness's own output; the first one follows
/// the harness's "test child ... " on the same line).
pub fn child_lines(
    child: &mut tokio::process::Child,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    use tokio::io::AsyncBufReadExt as _;
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((_, line)) = line.split_once("CHILD ") {
                let _ = sender.send(line.to_owned());
            }
        }
    });
    receiver
}

/// The texts of the incoming messages stored in a profile, in order (read
/// from its database while no client has it open).
pub fn stored_incoming(profile: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(profile.join(ricochet_client::PROFILE_DATABASE)).unwrap();
    let mut query = db
        .prepare("SELECT text FROM messages WHERE direction = 1 ORDER BY id")
        .unwrap();
    query
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A child client's fixed identity and address, so that it can be killed
/// and come back as the same peer: its key file, its profile, and a
/// directory file with both parties' addresses (all in `dir`).
pub struct ChildFixture {
    pub id: RicochetId,
    pub profile: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    pub directory_file: std::path::PathBuf,
}

impl ChildFixture {
    pub fn new(dir: &Path, directory: &Directory, parent: RicochetId) -> Self {
        let key_file = dir.join("child.key");
        let (key, address) = fixed_identity(&key_file);
        let id: RicochetId = key.service_id().into();
        directory.insert(*id.service_id(), address);
        let parent_address = directory.get(parent.service_id()).unwrap();
        let directory_file = dir.join("peers.txt");
        std::fs::write(
            &directory_file,
            format!("{parent} {parent_address}\n{id} {address}\n"),
        )
        .unwrap();
        Self {
            id,
            profile: dir.join("child"),
            key_file,
            directory_file,
        }
    }
}

/// In a child process: its client, on the direct transport with the
/// addresses of `directory_file`, with the identity of `key_file`,
/// retrying every 100 ms.
pub async fn start_child_client(
    profile: &str,
    directory_file: &str,
    key_file: &str,
) -> (Client, Events) {
    let directory = Directory::load(Path::new(directory_file)).unwrap();
    let key = ricochet_client::IdentityKey::load(Path::new(key_file)).unwrap();
    ClientBuilder::new(profile)
        .identity(key)
        .transport(TcpTransport::new(directory))
        .reconnect(ReconnectPolicy::fixed(Duration::from_millis(100)))
        .start()
        .await
        .unwrap()
}
