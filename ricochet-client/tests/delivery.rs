//! Exactly-once delivery whatever the sender's message numbering (spec
//! §9.2; the rule is in `src/resend.rs`).
//!
//! One table: the three ways senders number their messages × the ways a
//! conversation goes (new connections, a cut in the middle of a batch, the
//! sender or the receiver killed, repeated short texts, a reopened
//! channel). Each case is driven by a scripted raw sender (frame by frame,
//! as `tests/hostile.rs` does) against our client, the receiver, which runs
//! in a child process so that it can be SIGKILLed. Each case asserts that
//! the receiver stored (its database) and reported (its events) every
//! message the sender meant to send exactly once, in the sender's order,
//! and that the sender saw every one acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::raw::{RawPeer, Recv, chat_message, chat_of, control_of, frame_bytes};
use ricochet_client::transport::tcp::{Directory, TcpTransport};
use ricochet_client::{ClientBuilder, Event, IdentityKey, ReconnectPolicy, ServiceId};
use ricochet_proto::ChannelType;
use ricochet_proto::message::auth::AuthResult;
use ricochet_proto::message::chat::ChatPacket;

const CHILD_ENV: &str = "RICOCHET_DELIVERY_TEST_CHILD";

// =====================================================================
// The receiver: our client in a child process
// =====================================================================

/// The receiver: accepts every contact request and prints each message it
/// reports. Spec: profile, key file, listening address (lines).
#[tokio::test]
#[ignore = "the child process of the delivery table"]
async fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    common::init_logging();
    let mut lines = spec.lines();
    let (profile, key, addr) = (
        lines.next().unwrap(),
        lines.next().unwrap(),
        lines.next().unwrap().parse::<SocketAddr>().unwrap(),
    );
    let (_client, mut events) = ClientBuilder::new(profile)
        .identity(IdentityKey::load(Path::new(key)).unwrap())
        .transport(TcpTransport::new(Directory::new()).listen_on(addr))
        // The scripted sender has no address: only it connects.
        .reconnect(ReconnectPolicy::fixed(Duration::from_secs(3600)))
        .start()
        .await
        .unwrap();
    println!("CHILD ready");
    while let Some(event) = events.next().await {
        match event {
            Event::ContactRequestReceived(request) => request.accept("sender").await.unwrap(),
            Event::MessageReceived(message) => println!("CHILD msg {}", message.text),
            _ => {}
        }
    }
}

/// Our client, the receiver, in a child process that can be killed and
/// restarted with the same identity, profile and address.
struct Receiver {
    id: ServiceId,
    addr: SocketAddr,
    profile: PathBuf,
    spec: String,
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// The texts of its `MessageReceived` events, in order.
    reported: Vec<String>,
}

impl Receiver {
    async fn start(dir: &Path) -> Self {
        let key_file = dir.join("receiver.key");
        let (key, addr) = common::fixed_identity(&key_file);
        let profile = dir.join("receiver");
        let spec = format!("{}\n{}\n{addr}", profile.display(), key_file.display());
        let (child, lines) = Self::spawn(&spec).await;
        Self {
            id: key.service_id(),
            addr,
            profile,
            spec,
            child,
            lines,
            reported: Vec::new(),
        }
    }

    async fn spawn(
        spec: &str,
    ) -> (
        tokio::process::Child,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let mut child = common::child_command(CHILD_ENV, spec.to_owned(), &[])
            .spawn()
            .unwrap();
        let mut lines = common::child_lines(&mut child);
        let ready = tokio::time::timeout(common::PATIENCE, lines.recv()).await;
        assert_eq!(ready.unwrap().as_deref(), Some("ready"));
        (child, lines)
    }

    /// Collects the messages reported so far.
    fn collect(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(text) = line.strip_prefix("msg ") {
                self.reported.push(text.to_owned());
            }
        }
    }

    /// SIGKILL.
    async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        // What it printed before it died.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.collect();
    }

    async fn restart(&mut self) {
        let (child, lines) = Self::spawn(&self.spec).await;
        self.child = child;
        self.lines = lines;
    }

    /// The texts of the messages it stored, in order (read from its
    /// database after it is gone).
    fn stored(&self) -> Vec<String> {
        common::stored_incoming(&self.profile)
    }
}

// =====================================================================
// The scripted sender
// =====================================================================

/// How a sender numbers its messages (§9.2).
#[derive(Debug, Clone, Copy)]
enum Numbering {
    /// One random start for the whole conversation (Refresh's C++ client,
    /// ours): ids are never reused.
    PerConversation,
    /// A fresh random start on every chat channel (Ricochet 1.x).
    PerChannel,
    /// From 0 on every connection (Refresh's Rust core).
    FromZeroPerConnection,
}

/// A sender that keeps what it has not seen acknowledged and resends it
/// with the same ids.
struct Sender {
    numbering: Numbering,
    key: Arc<IdentityKey>,
    raw: Option<RawPeer>,
    /// Our current chat channel.
    channel: u16,
    /// The next id, as the numbering says.
    next_id: u32,
    /// Sent, not acknowledged, oldest first.
    unacknowledged: VecDeque<(u32, String)>,
    /// Every message sent, with its id, in order.
    log: Vec<(u32, String)>,
    /// What the unacknowledged list was when we last "saved" it, and how
    /// long the log was then: a killed sender comes back with that list
    /// plus everything it sent after.
    saved: (VecDeque<(u32, String)>, usize),
    /// Every message the user meant to send, in order.
    meant: Vec<String>,
    became_contact: bool,
}

impl Sender {
    fn new(numbering: Numbering) -> Self {
        Self {
            numbering,
            key: common::raw::v3_key(),
            raw: None,
            channel: 3,
            next_id: rand_u32(),
            unacknowledged: VecDeque::new(),
            log: Vec::new(),
            saved: (VecDeque::new(), 0),
            meant: Vec::new(),
            became_contact: false,
        }
    }

    fn raw(&mut self) -> &mut RawPeer {
        self.raw.as_mut().expect("connected")
    }

    /// A new connection: introduction, authentication (a contact request
    /// the first time), and a chat channel.
    async fn connect(&mut self, receiver: &Receiver) {
        let mut raw = RawPeer::connect_to(receiver.addr, receiver.id, Arc::clone(&self.key)).await;
        raw.introduce().await;
        if self.became_contact {
            let verdict = raw.authenticate().await;
            assert_eq!(
                verdict,
                AuthResult {
                    accepted: true,
                    is_known_contact: Some(true)
                }
            );
        } else {
            raw.request_contact("hello").await;
            raw.expect_accepted().await;
            self.became_contact = true;
        }
        self.raw = Some(raw);
        self.channel = 3;
        if let Numbering::FromZeroPerConnection = self.numbering {
            self.next_id = 0;
        }
        self.open_channel().await;
    }

    /// Opens a new chat channel of ours on the connection.
    async fn open_channel(&mut self) {
        self.channel += 2;
        let channel = self.channel;
        let result = self.raw().open_and_result(channel, ChannelType::Chat).await;
        assert!(result.opened, "{result:?}");
        if let Numbering::PerChannel = self.numbering {
            self.next_id = rand_u32();
        }
    }

    /// Closes our chat channel; what it had not seen acknowledged stays to
    /// be resent.
    async fn close_channel(&mut self) {
        let channel = self.channel;
        self.raw().close_channel(channel).await;
        // Until its echo (§4.2), acks still on their way are lost: a
        // session drops what arrives on a channel it has closed.
        loop {
            let frame = self.raw().recv().await;
            if frame.channel.get() == channel && frame.payload.is_empty() {
                break;
            }
        }
    }

    fn message_bytes(&mut self, text: &str) -> Vec<u8> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.meant.push(text.to_owned());
        self.unacknowledged.push_back((id, text.to_owned()));
        self.log.push((id, text.to_owned()));
        frame_bytes(self.channel, &chat_message(text, Some(id), None))
    }

    /// Sends new messages.
    async fn send(&mut self, texts: &[&str]) {
        let mut bytes = Vec::new();
        for text in texts {
            bytes.extend(self.message_bytes(text));
        }
        self.raw().send_raw(&bytes).await;
    }

    /// Sends new messages, of which the receiver gets only the bytes up to
    /// the middle of message number `cut_in` (0-based); then the
    /// connection is gone. To the sender they are all sent.
    async fn send_cut(&mut self, texts: &[&str], cut_in: usize, acks_read_first: usize) {
        let mut bytes = Vec::new();
        let mut cut_at = 0;
        for (i, text) in texts.iter().enumerate() {
            let frame = self.message_bytes(text);
            if i == cut_in {
                cut_at = bytes.len() + frame.len() / 2;
            }
            bytes.extend(frame);
        }
        self.raw().send_raw(&bytes[..cut_at]).await;
        self.read_acks(acks_read_first).await;
        self.raw = None;
    }

    /// Sends again, with the same ids, everything not acknowledged.
    async fn resend(&mut self) {
        let channel = self.channel;
        let bytes: Vec<u8> = self
            .unacknowledged
            .iter()
            .flat_map(|(id, text)| frame_bytes(channel, &chat_message(text, Some(*id), None)))
            .collect();
        if !bytes.is_empty() {
            self.raw().send_raw(&bytes).await;
        }
    }

    /// Removes the acknowledged message, if `frame` is an ack.
    fn take_ack(&mut self, frame: &ricochet_proto::Frame) {
        if frame.channel.get() == 0 {
            // Nothing the receiver says on the control channel matters here.
            let _ = control_of(frame);
            return;
        }
        if frame.payload.is_empty() {
            return;
        }
        if let ChatPacket::Acknowledge(ack) = chat_of(frame) {
            assert!(ack.accepted, "refused: {ack:?}");
            let position = self
                .unacknowledged
                .iter()
                .position(|(id, _)| *id == ack.message_id)
                .unwrap_or_else(|| panic!("an ack for an id never sent: {ack:?}"));
            self.unacknowledged.remove(position);
        }
    }

    /// Reads `n` acknowledgements.
    async fn read_acks(&mut self, n: usize) {
        let target = self.unacknowledged.len() - n;
        while self.unacknowledged.len() > target {
            let frame = self.raw().recv().await;
            self.take_ack(&frame);
        }
    }

    /// Reads acknowledgements until nothing is unacknowledged.
    async fn read_all_acks(&mut self) {
        let n = self.unacknowledged.len();
        self.read_acks(n).await;
    }

    /// Remembers the unacknowledged list as it is now (a sender's
    /// database write).
    fn save(&mut self) {
        self.saved = (self.unacknowledged.clone(), self.log.len());
    }

    /// The connection is cut (both ends see it end).
    async fn cut(&mut self) {
        self.raw = None;
        // Let the receiver notice before the next connection.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// The sender's process is killed: the connection ends, and it comes
    /// back with what it had saved (acks it got since are forgotten).
    async fn kill(&mut self) {
        self.cut().await;
        let (saved, saved_len) = self.saved.clone();
        self.unacknowledged = saved;
        self.unacknowledged
            .extend(self.log[saved_len..].iter().cloned());
    }

    /// Waits until the receiver has nothing left for us, then ends.
    async fn finish(&mut self) {
        assert!(self.unacknowledged.is_empty());
        if let Some(raw) = self.raw.as_mut() {
            // Anything late would be an ack for an id never sent (panic in
            // take_ack) or a repeated ack.
            while let Recv::Frame(frame) = raw.recv_within(Duration::from_millis(200)).await {
                if frame.channel.get() != 0 && !frame.payload.is_empty() {
                    panic!("unexpected late frame {frame:?}");
                }
            }
        }
        self.raw = None;
    }
}

/// A random id start, clear of 0 and of wrapping within a test.
fn rand_u32() -> u32 {
    rand::random::<u32>() | 0x1000_0000
}

// =====================================================================
// The table
// =====================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Messages on one connection, then more on a new one.
    NewConnection,
    /// The connection is cut in the middle of a batch (in the middle of a
    /// frame) with acks still on the way; the sender resends on the next.
    CutInTheMiddleOfABatch,
    /// The sender is killed: it comes back resending everything since its
    /// last save, acks it had received included.
    SenderKilled,
    /// The receiver is SIGKILLed after acknowledging part of a batch.
    ReceiverKilled,
    /// "ok" three times in a row, on two connections.
    SameShortTextThreeTimes,
    /// The same text as the 2nd message of two connections.
    SameSecondTextOnTwoConnections,
    /// The sender closes its chat channel with messages unacknowledged and
    /// resends them on a new channel of the same connection.
    ResendOnAReopenedChannel,
    /// A short text on a reopened channel of a second connection that was
    /// also the 2nd message of the first connection.
    ShortTextOnAReopenedChannel,
}

async fn run(sender: &mut Sender, receiver: &mut Receiver, scenario: Scenario) {
    sender.connect(receiver).await;
    // Every case starts with a delivered, acknowledged, saved message, so
    // that a from-0 sender's id 0 is acknowledged before any resend (see
    // src/resend.rs: a resend of id 0 is indistinguishable from a new
    // message and shows twice).
    sender.send(&["hello"]).await;
    sender.read_all_acks().await;
    sender.save();
    match scenario {
        Scenario::NewConnection => {
            sender.send(&["a", "b", "c"]).await;
            sender.read_all_acks().await;
            sender.cut().await;
            sender.connect(receiver).await;
            sender.send(&["d", "e", "f"]).await;
        }
        Scenario::CutInTheMiddleOfABatch => {
            let batch = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"];
            sender.send_cut(&batch, 5, 2).await;
            sender.cut().await;
            sender.connect(receiver).await;
            sender.resend().await;
            sender.send(&["n1", "n2"]).await;
        }
        Scenario::SenderKilled => {
            sender.send(&["m1", "m2"]).await;
            sender.read_all_acks().await;
            sender.save();
            sender.send(&["m3", "m4", "m5", "m6"]).await;
            sender.read_all_acks().await;
            // Saved before m3..m6 were sent: they come back after the kill,
            // although all were acknowledged.
            sender.kill().await;
            assert_eq!(sender.unacknowledged.len(), 4);
            sender.connect(receiver).await;
            sender.resend().await;
            sender.send(&["n1", "n2"]).await;
        }
        Scenario::ReceiverKilled => {
            sender.send(&["m1", "m2", "m3", "m4", "m5", "m6"]).await;
            sender.read_acks(3).await;
            receiver.kill().await;
            sender.cut().await;
            receiver.restart().await;
            sender.connect(receiver).await;
            sender.resend().await;
            sender.send(&["n1", "n2"]).await;
        }
        Scenario::SameShortTextThreeTimes => {
            sender.send(&["ok", "ok", "ok"]).await;
            sender.read_all_acks().await;
            sender.cut().await;
            sender.connect(receiver).await;
            sender.send(&["ok", "ok", "ok"]).await;
        }
        Scenario::SameSecondTextOnTwoConnections => {
            sender.send(&["hi", "ok"]).await;
            sender.read_all_acks().await;
            sender.cut().await;
            sender.connect(receiver).await;
            sender.send(&["back again", "ok"]).await;
        }
        Scenario::ResendOnAReopenedChannel => {
            sender.send(&["m1", "m2", "m3", "m4"]).await;
            sender.read_acks(2).await;
            sender.close_channel().await;
            sender.open_channel().await;
            sender.resend().await;
            sender.send(&["n1"]).await;
        }
        Scenario::ShortTextOnAReopenedChannel => {
            sender.send(&["ok"]).await;
            sender.read_all_acks().await;
            sender.cut().await;
            sender.connect(receiver).await;
            sender.send(&["y"]).await;
            sender.read_all_acks().await;
            sender.close_channel().await;
            sender.open_channel().await;
            sender.send(&["ok"]).await;
        }
    }
    sender.read_all_acks().await;
    sender.finish().await;
}

const NUMBERINGS: [Numbering; 3] = [
    Numbering::PerConversation,
    Numbering::PerChannel,
    Numbering::FromZeroPerConnection,
];

const SCENARIOS: [Scenario; 8] = [
    Scenario::NewConnection,
    Scenario::CutInTheMiddleOfABatch,
    Scenario::SenderKilled,
    Scenario::ReceiverKilled,
    Scenario::SameShortTextThreeTimes,
    Scenario::SameSecondTextOnTwoConnections,
    Scenario::ResendOnAReopenedChannel,
    Scenario::ShortTextOnAReopenedChannel,
];

/// One case: a fresh receiver, one scripted sender.
async fn case(numbering: Numbering, scenario: Scenario) {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start(dir.path()).await;
    let mut sender = Sender::new(numbering);
    run(&mut sender, &mut receiver, scenario).await;
    // Let the last reports arrive, then stop the receiver and read what it
    // stored.
    tokio::time::sleep(Duration::from_millis(100)).await;
    receiver.kill().await;
    let what = format!("{numbering:?} × {scenario:?}");
    assert_eq!(receiver.stored(), sender.meant, "{what}: stored");
    if scenario == Scenario::ReceiverKilled {
        // A message stored just before the kill may not have been reported
        // by the killed process; none is reported twice.
        let mut meant = sender.meant.iter();
        for text in &receiver.reported {
            assert!(
                meant.any(|m| m == text),
                "{what}: reported out of order or twice: {:?}",
                receiver.reported
            );
        }
    } else {
        assert_eq!(receiver.reported, sender.meant, "{what}: reported");
    }
    eprintln!(
        "{what}: {} messages, each once, in order",
        sender.meant.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_numbering_in_every_scenario_delivers_exactly_once_in_order() {
    common::init_logging();
    let mut cases = tokio::task::JoinSet::new();
    // RICOCHET_DELIVERY_CASE=<numbering>/<scenario> (Debug names) runs one.
    let only = std::env::var("RICOCHET_DELIVERY_CASE").ok();
    for numbering in NUMBERINGS {
        for scenario in SCENARIOS {
            let name = format!("{numbering:?}/{scenario:?}");
            if only.as_ref().is_some_and(|only| *only != name) {
                continue;
            }
            cases.spawn(case(numbering, scenario));
        }
    }
    while let Some(result) = cases.join_next().await {
        if let Err(error) = result {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}
