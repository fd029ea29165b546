//! Hostile peers against a running client, over real TCP.
//!
//! The victim, Alice, is a real [`ricochet_client::Client`] with small
//! limits; Bob is her real contact, connected the whole time. A scripted raw
//! peer ([`common::raw::RawPeer`]) breaks one rule per case: every row of
//! spec §12.4, the validation rules of §3–§10, oversize input, slow-loris,
//! floods of connections, channels, contact requests and chat, and
//! file-transfer abuse. For every case it checks the reaction the spec
//! defines (exact bytes or messages, or the close), and afterwards that
//! Alice is healthy: her connection counts are back to the baseline, her
//! pending requests within the limit, and Bob (never reported offline)
//! still chats with her both ways. The session-level counterpart of this
//! suite is `ricochet-proto/tests/reactions.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::raw::{
    RawPeer, WAIT, ack_of, chat_message, control_of, cookie, file_of, frame_bytes, response_of,
    v3_key,
};
use common::{PATIENCE, Peer, befriend, start, start_with};
use ricochet_client::transport::tcp::Directory;
use ricochet_client::{
    ClientBuilder, ContactStatus, Event, IdentityKey, IncomingFile, Limits, MessageStatus,
    RicochetId, TransferOutcome,
};
use ricochet_identity::{AuthProof, Generation, V2IdentityKey, V3IdentityKey};
use ricochet_proto::message::auth::AuthResult;
use ricochet_proto::message::chat::{ChatAcknowledge, ChatPacket};
use ricochet_proto::message::contact_request::ResponseStatus;
use ricochet_proto::message::control::{ChannelResult, ControlMessage, OpenChannel};
use ricochet_proto::message::file::{FileHeader, FileMessage, FileResponse, TransferResult};
use ricochet_proto::{ChannelId, ChannelType, CommonError, Frame};
use sha3::{Digest as _, Sha3_512};

/// The victim's authentication deadline in the cases that wait for it
/// (spec §3.4 says 15 s; short here to keep the suite fast).
const AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Resident-memory growth allowed during a flood.
const MEMORY_BOUND: u64 = 64 * 1024 * 1024;

/// Floods measure the process's resident memory; one at a time.
static FLOODS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Panics anywhere but in test code (a connection task of the client, say,
/// which would otherwise die quietly).
static FOREIGN_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn watch_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_tests = info.location().is_some_and(|l| l.file().contains("tests/"));
            if !in_tests {
                FOREIGN_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// Small limits; the default (15 s) authentication deadline, for the
/// cases that do not wait for it.
fn small_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_unauthenticated_connections = 4;
    limits.max_pending_requests = 4;
    limits.max_incoming_transfers = 4;
    limits
}

/// Small limits with a short authentication deadline.
fn deadline_limits(max_unauthenticated_connections: usize) -> Limits {
    let mut limits = small_limits();
    limits.max_unauthenticated_connections = max_unauthenticated_connections;
    limits.authentication_timeout = AUTH_TIMEOUT;
    limits
}

/// Resident bytes of this process.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn unknown_type() -> ChannelType {
    ChannelType::from_name("im.example.nope")
}

fn rejected(id: u16, error: CommonError) -> ChannelResult {
    ChannelResult::rejected(ChannelId::new(id), error)
}

fn opened(id: u16) -> ChannelResult {
    ChannelResult::opened(ChannelId::new(id))
}

fn pending(id: u16) -> ChannelResult {
    let mut result = opened(id);
    result.response = Some(ResponseStatus::Pending);
    result
}

// ---- hand-made protobuf, for what the typed encoders cannot express ----

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn field_varint(number: u64, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(number << 3, &mut out);
    varint(value, &mut out);
    out
}

fn field_bytes(number: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((number << 3) | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// `ControlPacket{OpenChannel{id, type}}` with any (even negative) id.
fn open_channel_raw(id: i64, channel_type: &str) -> Vec<u8> {
    let mut open = field_varint(1, id as u64);
    open.extend(field_bytes(2, channel_type.as_bytes()));
    field_bytes(1, &open)
}

fn file_header(file_id: u32, size: u64, name: &str, hash: &[u8]) -> Bytes {
    FileMessage::Header(FileHeader {
        file_id,
        file_size: size,
        name: name.to_owned(),
        file_hash: Bytes::copy_from_slice(hash),
    })
    .encode()
}

fn sha3(data: &[u8]) -> Vec<u8> {
    Sha3_512::digest(data).to_vec()
}

fn intro(versions: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x49, 0x4D, u8::try_from(versions.len()).unwrap()];
    bytes.extend_from_slice(versions);
    bytes
}

/// Every file under `root`.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Panics if `event` says that `friend`'s connection dropped.
fn watch(friend: RicochetId, event: &Event) {
    if let Event::ContactStatusChanged { contact, status } = event
        && *contact == friend
    {
        assert_eq!(
            *status,
            ContactStatus::Online,
            "the real contact's connection dropped"
        );
    }
}

/// Alice (the victim) and Bob (her contact), and what the checks need.
struct Fixture {
    dir: tempfile::TempDir,
    directory: Directory,
    limits: Limits,
    alice: Peer,
    bob: Peer,
    /// Raw peers that are Alice's contacts and connected: they add to the
    /// baseline of her connection counts.
    extra_contacts: usize,
    round: u32,
}

impl Fixture {
    async fn new() -> Self {
        Self::with(small_limits(), |builder| builder).await
    }

    /// Alice with `limits`, her builder further adjusted by `adjust`.
    async fn with(limits: Limits, adjust: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        watch_panics();
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::new();
        let alice_limits = limits.clone();
        let mut alice = start_with(&dir.path().join("alice"), &directory, move |builder| {
            adjust(builder.limits(alice_limits))
        })
        .await;
        let mut bob = start(&dir.path().join("bob"), &directory).await;
        // Bob asks Alice: his connection is inbound on her side, like the
        // hostile ones.
        befriend(&mut bob, &mut alice).await;
        let fixture = Self {
            dir,
            directory,
            limits,
            alice,
            bob,
            extra_contacts: 0,
            round: 0,
        };
        let mut fixture = fixture;
        fixture.settle("setup").await;
        // Befriending reported Bob offline before online; watching starts now.
        while fixture.alice.events.try_next().is_some() {}
        while fixture.bob.events.try_next().is_some() {}
        fixture
    }

    fn victim(&self) -> RicochetId {
        self.alice.id()
    }

    /// A raw peer with a fresh v3 identity, connected to Alice.
    async fn raw(&self) -> RawPeer {
        RawPeer::connect(&self.directory, self.victim()).await
    }

    /// The same, introduced (§3).
    async fn raw_introduced(&self) -> RawPeer {
        RawPeer::introduced(&self.directory, self.victim()).await
    }

    /// A raw peer that became Alice's contact.
    async fn raw_contact(&mut self) -> RawPeer {
        let mut raw = self.raw_introduced().await;
        self.befriend_raw(&mut raw).await;
        raw
    }

    /// Waits for one of Alice's events; any sign that Bob's connection
    /// dropped fails the test.
    async fn alice_expect<T>(&mut self, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
        let bob = self.bob.id();
        self.alice
            .expect(what, |event| {
                watch(bob, &event);
                pick(event)
            })
            .await
    }

    async fn bob_expect<T>(&mut self, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
        let alice = self.alice.id();
        self.bob
            .expect(what, |event| {
                watch(alice, &event);
                pick(event)
            })
            .await
    }

    /// Alice's events so far.
    fn drain_alice(&mut self) -> Vec<Event> {
        let bob = self.bob.id();
        let mut events = Vec::new();
        while let Some(event) = self.alice.events.try_next() {
            watch(bob, &event);
            events.push(event);
        }
        events
    }

    fn drain_bob(&mut self) {
        let alice = self.alice.id();
        while let Some(event) = self.bob.events.try_next() {
            watch(alice, &event);
        }
    }

    /// A message from `from` to Alice, waited for.
    async fn message_from(&mut self, from: RicochetId) -> ricochet_client::Message {
        self.alice_expect("a message", |event| match event {
            Event::MessageReceived(message) if message.contact == from => Some(message),
            _ => None,
        })
        .await
    }

    /// Waits until both clients hold exactly the baseline connections: the
    /// one between them, plus those of connected raw contacts.
    async fn settle(&self, case: &str) {
        let want = 1 + self.extra_contacts;
        self.wait_for_counts(case, want, want).await;
    }

    /// Waits until Alice holds `connections` connections, `contacts` of
    /// them a contact's, and Bob exactly his one.
    async fn wait_for_counts(&self, case: &str, connections: usize, contacts: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let a = self.alice.client.stats().await.unwrap();
            let b = self.bob.client.stats().await.unwrap();
            if a.connections == connections
                && a.contact_connections == contacts
                && b.connections == 1
                && b.contact_connections == 1
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{case}: alice should hold {connections} connections ({contacts} of \
                 contacts): alice {a:?}, bob {b:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// After a case: counts back to the baseline, pending requests within
    /// the limit, and Alice and Bob chat both ways on their connection.
    async fn check(&mut self, case: &str) {
        self.settle(case).await;
        assert_eq!(
            FOREIGN_PANICS.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{case}: something panicked outside the tests (see the output)"
        );
        let pending = self.alice.client.contact_requests().await.unwrap().len();
        assert!(
            pending <= self.limits.max_pending_requests,
            "{case}: {pending} pending requests"
        );
        self.round += 1;
        let (alice_id, bob_id) = (self.alice.id(), self.bob.id());

        let text = format!("ping {} after: {case}", self.round);
        let mut handle = self.bob.client.send_message(alice_id, &text).await.unwrap();
        let got = self.message_from(bob_id).await;
        assert_eq!(got.text, text, "{case}");
        let status = tokio::time::timeout(PATIENCE, handle.finished()).await;
        assert_eq!(status.ok(), Some(MessageStatus::Acknowledged), "{case}");

        let text = format!("pong {} after: {case}", self.round);
        let mut handle = self.alice.client.send_message(bob_id, &text).await.unwrap();
        let got = self
            .bob_expect("Alice's pong", |event| match event {
                Event::MessageReceived(message) if message.contact == alice_id => {
                    Some(message.text)
                }
                _ => None,
            })
            .await;
        assert_eq!(got, text, "{case}");
        let status = tokio::time::timeout(PATIENCE, handle.finished()).await;
        assert_eq!(status.ok(), Some(MessageStatus::Acknowledged), "{case}");

        let bob = self.alice.client.contact(bob_id).await.unwrap().unwrap();
        assert_eq!(bob.status, ContactStatus::Online, "{case}");
        self.drain_alice();
        self.drain_bob();
        assert_eq!(
            self.alice.client.stats().await.unwrap().contact_connections,
            1 + self.extra_contacts,
            "{case}"
        );
    }

    /// `raw` becomes Alice's contact: a request over the wire that her
    /// user accepts (§8.2 step 8).
    async fn befriend_raw(&mut self, raw: &mut RawPeer) {
        raw.request_contact("let me in").await;
        let id = raw.id();
        let request = self
            .alice_expect("the raw peer's request", |event| match event {
                Event::ContactRequestReceived(request) if request.sender() == id => Some(request),
                _ => None,
            })
            .await;
        request.accept("raw").await.unwrap();
        raw.expect_accepted().await;
        self.extra_contacts += 1;
        self.settle("a raw peer became a contact").await;
    }

    /// Removes a raw contact (its connection, if any, is closed).
    async fn remove_raw(&mut self, id: RicochetId, connected: bool) {
        self.alice.client.remove_contact(id).await.unwrap();
        if connected {
            self.extra_contacts -= 1;
        }
    }
}

/// The connection is still up right after a rejection (checked when the
/// deadline is not too near), and dies at the authentication deadline, not
/// before (§12.4 last row, §3.4).
async fn dies_at_deadline(mut raw: RawPeer) {
    if raw.connected_at.elapsed() + Duration::from_millis(500) < AUTH_TIMEOUT {
        raw.probe_quiet().await;
    }
    raw.expect_closed(WAIT).await;
    // (Our clock starts at our end of the handshake, a little off hers.)
    let lived = raw.connected_at.elapsed() + Duration::from_millis(100);
    assert!(
        lived >= AUTH_TIMEOUT,
        "closed after {lived:?}, before the deadline"
    );
}

// =====================================================================
// §3, §4, §5.1, §6: the wire before authentication
// =====================================================================

#[tokio::test]
async fn wire_rules_before_authentication() {
    let mut fx = Fixture::new().await;

    // §3.2, §12.4: bad intro magic: abort, no reply.
    for bad in [[0x48, 0x4D, 1, 3], [0x49, 0x4E, 1, 3]] {
        let mut raw = fx.raw().await;
        raw.send_raw(&bad).await;
        raw.expect_closed(WAIT).await;
        fx.settle("bad magic").await;
    }
    fx.check("bad intro magic").await;

    // §3.2: N = 0: abort, no reply.
    let mut raw = fx.raw().await;
    raw.send_raw(&[0x49, 0x4D, 0]).await;
    raw.expect_closed(WAIT).await;
    fx.check("zero versions").await;

    // §3.2, §12.4: no common version: the server writes FF and closes
    // (Ricochet 1.1's own introduction, and unknown version values).
    for versions in [&[1u8, 0][..], &[2, 4, 0xFE], &[0]] {
        let mut raw = fx.raw().await;
        raw.send_raw(&intro(versions)).await;
        assert_eq!(raw.read_byte(WAIT).await, Some(0xFF), "{versions:?}");
        raw.expect_closed(WAIT).await;
        fx.settle("no common version").await;
    }
    fx.check("no common version").await;

    // §3.2: our version is chosen wherever it appears in the list.
    let mut raw = fx.raw().await;
    raw.send_raw(&intro(&[1, 0, 3])).await;
    assert_eq!(raw.read_byte(WAIT).await, Some(3));
    raw.probe_quiet().await;
    drop(raw);
    fx.check("version 3 among others").await;

    // §4.1, §12.4: frame size < 4: abort.
    for size in 0..4u8 {
        let mut raw = fx.raw_introduced().await;
        raw.send_raw(&[0, size, 0, 0]).await;
        raw.expect_closed(WAIT).await;
        fx.settle("short frame").await;
    }
    fx.check("frame size < 4").await;

    // §4.2, §12.4: data for an unknown channel: a close for that id, exact
    // bytes, and the connection stays; a close for an unknown id is ignored
    // (no ping-pong).
    let mut raw = fx.raw_introduced().await;
    raw.send_frame(7, &[0x0A, 0x00]).await;
    let close = raw.recv().await;
    assert_eq!(close.to_bytes().unwrap(), &[0x00, 0x04, 0x00, 0x07][..]);
    raw.close_channel(9).await;
    raw.probe_quiet().await;
    drop(raw);
    fx.check("data for an unknown channel").await;

    // §5.1, §12.4: unparsable control packet, empty control Packet (no
    // field it knows), two fields, a required field missing: close the
    // connection, no reply.
    for payload in [
        &[0xFF, 0xFF, 0xFF][..],
        &[0x30, 0x01],
        &[0x1A, 0x02, 0x08, 0x01, 0x22, 0x00],
        &[0x0A, 0x02, 0x08, 0x01],
    ] {
        let mut raw = fx.raw_introduced().await;
        raw.send_frame(0, payload).await;
        raw.expect_closed(WAIT).await;
        fx.settle("bad control packet").await;
    }
    fx.check("unparsable or empty control packet").await;

    // §4.2, §12.4: close of channel 0: close the connection.
    let mut raw = fx.raw_introduced().await;
    raw.close_channel(0).await;
    raw.expect_closed(WAIT).await;
    fx.check("close of channel 0").await;

    // §4.3, §6.2 step 1, §12.4: OpenChannel with a bad id (the server's
    // parity, 0, negative, beyond u16): close the connection, no result.
    for id in [2i64, 0, -1, 70_000] {
        let mut raw = fx.raw_introduced().await;
        raw.send_frame(0, &open_channel_raw(id, "im.ricochet.chat"))
            .await;
        raw.expect_closed(WAIT).await;
        fx.settle("bad channel id").await;
    }
    fx.check("OpenChannel with a bad id").await;

    // §4.3, §12.4: OpenChannel with an id in use (the open auth channel):
    // close the connection, no result.
    let mut raw = fx.raw_introduced().await;
    raw.open_auth(1, cookie()).await;
    raw.open(1, unknown_type()).await;
    raw.expect_closed(WAIT).await;
    fx.check("OpenChannel with a duplicate id").await;

    // §6.2 step 2, §12.4: unknown type: ChannelResult{opened=false,
    // UnknownTypeError}; the refused id is not in use, so it may come again.
    let mut raw = fx.raw_introduced().await;
    for _ in 0..2 {
        let result = raw.open_and_result(1, unknown_type()).await;
        assert_eq!(result, rejected(1, CommonError::UnknownType));
    }
    // §6.2 step 3, §12.4: channel-specific refusals before authentication.
    assert_eq!(
        raw.open_and_result(3, ChannelType::Chat).await,
        rejected(3, CommonError::Unauthorized),
        "§9: chat needs a known contact"
    );
    assert_eq!(
        raw.open_and_result(5, ChannelType::FileTransfer).await,
        rejected(5, CommonError::Unauthorized),
        "§10: files need a known contact"
    );
    let mut request = OpenChannel::new(ChannelId::new(7), ChannelType::ContactRequest);
    request.contact_request = Some(Default::default());
    raw.control(&ControlMessage::OpenChannel(request)).await;
    assert_eq!(
        raw.expect_result(7).await,
        rejected(7, CommonError::Unauthorized),
        "§8.2 step 4: a request needs authentication"
    );
    for (id, cookie_len) in [(9u16, Some(15usize)), (11, None), (13, Some(17))] {
        let mut open = OpenChannel::new(ChannelId::new(id), ChannelType::AuthHiddenService);
        open.client_cookie = cookie_len.map(|len| Bytes::from(vec![1; len]));
        raw.control(&ControlMessage::OpenChannel(open)).await;
        assert_eq!(
            raw.expect_result(id).await,
            rejected(id, CommonError::BadUsage),
            "§7: a client cookie of {cookie_len:?} bytes"
        );
    }
    raw.open_auth(15, cookie()).await;
    let mut second = OpenChannel::new(ChannelId::new(17), ChannelType::AuthHiddenService);
    second.client_cookie = Some(Bytes::from_static(&[2; 16]));
    raw.control(&ControlMessage::OpenChannel(second)).await;
    assert_eq!(
        raw.expect_result(17).await,
        rejected(17, CommonError::BadUsage),
        "§7: a second auth channel"
    );
    // §6.2, §12.4: ChannelResult for an unknown id, or for the peer's own
    // channel: ignored.
    raw.control(&ControlMessage::ChannelResult(opened(4))).await;
    raw.control(&ControlMessage::ChannelResult(opened(15)))
        .await;
    raw.probe_quiet().await;
    // §6.3: KeepAlive(true) is answered with false; KeepAlive(false) not.
    raw.control(&ControlMessage::KeepAlive {
        response_requested: false,
    })
    .await;
    raw.control(&ControlMessage::KeepAlive {
        response_requested: true,
    })
    .await;
    let before = raw.probe().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        control_of(&before[0]),
        ControlMessage::KeepAlive {
            response_requested: false
        }
    );
    // §5.1, §12.4: unparsable packet on a non-control channel: that
    // channel closes, the connection stays; later data on it gets a close.
    raw.send_frame(15, &[0xFF, 0xFF]).await;
    raw.expect_close_of(15).await;
    raw.probe_quiet().await;
    raw.send_frame(15, &[0x0A, 0x00]).await;
    raw.expect_close_of(15).await;
    raw.probe_quiet().await;
    drop(raw);
    fx.check("refusals, ignored results, keepalive, bad packet on a channel")
        .await;

    // §6.4, §12.4: unsolicited FeaturesEnabled: close the connection.
    let mut raw = fx.raw_introduced().await;
    raw.control(&ControlMessage::FeaturesEnabled(vec!["x".to_owned()]))
        .await;
    raw.expect_closed(WAIT).await;
    fx.check("unsolicited FeaturesEnabled").await;

    // §4.1 oversize: a maximum-size frame (65535 bytes) of garbage on the
    // control channel closes the connection ...
    let garbage = vec![0xFF; 65_531];
    let mut raw = fx.raw_introduced().await;
    raw.send_frame(0, &garbage).await;
    raw.expect_closed(WAIT).await;
    fx.check("maximum-size garbage on the control channel")
        .await;
    // ... on an open channel closes that channel, on an unknown one gets a
    // close for it ...
    let mut raw = fx.raw_introduced().await;
    raw.open_auth(1, cookie()).await;
    raw.send_frame(1, &garbage).await;
    raw.expect_close_of(1).await;
    raw.send_frame(33, &garbage).await;
    raw.expect_close_of(33).await;
    // ... and a maximum-size well-formed OpenChannel (a 65 KB type name)
    // is refused like any unknown type.
    let mut name_len = 65_521;
    let open = loop {
        let open = OpenChannel::new(
            ChannelId::new(3),
            ChannelType::from_name(&"x".repeat(name_len)),
        );
        let len = ControlMessage::OpenChannel(open.clone()).encode().len();
        if len == 65_531 {
            break open;
        }
        name_len = name_len + 65_531 - len;
    };
    raw.control(&ControlMessage::OpenChannel(open)).await;
    assert_eq!(
        raw.expect_result(3).await,
        rejected(3, CommonError::UnknownType)
    );
    raw.probe_quiet().await;
    drop(raw);
    fx.check("maximum-size frames on channels").await;
}

// =====================================================================
// §7 authentication, §8 contact requests from strangers
// =====================================================================

#[tokio::test]
async fn authentication_abuse() {
    let alice_seed = [0xA1; 32];
    let alice_key = IdentityKey::V3(V3IdentityKey::from_seed(&alice_seed));
    // Alice also holds a protocol 1 (RSA) identity, with its own listener.
    let mut fx = Fixture::with(deadline_limits(8), |builder| {
        builder.identity(alice_key).v2_identity(true)
    })
    .await;
    let v2_victim = fx.alice.client.ids()[1];
    assert_eq!(v2_victim.generation(), Generation::V2);
    let (directory, victim, bob) = (fx.directory.clone(), fx.victim(), fx.bob.id());
    let not_accepted = AuthResult {
        accepted: false,
        is_known_contact: None,
    };

    // §7.2, §12.4: forged, replayed, truncated and misdirected proofs:
    // Result{accepted=false}, the channel closes, and the connection dies
    // at the authentication deadline.
    let forged = async {
        // A forged signature claiming to be Bob.
        let mut raw = RawPeer::introduced(&directory, victim).await;
        raw.open_auth(1, cookie()).await;
        let proof = AuthProof::V3 {
            signature: vec![0x42; 64],
            service_id: bob.service_id().to_string(),
        };
        raw.send_proof(1, &proof).await;
        assert_eq!(raw.expect_verdict(1).await, not_accepted, "forged");
        // §4.2, §12.4: data for the closed auth channel gets a close.
        raw.send_proof(1, &proof).await;
        raw.expect_close_of(1).await;
        let id = raw.id();
        dies_at_deadline(raw).await;
        id
    };
    let replayed = async {
        // A correct proof from a first connection, replayed on a second
        // with the same client cookie (the server cookie differs).
        let mut first = RawPeer::introduced(&directory, victim).await;
        let verdict = first.authenticate().await;
        assert_eq!(
            verdict,
            AuthResult {
                accepted: true,
                is_known_contact: Some(false)
            }
        );
        let proof = first.last_proof.clone().unwrap();
        let client_cookie = first.cookies.unwrap().client;
        let mut second = RawPeer::connect_as(&directory, victim, first.key.clone()).await;
        second.introduce().await;
        second.open_auth(1, client_cookie).await;
        second.send_proof(1, &proof).await;
        assert_eq!(second.expect_verdict(1).await, not_accepted, "replayed");
        let id = second.id();
        // An authenticated stranger without a request has no purpose
        // either (§11.3): both die at the deadline.
        tokio::join!(dies_at_deadline(first), dies_at_deadline(second));
        id
    };
    let truncated = async {
        let mut raw = RawPeer::introduced(&directory, victim).await;
        raw.open_auth(1, cookie()).await;
        let AuthProof::V3 {
            mut signature,
            service_id,
        } = raw.proof()
        else {
            panic!("a v3 proof")
        };
        signature.truncate(32);
        raw.send_proof(
            1,
            &AuthProof::V3 {
                signature,
                service_id,
            },
        )
        .await;
        assert_eq!(raw.expect_verdict(1).await, not_accepted, "truncated");
        let id = raw.id();
        dies_at_deadline(raw).await;
        id
    };
    let misdirected = async {
        // A correct signature, but for Bob's service id as the server.
        let mut raw = RawPeer::introduced(&directory, victim).await;
        raw.open_auth(1, cookie()).await;
        let proof = raw
            .key
            .auth_proof(&raw.cookies.unwrap(), bob.service_id())
            .unwrap();
        raw.send_proof(1, &proof).await;
        assert_eq!(raw.expect_verdict(1).await, not_accepted, "misdirected");
        let id = raw.id();
        dies_at_deadline(raw).await;
        id
    };
    let ids = tokio::join!(forged, replayed, truncated, misdirected);
    for id in [ids.0, ids.1, ids.2, ids.3] {
        assert!(fx.alice.client.contact(id).await.unwrap().is_none());
    }
    assert!(fx.alice.client.contact_requests().await.unwrap().is_empty());
    fx.check("forged, replayed, truncated and misdirected proofs")
        .await;

    // §5.1, §7.1: a wrong-generation proof (protocol 1, RSA) to a protocol 3
    // server, and a proof packet cut short: the channel closes. A v1 proof
    // read as v3 has its 128-byte RSA signature in the `service_id` string:
    // unparsable unless it happens to be UTF-8, when it is a failed proof.
    let v2 = V2IdentityKey::generate().unwrap();
    let wrong_generation = async {
        let mut raw = RawPeer::introduced(&directory, victim).await;
        raw.open_auth(1, cookie()).await;
        let server: ricochet_identity::V2ServiceId = "wr4azk67ynmtabcd".parse().unwrap();
        let proof = v2.auth_proof(&raw.cookies.unwrap(), &server).unwrap();
        let AuthProof::V1 { signature, .. } = &proof else {
            panic!("a v1 proof")
        };
        let parses_as_v3 = std::str::from_utf8(signature).is_ok();
        raw.send_proof(1, &proof).await;
        if parses_as_v3 {
            assert_eq!(raw.expect_verdict(1).await, not_accepted);
        } else {
            raw.expect_close_of(1).await;
        }
        dies_at_deadline(raw).await;
    };
    let cut_short = async {
        let mut raw = RawPeer::introduced(&directory, victim).await;
        raw.open_auth(1, cookie()).await;
        let proof = ricochet_proto::message::auth::AuthMessage::Proof(raw.proof()).encode();
        raw.send_frame(1, &proof[..proof.len() / 2]).await;
        raw.expect_close_of(1).await;
        dies_at_deadline(raw).await;
    };
    let impersonating_alice = async {
        // A correct proof made with Alice's own key: refused, and the
        // connection closed at once.
        let key = IdentityKey::V3(V3IdentityKey::from_seed(&alice_seed));
        let mut raw = RawPeer::connect_as(&directory, victim, key.into()).await;
        raw.introduce().await;
        raw.open_auth(1, cookie()).await;
        let proof = raw.proof();
        raw.send_proof(1, &proof).await;
        let frames = raw.frames_until_closed(WAIT).await;
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(
            ricochet_proto::message::auth::AuthMessage::decode(
                frames[0].payload.clone(),
                Generation::V3
            )
            .unwrap(),
            ricochet_proto::message::auth::AuthMessage::Result(not_accepted)
        );
        assert_eq!(frames[1], Frame::close(ChannelId::new(1)));
    };
    let v3_proof_to_v1_server = async {
        // The other way round: a protocol 3 proof read as protocol 1 parses
        // (a 64-byte "public key", a 56-byte "signature") and fails
        // verification (§7.1 steps 2–5): Result{accepted=false}. Files do
        // not exist in protocol 1 (§10): UnknownTypeError.
        let key = std::sync::Arc::new(IdentityKey::V2(V2IdentityKey::generate().unwrap()));
        let mut raw = RawPeer::connect_as(&directory, v2_victim, key).await;
        raw.introduce().await;
        assert_eq!(
            raw.open_and_result(3, ChannelType::FileTransfer).await,
            rejected(3, CommonError::UnknownType)
        );
        raw.open_auth(1, cookie()).await;
        let proof = v3_key()
            .auth_proof(&raw.cookies.unwrap(), victim.service_id())
            .unwrap();
        raw.send_proof(1, &proof).await;
        assert_eq!(raw.expect_verdict(1).await, not_accepted, "v3 proof to v1");
        dies_at_deadline(raw).await;
    };
    let v1_correct = async {
        // A correct protocol 1 proof is accepted, as a stranger.
        let key = std::sync::Arc::new(IdentityKey::V2(V2IdentityKey::generate().unwrap()));
        let mut raw = RawPeer::connect_as(&directory, v2_victim, key).await;
        raw.introduce().await;
        assert_eq!(
            raw.authenticate().await,
            AuthResult {
                accepted: true,
                is_known_contact: Some(false)
            }
        );
        dies_at_deadline(raw).await;
    };
    tokio::join!(
        wrong_generation,
        cut_short,
        impersonating_alice,
        v3_proof_to_v1_server,
        v1_correct
    );
    fx.check("wrong-generation, cut-short and self proofs")
        .await;

    // §8.2 steps 5–6, §8.1: a stranger's malformed requests. No extension:
    // BadUsageError. Message over 2000 UTF-16 units, nickname over 30 or
    // with a forbidden character: opened, Error, channel closed. None is
    // stored, and the connection still dies at the deadline.
    let bad_requests: [(&str, String, String); 6] = [
        ("long message", String::new(), "😀".repeat(1000) + "a"),
        ("long nickname", "n".repeat(31), "hi".to_owned()),
        ("markup in nickname", "<b>".to_owned(), "hi".to_owned()),
        ("control character", "a\u{7}b".to_owned(), "hi".to_owned()),
        ("format character", "a\u{200E}b".to_owned(), "hi".to_owned()),
        ("noncharacter", "a\u{FDD0}b".to_owned(), "hi".to_owned()),
    ];
    let mut cases = Vec::new();
    for (what, nickname, message) in bad_requests {
        let directory = directory.clone();
        cases.push(tokio::spawn(async move {
            let mut raw = RawPeer::introduced(&directory, victim).await;
            raw.authenticate().await;
            let result = raw.send_request(3, &nickname, &message).await;
            let mut error = opened(3);
            error.response = Some(ResponseStatus::Error);
            assert_eq!(result, error, "{what}");
            raw.expect_close_of(3).await;
            dies_at_deadline(raw).await;
        }));
    }
    let mut raw = fx.raw_introduced().await;
    raw.authenticate().await;
    assert_eq!(
        raw.open_and_result(3, ChannelType::ContactRequest).await,
        rejected(3, CommonError::BadUsage),
        "no extension"
    );
    dies_at_deadline(raw).await;
    for case in cases {
        case.await.unwrap();
    }
    let events = fx.drain_alice();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ContactRequestReceived(_))),
        "a malformed request reached the user"
    );
    assert!(fx.alice.client.contact_requests().await.unwrap().is_empty());
    fx.check("malformed contact requests").await;

    // §8.1: exactly 2000 UTF-16 units is fine; the request is pending until
    // the user rejects it: Response{Rejected}, channel and connection close
    // (§8.2 step 8), and the sender is blocked.
    let mut raw = fx.raw_introduced().await;
    raw.request_contact(&"😀".repeat(1000)).await;
    let id = raw.id();
    let request = fx
        .alice_expect("the request", |event| match event {
            Event::ContactRequestReceived(request) if request.sender() == id => Some(request),
            _ => None,
        })
        .await;
    assert_eq!(request.request().message, "😀".repeat(1000));
    request.reject().await.unwrap();
    let frames = raw.frames_until_closed(WAIT).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(response_of(&frames[0]), ResponseStatus::Rejected);
    assert_eq!(frames[1], Frame::close(ChannelId::new(3)));
    assert_eq!(fx.alice.client.blocked().await.unwrap(), [id]);

    // §8.2 step 7: the blocked sender asks again: Pending (the session
    // answers at once), then Rejected without the user seeing it.
    let mut again = RawPeer::connect_as(&fx.directory, victim, raw.key.clone()).await;
    again.introduce().await;
    let verdict = again.authenticate().await;
    assert_eq!(verdict.is_known_contact, Some(false));
    assert_eq!(again.send_request(3, "", "please").await, pending(3));
    let frames = again.frames_until_closed(WAIT).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(response_of(&frames[0]), ResponseStatus::Rejected);
    assert_eq!(frames[1], Frame::close(ChannelId::new(3)));
    let events = fx.drain_alice();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ContactRequestReceived(_))),
        "a blocked sender's request reached the user"
    );
    fx.check("rejected and blocked sender").await;
}

// =====================================================================
// slow-loris and the bound on unauthenticated connections (§3.4, §11.3)
// =====================================================================

#[tokio::test]
async fn slow_loris_and_unauthenticated_limit() {
    let mut fx = Fixture::with(deadline_limits(4), |builder| builder).await;

    // An introduction one byte a second (the deadline is 2 s): closed
    // before it is complete, without a version byte, at the deadline.
    let mut raw = fx.raw().await;
    let mut sent = 0;
    for byte in [0x49, 0x4D, 0x01, 0x03] {
        if raw.try_send_raw(&[byte]).await.is_err() {
            break;
        }
        sent += 1;
        if raw.closed_within(Duration::from_secs(1)).await {
            break;
        }
    }
    assert!(sent < 4, "the whole slow introduction was read");
    dies_at_deadline(raw).await;
    fx.check("slow introduction").await;

    // After the introduction: a frame one byte every 250 ms, and a frame
    // that announces 65535 bytes and stops: closed at the deadline all the
    // same, the partial frames dropped.
    let mut slow_frame = fx.raw_introduced().await;
    let mut stalled = fx.raw_introduced().await;
    stalled.send_raw(&[0xFF, 0xFF, 0x00, 0x00, 0x0A]).await;
    let long = frame_bytes(
        0,
        &ControlMessage::EnableFeatures(vec!["f".repeat(200)]).encode(),
    );
    let mut trickled = 0;
    for byte in &long[..long.len() - 1] {
        if slow_frame.try_send_raw(&[*byte]).await.is_err()
            || slow_frame.closed_within(Duration::from_millis(250)).await
        {
            break;
        }
        trickled += 1;
    }
    assert!(trickled < long.len() - 1, "the slow frame was not cut off");
    dies_at_deadline(slow_frame).await;
    dies_at_deadline(stalled).await;
    fx.check("slow and stalled frames").await;

    // Ten connections at once, beyond max_unauthenticated_connections (4):
    // four are served (the version byte), six closed at once without one.
    let mut peers = Vec::new();
    for _ in 0..10 {
        peers.push(fx.raw().await);
    }
    let (mut held, mut refused) = (Vec::new(), 0);
    for mut peer in peers {
        let _ = peer.try_send_raw(&intro(&[3])).await;
        match peer.read_byte(WAIT).await {
            Some(3) => held.push(peer),
            None => {
                // Refused at once, not held until the deadline.
                assert!(peer.connected_at.elapsed() < AUTH_TIMEOUT);
                refused += 1;
            }
            Some(other) => panic!("unexpected byte {other}"),
        }
    }
    assert_eq!((held.len(), refused), (4, 6));
    assert_eq!(
        fx.alice.client.stats().await.unwrap().connections,
        1 + 4,
        "the refused ones are not counted"
    );
    // The four never authenticate: closed at the deadline, nothing sent.
    for peer in held {
        dies_at_deadline(peer).await;
    }
    fx.check("connections beyond the unauthenticated limit")
        .await;

    // Authenticated strangers without a request count too, and die too.
    let mut strangers = Vec::new();
    for _ in 0..4 {
        let mut raw = fx.raw_introduced().await;
        raw.authenticate().await;
        strangers.push(raw);
    }
    let mut fifth = fx.raw().await;
    let _ = fifth.try_send_raw(&intro(&[3])).await;
    assert_eq!(fifth.read_byte(WAIT).await, None, "over the limit");
    assert!(
        fifth.connected_at.elapsed() < AUTH_TIMEOUT,
        "refused at once"
    );
    for raw in strangers {
        dies_at_deadline(raw).await;
    }
    // The slots are free again.
    let mut later = fx.raw_introduced().await;
    later.probe_quiet().await;
    drop(later);
    fx.check("authenticated strangers beyond the limit").await;
}

// =====================================================================
// contact-request flood from many identities (§8.2, Limits)
// =====================================================================

#[tokio::test]
async fn contact_request_flood_is_bounded() {
    let mut limits = small_limits();
    limits.max_unauthenticated_connections = 16;
    limits.max_pending_requests = 8;
    let mut fx = Fixture::with(limits, |builder| builder).await;
    let (directory, victim) = (fx.directory.clone(), fx.victim());

    /// One identity's connection with a valid request sent (Pending).
    async fn asker(
        directory: Directory,
        victim: RicochetId,
        key: std::sync::Arc<IdentityKey>,
    ) -> RawPeer {
        loop {
            let mut raw = RawPeer::connect_as(&directory, victim, key.clone()).await;
            let _ = raw.try_send_raw(&intro(&[3])).await;
            if raw.read_byte(WAIT).await != Some(3) {
                // Over the unauthenticated limit for a moment: retry.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            raw.request_contact("hello from the flood").await;
            return raw;
        }
    }

    let _floods = FLOODS.lock().await;
    let before = resident_bytes();
    let mut lanes = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let directory = directory.clone();
        lanes.spawn(async move {
            let mut peers = Vec::new();
            for _ in 0..50 {
                peers.push(asker(directory.clone(), victim, v3_key()).await);
            }
            peers
        });
    }
    let mut peers = Vec::new();
    while let Some(lane) = lanes.join_next().await {
        peers.extend(lane.unwrap());
    }
    assert_eq!(peers.len(), 200);

    // At most max_pending_requests are held; the connections of the others
    // are closed after their Pending (the sender retries later).
    let held: HashSet<RicochetId> = fx
        .alice
        .client
        .contact_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.from)
        .collect();
    assert_eq!(held.len(), 8);
    let mut kept = Vec::new();
    for mut raw in peers {
        if held.contains(&raw.id()) {
            raw.probe_quiet().await;
            kept.push(raw);
        } else {
            raw.expect_closed(WAIT).await;
        }
    }
    assert_eq!(kept.len(), 8);
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < MEMORY_BOUND,
        "resident memory grew by {grown} bytes"
    );
    fx.wait_for_counts("request flood", 1 + 8, 1).await;
    let mut told = 0;
    for event in fx.drain_alice() {
        if let Event::ContactRequestReceived(request) = event {
            assert!(held.contains(&request.sender()));
            told += 1;
        }
    }
    assert_eq!(told, 8, "the user hears of the held requests only");

    // A held request's connection may do nothing else: chat and files need
    // a contact (§9, §10: UnauthorizedError), a second request is refused
    // (§8.2 steps 2–3: BadUsageError).
    let asking = &mut kept[1];
    assert_eq!(
        asking.open_and_result(5, ChannelType::Chat).await,
        rejected(5, CommonError::Unauthorized)
    );
    assert_eq!(
        asking.open_and_result(7, ChannelType::FileTransfer).await,
        rejected(7, CommonError::Unauthorized)
    );
    let mut again = OpenChannel::new(ChannelId::new(9), ChannelType::ContactRequest);
    again.contact_request = Some(Default::default());
    asking.control(&ControlMessage::OpenChannel(again)).await;
    assert_eq!(
        asking.expect_result(9).await,
        rejected(9, CommonError::BadUsage)
    );
    asking.probe_quiet().await;

    // §8.2 step 7: a repeat request from a held sender replaces its older
    // connection, and is still held; a new sender is still turned away.
    let mut first = kept.remove(0);
    let repeat = asker(directory.clone(), victim, first.key.clone()).await;
    first.expect_closed(WAIT).await;
    kept.push(repeat);
    let mut newcomer = asker(directory.clone(), victim, v3_key()).await;
    newcomer.expect_closed(WAIT).await;
    assert_eq!(fx.alice.client.contact_requests().await.unwrap().len(), 8);

    // Answering one frees a slot.
    let answered = kept.pop().unwrap();
    fx.alice
        .client
        .reject_contact_request(answered.id())
        .await
        .unwrap();
    let mut answered = answered;
    let frames = answered.frames_until_closed(WAIT).await;
    assert_eq!(response_of(&frames[0]), ResponseStatus::Rejected);
    let mut newcomer = asker(directory.clone(), victim, v3_key()).await;
    newcomer.probe_quiet().await;
    kept.push(newcomer);
    assert_eq!(fx.alice.client.contact_requests().await.unwrap().len(), 8);
    drop(kept);
    drop(_floods);
    fx.check("contact-request flood").await;
}

// =====================================================================
// a known contact abusing chat and the control channel (§6, §9)
// =====================================================================

#[tokio::test]
async fn known_contact_chat_abuse_and_floods() {
    let mut fx = Fixture::new().await;
    let mut raw = fx.raw_contact().await;
    let raw_id = raw.id();

    // §9: the contact's chat channel opens.
    assert_eq!(raw.open_and_result(5, ChannelType::Chat).await, opened(5));
    let ack = |id: u32, accepted: bool| ChatAcknowledge {
        message_id: id,
        accepted,
    };

    // A valid message: acknowledged after it is stored.
    raw.send_frame(5, &chat_message("hello", Some(1), None))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(1, true));
    assert_eq!(fx.message_from(raw_id).await.text, "hello");
    // §9.2: the same id and text again on the same channel, after it was
    // delivered: a new message (resends come first on a new channel; see
    // src/resend.rs and tests/delivery.rs).
    raw.send_frame(5, &chat_message("hello", Some(1), None))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(1, true));
    assert_eq!(fx.message_from(raw_id).await.text, "hello");
    // §9.2: a positive time_delta is ignored (not dated in the future); a
    // negative one dates the message back.
    raw.send_frame(5, &chat_message("future", Some(2), Some(3600)))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(2, true));
    let future = fx.message_from(raw_id).await;
    assert_eq!(future.text, "future");
    assert!(future.time <= SystemTime::now());
    raw.send_frame(5, &chat_message("past", Some(3), Some(-3600)))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(3, true));
    let past = fx.message_from(raw_id).await;
    let age = SystemTime::now().duration_since(past.time).unwrap();
    assert!(age >= Duration::from_secs(3590) && age < Duration::from_secs(3700));
    // §9.2: empty and over-long texts: accepted=false, not stored; exactly
    // 2000 UTF-16 units is fine.
    raw.send_frame(5, &chat_message("", Some(4), None)).await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(4, false));
    raw.send_frame(5, &chat_message(&"b".repeat(2001), Some(5), None))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(5, false));
    raw.send_frame(5, &chat_message(&"😀".repeat(1000), Some(6), None))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(6, true));
    assert_eq!(fx.message_from(raw_id).await.text, "😀".repeat(1000));
    // §9.2: no message_id: delivered, but there is nothing to acknowledge;
    // id 0 is acknowledged.
    raw.send_frame(5, &chat_message("no id", None, None)).await;
    raw.probe_quiet().await;
    assert_eq!(fx.message_from(raw_id).await.text, "no id");
    raw.send_frame(5, &chat_message("zero", Some(0), None))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 5), ack(0, true));
    assert_eq!(fx.message_from(raw_id).await.text, "zero");
    // Extreme time_delta values (§9.2): dated no earlier than 1970, no
    // overflow.
    for (i, delta) in [i64::MIN, -(1 << 40), i64::MAX].into_iter().enumerate() {
        let id = 10 + i as u32;
        raw.send_frame(
            5,
            &chat_message(&format!("delta {delta}"), Some(id), Some(delta)),
        )
        .await;
        assert_eq!(ack_of(&raw.recv().await, 5), ack(id, true));
        let message = fx.message_from(raw_id).await;
        assert_eq!(message.text, format!("delta {delta}"));
        assert!(message.time <= SystemTime::now());
    }
    // None of the refused or repeated ones reached the user.
    raw.probe_quiet().await;
    for event in fx.drain_alice() {
        assert!(
            !matches!(event, Event::MessageReceived(_)),
            "unexpected {event:?}"
        );
    }

    // §5.1: text that is not UTF-8 makes the packet unparsable: the chat
    // channel closes; §4.3: its id may then be opened again.
    let mut message = field_bytes(1, &[0xFF, 0xFE]);
    message.extend(field_varint(2, 7));
    raw.send_frame(5, &field_bytes(1, &message)).await;
    raw.expect_close_of(5).await;
    assert_eq!(raw.open_and_result(5, ChannelType::Chat).await, opened(5));
    // §9.2: a ChatAcknowledge on the receiving side closes the channel.
    let wrong_way = ChatPacket::Acknowledge(ack(1, true)).encode();
    raw.send_frame(5, &wrong_way).await;
    raw.expect_close_of(5).await;
    // §5.1: a chat Packet with no field it knows closes the channel.
    assert_eq!(raw.open_and_result(7, ChannelType::Chat).await, opened(7));
    raw.send_frame(7, &[0x18, 0x01]).await;
    raw.expect_close_of(7).await;
    // §9: a second inbound chat channel is refused.
    assert_eq!(raw.open_and_result(9, ChannelType::Chat).await, opened(9));
    assert_eq!(
        raw.open_and_result(11, ChannelType::Chat).await,
        rejected(11, CommonError::Generic)
    );
    // §7: no second authentication; §8.3: a contact's request is answered
    // Pending, then Accepted, then closed.
    let mut auth = OpenChannel::new(ChannelId::new(13), ChannelType::AuthHiddenService);
    auth.client_cookie = Some(Bytes::from_static(&[3; 16]));
    raw.control(&ControlMessage::OpenChannel(auth)).await;
    assert_eq!(
        raw.expect_result(13).await,
        rejected(13, CommonError::BadUsage)
    );
    assert_eq!(raw.send_request(15, "", "again?").await, pending(15));
    assert_eq!(response_of(&raw.recv().await), ResponseStatus::Accepted);
    raw.expect_close_of(15).await;
    raw.probe_quiet().await;
    fx.check("chat with invalid fields").await;

    // Alice writes to the contact, which refuses her chat channel
    // (§6.2: opened=false, no close): the message goes back to the queue
    // and out again, in order, on a new channel (§9.2). Nothing is lost.
    let mut first = fx
        .alice
        .client
        .send_message(raw_id, "to raw 1")
        .await
        .unwrap();
    let ControlMessage::OpenChannel(open) = raw.recv_control().await else {
        panic!("expected Alice's chat channel")
    };
    assert_eq!(open.channel_type, ChannelType::Chat);
    assert!(
        !open.channel_id.is_client_parity(),
        "§4.3: the server opens even ids"
    );
    raw.control(&ControlMessage::ChannelResult(rejected(
        open.channel_id.get(),
        CommonError::Generic,
    )))
    .await;
    let ControlMessage::OpenChannel(open) = raw.recv_control().await else {
        panic!("expected Alice's chat channel again")
    };
    assert_eq!(open.channel_type, ChannelType::Chat);
    let channel = open.channel_id.get();
    let mut second = fx
        .alice
        .client
        .send_message(raw_id, "to raw 2")
        .await
        .unwrap();
    raw.control(&ControlMessage::ChannelResult(opened(channel)))
        .await;
    let mut wire_ids = Vec::new();
    for text in ["to raw 1", "to raw 2"] {
        let frame = raw.recv().await;
        assert_eq!(frame.channel.get(), channel);
        let ChatPacket::Message(message) = ChatPacket::decode(frame.payload.clone()).unwrap()
        else {
            panic!("expected a chat message: {frame:?}")
        };
        assert_eq!(message.text, text);
        wire_ids.push(message.message_id.expect("§9.2: always set"));
    }
    // §9.2: an ack for an unknown id is ignored; a refusal fails the one
    // message; a real ack acknowledges the other.
    let ack_frame = |message_id: u32, accepted: bool| {
        ChatPacket::Acknowledge(ChatAcknowledge {
            message_id,
            accepted,
        })
        .encode()
    };
    raw.send_frame(channel, &ack_frame(wire_ids[1].wrapping_add(1000), true))
        .await;
    raw.send_frame(channel, &ack_frame(wire_ids[0], false))
        .await;
    raw.send_frame(channel, &ack_frame(wire_ids[1], true)).await;
    raw.probe_quiet().await;
    assert_eq!(
        tokio::time::timeout(PATIENCE, first.finished())
            .await
            .unwrap(),
        MessageStatus::Failed(ricochet_client::FailureReason::RefusedByPeer)
    );
    assert_eq!(
        tokio::time::timeout(PATIENCE, second.finished())
            .await
            .unwrap(),
        MessageStatus::Acknowledged
    );
    fx.check("a contact refusing Alice's chat").await;

    // Channel-open floods (§6.2, §4.3): 8000 OpenChannel of unknown types,
    // duplicates of the open chat channel, second auth channels, and
    // requests; each answered exactly as a single one, nothing kept.
    let floods = FLOODS.lock().await;
    let before = resident_bytes();
    let mut next_id = 101u16;
    for _ in 0..40 {
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for i in 0..200 {
            let id = next_id;
            next_id = if next_id >= 65_533 { 101 } else { next_id + 2 };
            let (open, answers) = match i % 4 {
                0 => (OpenChannel::new(ChannelId::new(id), unknown_type()), 1),
                1 => (OpenChannel::new(ChannelId::new(id), ChannelType::Chat), 1),
                2 => {
                    let mut open =
                        OpenChannel::new(ChannelId::new(id), ChannelType::AuthHiddenService);
                    open.client_cookie = Some(Bytes::from_static(&[4; 16]));
                    (open, 1)
                }
                _ => {
                    let mut open =
                        OpenChannel::new(ChannelId::new(id), ChannelType::ContactRequest);
                    open.contact_request = Some(Default::default());
                    (open, 3)
                }
            };
            batch.extend(frame_bytes(0, &ControlMessage::OpenChannel(open).encode()));
            expected.push((id, i % 4, answers));
        }
        raw.send_raw(&batch).await;
        for (id, kind, answers) in expected {
            let result = raw.expect_result(id).await;
            let want = match kind {
                0 => rejected(id, CommonError::UnknownType),
                1 => rejected(id, CommonError::Generic),
                2 => rejected(id, CommonError::BadUsage),
                _ => pending(id),
            };
            assert_eq!(result, want);
            if answers == 3 {
                assert_eq!(response_of(&raw.recv().await), ResponseStatus::Accepted);
                raw.expect_close_of(id).await;
            }
        }
    }
    raw.probe_quiet().await;
    // §6.3: 3000 KeepAlive requests at once: answered at most once a second.
    let started = tokio::time::Instant::now();
    let ping = frame_bytes(
        0,
        &ControlMessage::KeepAlive {
            response_requested: true,
        }
        .encode(),
    );
    raw.send_raw(&ping.repeat(3000)).await;
    let answers = raw.probe().await;
    let elapsed = started.elapsed().as_secs() as usize;
    assert!(
        !answers.is_empty() && answers.len() <= elapsed + 1,
        "{} answers in {elapsed} s",
        answers.len()
    );
    for frame in &answers {
        assert_eq!(
            control_of(frame),
            ControlMessage::KeepAlive {
                response_requested: false
            }
        );
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < MEMORY_BOUND,
        "resident memory grew by {grown} bytes"
    );
    drop(floods);
    fx.check("channel-open and keepalive floods").await;

    // Chat flood: 20 000 messages without reading the acks. Every one is
    // stored exactly once and acknowledged exactly once; the connection
    // stays.
    let floods = FLOODS.lock().await;
    let before = resident_bytes();
    const FLOOD: u32 = 20_000;
    let mut bytes = Vec::new();
    for i in 0..FLOOD {
        let payload = chat_message(&format!("flood {i}"), Some(1_000_000 + i), None);
        bytes.extend(frame_bytes(9, &payload));
    }
    raw.send_raw(&bytes).await;
    drop(bytes);
    let mut acked = HashSet::new();
    while acked.len() < FLOOD as usize {
        let frame = raw.recv().await;
        let ChatAcknowledge {
            message_id,
            accepted,
        } = ack_of(&frame, 9);
        assert!(accepted);
        assert!((1_000_000..1_000_000 + FLOOD).contains(&message_id));
        assert!(acked.insert(message_id), "{message_id} acknowledged twice");
    }
    raw.probe_quiet().await;
    let mut told = HashSet::new();
    while told.len() < FLOOD as usize {
        let text = fx.message_from(raw_id).await.text;
        assert!(told.insert(text.clone()), "{text} reported twice");
    }
    let history = fx
        .alice
        .client
        .messages(raw_id, None, 2 * FLOOD as usize)
        .await
        .unwrap();
    let stored: Vec<&str> = history
        .iter()
        .map(|m| m.text.as_str())
        .filter(|t| t.starts_with("flood "))
        .collect();
    let unique: HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(
        (stored.len(), unique.len()),
        (FLOOD as usize, FLOOD as usize)
    );
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < MEMORY_BOUND,
        "resident memory grew by {grown} bytes"
    );
    drop(floods);
    fx.check("chat flood").await;

    // A reconnect storm: twelve more connections of the same contact
    // (§11.4 rule 2: in the same direction, the new one wins). One
    // connection of the contact survives; the others are closed.
    let key = raw.key.clone();
    let mut lanes = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (directory, victim, key) = (fx.directory.clone(), fx.victim(), key.clone());
        lanes.spawn(async move {
            let mut peers = Vec::new();
            while peers.len() < 3 {
                let mut conn = RawPeer::connect_as(&directory, victim, key.clone()).await;
                let _ = conn.try_send_raw(&intro(&[3])).await;
                if conn.read_byte(WAIT).await != Some(3) {
                    // Over the unauthenticated limit for a moment.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let verdict = conn.authenticate().await;
                assert_eq!(verdict.is_known_contact, Some(true));
                peers.push(conn);
            }
            peers
        });
    }
    let mut storm = vec![raw];
    while let Some(lane) = lanes.join_next().await {
        storm.extend(lane.unwrap());
    }
    fx.settle("reconnect storm").await;
    let mut survivors = Vec::new();
    for mut conn in storm {
        if !conn.closed_within(Duration::from_millis(300)).await {
            survivors.push(conn);
        }
    }
    assert_eq!(survivors.len(), 1, "one connection per contact");
    let mut raw = survivors.pop().unwrap();
    raw.probe_quiet().await;
    assert_eq!(raw.open_and_result(9, ChannelType::Chat).await, opened(9));
    raw.send_frame(9, &chat_message("after the storm", Some(7), None))
        .await;
    assert_eq!(ack_of(&raw.recv().await, 9), ack(7, true));
    assert_eq!(fx.message_from(raw_id).await.text, "after the storm");
    fx.check("reconnect storm").await;

    // Rules that kill a contact's connection too (§12.4): a duplicate id,
    // the server's parity, close of channel 0, unparsable control packet,
    // unsolicited FeaturesEnabled. Bob's connection is not touched, and the
    // contact reconnects as known each time.
    let killers: [(&str, Vec<u8>); 5] = [
        (
            "duplicate id",
            frame_bytes(0, &open_channel_raw(9, "im.ricochet.file-transfer")),
        ),
        (
            "server parity",
            frame_bytes(0, &open_channel_raw(20, "im.ricochet.chat")),
        ),
        ("close of channel 0", frame_bytes(0, &[])),
        ("unparsable control", frame_bytes(0, &[0xFF, 0xFF])),
        (
            "unsolicited FeaturesEnabled",
            frame_bytes(0, &ControlMessage::FeaturesEnabled(vec![]).encode()),
        ),
    ];
    let mut raw = Some(raw);
    for (what, bytes) in killers {
        let mut conn = match raw.take() {
            Some(conn) => conn,
            None => {
                let mut conn = RawPeer::connect_as(&fx.directory, fx.victim(), key.clone()).await;
                conn.introduce().await;
                let verdict = conn.authenticate().await;
                assert_eq!(verdict.is_known_contact, Some(true), "{what}");
                assert_eq!(conn.open_and_result(9, ChannelType::Chat).await, opened(9));
                conn
            }
        };
        conn.send_raw(&bytes).await;
        conn.expect_closed(WAIT).await;
        let bob = fx.alice.client.contact(fx.bob.id()).await.unwrap().unwrap();
        assert_eq!(bob.status, ContactStatus::Online, "{what}");
    }
    fx.remove_raw(raw_id, true).await;
    fx.check("connection-killing rules on a contact's connection")
        .await;
}

// =====================================================================
// a known contact abusing file transfer (§10)
// =====================================================================

#[tokio::test]
async fn known_contact_file_abuse() {
    let mut fx = Fixture::new().await;
    let downloads = fx.dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let mut raw = fx.raw_contact().await;
    let raw_id = raw.id();
    let good_hash = sha3(b"hello");
    let header_ack = |file_id: u32, accepted: bool| FileMessage::HeaderAck { file_id, accepted };

    async fn offered(fx: &mut Fixture, name: &str) -> IncomingFile {
        fx.alice_expect("a file offer", |event| match event {
            Event::FileOffered(offer) if offer.name() == name => Some(offer),
            _ => None,
        })
        .await
    }

    async fn finished(fx: &mut Fixture) -> TransferOutcome {
        fx.alice_expect("the end of a transfer", |event| match event {
            Event::FileTransferFinished { outcome, .. } => Some(outcome),
            _ => None,
        })
        .await
    }

    assert_eq!(
        raw.open_and_result(5, ChannelType::FileTransfer).await,
        opened(5)
    );

    // §10.2 step 2: bad names, a hash that is not 64 bytes, an empty file:
    // FileHeaderAck{accepted=false} with the file id, and the user never
    // sees them.
    let too_long = "l".repeat(256);
    let bad: [(u32, &str, &[u8], u64); 14] = [
        (1, "../evil.txt", &good_hash, 5),
        (2, "a/b.txt", &good_hash, 5),
        (3, "a\\b.txt", &good_hash, 5),
        (4, "", &good_hash, 5),
        (5, "..", &good_hash, 5),
        (6, ".", &good_hash, 5),
        (7, "/etc/passwd", &good_hash, 5),
        (8, "x\0y", &good_hash, 5),
        (9, "..hidden", &good_hash, 5),
        (10, "..\\..\\evil", &good_hash, 5),
        (11, "ok.txt", &good_hash[..32], 5),
        (12, "ok.txt", &good_hash, 0),
        // Ours, beyond §10.2: longer than any file system stores, and
        // control characters (a terminal escape).
        (14, &too_long, &good_hash, 5),
        (15, "x\u{1b}[2Jy.txt", &good_hash, 5),
    ];
    for (file_id, name, hash, size) in bad {
        raw.send_frame(5, &file_header(file_id, size, name, hash))
            .await;
        let frame = raw.recv().await;
        assert_eq!(frame.channel.get(), 5);
        assert_eq!(file_of(&frame), header_ack(file_id, false), "{name:?}");
    }
    // §10.3: a chunk for an unknown transfer is ignored.
    let chunk = |file_id: u32, data: &[u8]| {
        FileMessage::Chunk {
            file_id,
            data: Bytes::copy_from_slice(data),
        }
        .encode()
    };
    raw.send_frame(5, &chunk(99, b"nobody asked")).await;
    raw.probe_quiet().await;
    for event in fx.drain_alice() {
        assert!(!matches!(event, Event::FileOffered(_)), "{event:?}");
    }
    // The longest name we take (255 bytes) is offered verbatim; the
    // uploader may cancel it (§10.2 step 6).
    let long = "l".repeat(255);
    raw.send_frame(5, &file_header(13, 5, &long, &good_hash))
        .await;
    assert_eq!(file_of(&raw.recv().await), header_ack(13, true));
    let offer = offered(&mut fx, &long).await;
    assert_eq!(offer.contact(), raw_id);
    let cancel = |file_id: u32| {
        FileMessage::Complete {
            file_id,
            result: TransferResult::Cancelled,
        }
        .encode()
    };
    raw.send_frame(5, &cancel(13)).await;
    assert_eq!(
        finished(&mut fx).await,
        TransferOutcome::Cancelled { by_peer: true }
    );

    // §10.3: a chunk beyond the announced size closes the file channel; the
    // transfer fails and its partial file is removed.
    raw.send_frame(5, &file_header(20, 5, "ok.txt", &good_hash))
        .await;
    assert_eq!(file_of(&raw.recv().await), header_ack(20, true));
    let offer = offered(&mut fx, "ok.txt").await;
    let destination = downloads.join("ok.txt");
    offer.accept(&destination).await.unwrap();
    assert_eq!(
        file_of(&raw.recv().await),
        FileMessage::HeaderResponse {
            file_id: 20,
            response: FileResponse::Accept
        }
    );
    raw.send_frame(5, &chunk(20, b"hel")).await;
    assert_eq!(
        file_of(&raw.recv().await),
        FileMessage::ChunkAck {
            file_id: 20,
            bytes_received: 3
        }
    );
    raw.send_frame(5, &chunk(20, b"lo!!")).await;
    raw.expect_close_of(5).await;
    assert!(matches!(
        finished(&mut fx).await,
        TransferOutcome::Failed(_)
    ));
    assert!(!destination.exists());
    assert!(
        files_under(&downloads).is_empty(),
        "{:?}",
        files_under(&downloads)
    );

    // §10.3: a chunk before the user accepted closes the channel.
    assert_eq!(
        raw.open_and_result(7, ChannelType::FileTransfer).await,
        opened(7)
    );
    raw.send_frame(7, &file_header(21, 5, "early.txt", &good_hash))
        .await;
    assert_eq!(file_of(&raw.recv().await), header_ack(21, true));
    raw.send_frame(7, &chunk(21, b"hello")).await;
    raw.expect_close_of(7).await;
    offered(&mut fx, "early.txt").await;
    assert!(matches!(
        finished(&mut fx).await,
        TransferOutcome::Failed(_)
    ));
    // §10.3: a duplicate file id closes the channel.
    assert_eq!(
        raw.open_and_result(9, ChannelType::FileTransfer).await,
        opened(9)
    );
    raw.send_frame(9, &file_header(22, 5, "dup.txt", &good_hash))
        .await;
    assert_eq!(file_of(&raw.recv().await), header_ack(22, true));
    raw.send_frame(9, &file_header(22, 5, "dup.txt", &good_hash))
        .await;
    raw.expect_close_of(9).await;
    // §10.1: a chunk over 64512 bytes closes the channel.
    assert_eq!(
        raw.open_and_result(11, ChannelType::FileTransfer).await,
        opened(11)
    );
    raw.send_frame(11, &chunk(23, &vec![0; 64_513])).await;
    raw.expect_close_of(11).await;
    // §10.3: an uploader's message sent by the uploader closes the channel.
    assert_eq!(
        raw.open_and_result(13, ChannelType::FileTransfer).await,
        opened(13)
    );
    let wrong_way = FileMessage::ChunkAck {
        file_id: 1,
        bytes_received: 1,
    };
    raw.send_frame(13, &wrong_way.encode()).await;
    raw.expect_close_of(13).await;
    // §10: a second inbound file channel is refused.
    assert_eq!(
        raw.open_and_result(15, ChannelType::FileTransfer).await,
        opened(15)
    );
    assert_eq!(
        raw.open_and_result(17, ChannelType::FileTransfer).await,
        rejected(17, CommonError::Generic)
    );
    fx.check("file-channel abuse").await;

    // More offers than max_incoming_transfers (4): the fifth is refused with
    // the file id set, the channel stays; a cancelled one frees its slot.
    for file_id in 30..34 {
        raw.send_frame(
            15,
            &file_header(file_id, 5, &format!("f{file_id}"), &good_hash),
        )
        .await;
        assert_eq!(file_of(&raw.recv().await), header_ack(file_id, true));
    }
    raw.send_frame(15, &file_header(34, 5, "f34", &good_hash))
        .await;
    assert_eq!(file_of(&raw.recv().await), header_ack(34, false));
    raw.send_frame(15, &cancel(30)).await;
    raw.send_frame(15, &file_header(35, 5, "f35", &good_hash))
        .await;
    assert_eq!(file_of(&raw.recv().await), header_ack(35, true));
    let mut offers = 0;
    let mut cancelled = 0;
    raw.probe_quiet().await;
    while offers < 5 || cancelled < 1 {
        match fx
            .alice_expect("offers and a cancel", |event| match event {
                Event::FileOffered(offer) => Some(Some(offer.name().to_owned())),
                Event::FileTransferFinished { .. } => Some(None),
                _ => None,
            })
            .await
        {
            Some(name) => {
                assert_ne!(name, "f34");
                offers += 1;
            }
            None => cancelled += 1,
        }
    }
    for file_id in 31..36 {
        raw.send_frame(15, &cancel(file_id)).await;
    }
    raw.probe_quiet().await;

    // The channel still works: a good file arrives whole, and a bad hash
    // fails (the sender is told Failure, §10.2 step 5, RR-rs behaviour).
    for (file_id, name, data, ok) in [
        (40u32, "good.txt", &b"hello"[..], true),
        (41, "bad.txt", &b"HELLO"[..], false),
    ] {
        raw.send_frame(15, &file_header(file_id, 5, name, &good_hash))
            .await;
        assert_eq!(file_of(&raw.recv().await), header_ack(file_id, true));
        let offer = offered(&mut fx, name).await;
        offer.accept(downloads.join(name)).await.unwrap();
        assert_eq!(
            file_of(&raw.recv().await),
            FileMessage::HeaderResponse {
                file_id,
                response: FileResponse::Accept
            }
        );
        raw.send_frame(15, &chunk(file_id, data)).await;
        assert_eq!(
            file_of(&raw.recv().await),
            FileMessage::ChunkAck {
                file_id,
                bytes_received: 5
            }
        );
        let result = if ok {
            TransferResult::Success
        } else {
            TransferResult::Failure
        };
        assert_eq!(
            file_of(&raw.recv().await),
            FileMessage::Complete { file_id, result }
        );
        let outcome = loop {
            let outcome = finished(&mut fx).await;
            if !matches!(outcome, TransferOutcome::Cancelled { .. }) {
                break outcome;
            }
        };
        if ok {
            assert_eq!(
                outcome,
                TransferOutcome::Completed {
                    path: downloads.join(name)
                }
            );
        } else {
            assert_eq!(
                outcome,
                TransferOutcome::Failed(ricochet_client::TransferFailure::HashMismatch)
            );
        }
    }
    assert_eq!(std::fs::read(downloads.join("good.txt")).unwrap(), b"hello");

    // The uploader claims Success before sending everything (§10.2 step
    // 6: the transfer is over): it fails on our side, the partial file is
    // removed. A Complete for an unknown id is ignored (§10.3).
    raw.send_frame(15, &file_header(42, 5, "early-success.txt", &good_hash))
        .await;
    assert_eq!(file_of(&raw.recv().await), header_ack(42, true));
    offered(&mut fx, "early-success.txt")
        .await
        .accept(downloads.join("early-success.txt"))
        .await
        .unwrap();
    assert!(matches!(
        file_of(&raw.recv().await),
        FileMessage::HeaderResponse { file_id: 42, .. }
    ));
    raw.send_frame(15, &chunk(42, b"hel")).await;
    assert!(matches!(
        file_of(&raw.recv().await),
        FileMessage::ChunkAck { file_id: 42, .. }
    ));
    let success = |file_id: u32| {
        FileMessage::Complete {
            file_id,
            result: TransferResult::Success,
        }
        .encode()
    };
    raw.send_frame(15, &success(42)).await;
    raw.send_frame(15, &success(4242)).await;
    raw.probe_quiet().await;
    assert!(matches!(
        finished(&mut fx).await,
        TransferOutcome::Failed(_)
    ));
    assert!(!downloads.join("early-success.txt").exists());
    assert!(!downloads.join("early-success.txt.part").exists());

    // A hostile receiver: Alice uploads to the contact, which acknowledges
    // bytes she did not send (§10.2 step 4): her file channel closes and
    // the upload fails.
    let upload = fx.dir.path().join("upload.bin");
    std::fs::write(&upload, vec![7; 1000]).unwrap();
    let transfer = fx.alice.client.send_file(raw_id, &upload).await.unwrap();
    let ControlMessage::OpenChannel(open) = raw.recv_control().await else {
        panic!("expected Alice's file channel")
    };
    assert_eq!(open.channel_type, ChannelType::FileTransfer);
    let channel = open.channel_id.get();
    raw.control(&ControlMessage::ChannelResult(opened(channel)))
        .await;
    let FileMessage::Header(header) = file_of(&raw.recv().await) else {
        panic!("expected a FileHeader")
    };
    assert_eq!(
        (header.name.as_str(), header.file_size),
        ("upload.bin", 1000)
    );
    let file_id = header.file_id;
    raw.send_frame(channel, &header_ack(file_id, true).encode())
        .await;
    let accept = FileMessage::HeaderResponse {
        file_id,
        response: FileResponse::Accept,
    };
    raw.send_frame(channel, &accept.encode()).await;
    let FileMessage::Chunk { data, .. } = file_of(&raw.recv().await) else {
        panic!("expected a FileChunk")
    };
    assert_eq!(data.len(), 1000);
    let lie = FileMessage::ChunkAck {
        file_id,
        bytes_received: 999_999,
    };
    raw.send_frame(channel, &lie.encode()).await;
    raw.expect_close_of(channel).await;
    let outcome = fx
        .alice_expect("the upload's end", |event| match event {
            Event::FileTransferFinished {
                transfer: t,
                outcome,
                ..
            } if t == transfer => Some(outcome),
            _ => None,
        })
        .await;
    assert!(matches!(outcome, TransferOutcome::Failed(_)), "{outcome:?}");
    raw.probe_quiet().await;

    // Nothing was written outside the download directory (or the two
    // profiles), and nothing but the good file inside it.
    let root = fx.dir.path();
    for file in files_under(root) {
        let allowed = file.starts_with(root.join("alice"))
            || file.starts_with(root.join("bob"))
            || file == downloads.join("good.txt")
            || file == upload;
        assert!(allowed, "unexpected file {}", file.display());
    }
    fx.remove_raw(raw_id, true).await;
    raw.expect_closed(WAIT).await;
    fx.check("file-transfer abuse").await;
}

// =====================================================================
// Limits::max_queued_output: a peer that does not read
// =====================================================================

/// A peer that sends what demands answers (here data on a channel that is
/// not open, each 5-byte frame earning a 4-byte close, §4.2) and never
/// reads them: once more than `max_queued_output` bytes wait for it, Alice
/// stops reading from it, so its writes stall instead of her memory
/// growing; when it reads again, she carries on. Bob chats throughout.
#[tokio::test]
async fn a_peer_that_does_not_read_stalls_instead_of_growing_our_output() {
    const CAP: usize = 64 * 1024;
    // Far beyond the cap plus every socket buffer on the way.
    const WITHOUT_A_CAP: usize = 48 * 1024 * 1024;
    let mut limits = small_limits();
    limits.max_queued_output = CAP;
    let mut fx = Fixture::with(limits, |builder| builder).await;
    let floods = FLOODS.lock().await;
    let before = resident_bytes();
    let addr = fx.directory.get(fx.victim().service_id()).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // Small buffers, so that little waits in the kernel on our side.
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut raw = RawPeer::accepted(stream, *fx.victim().service_id(), v3_key());
    raw.introduce().await;
    // A contact, so that no authentication deadline ends the connection.
    fx.befriend_raw(&mut raw).await;
    let raw_id = raw.id();

    let chunk = frame_bytes(7, &[0]).repeat(16 * 1024);
    let mut sent = 0usize;
    let mut offset = 0usize;
    while let Some(n) = raw
        .write_some(&chunk[offset..], Duration::from_secs(2))
        .await
    {
        sent += n;
        offset = (offset + n) % chunk.len();
        assert!(
            sent < WITHOUT_A_CAP,
            "{sent} bytes taken without reading a single answer"
        );
    }
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "stalled after {} KiB sent without reading; resident memory grew {} KiB",
        sent / 1024,
        grown / 1024
    );
    assert!(grown < MEMORY_BOUND, "memory grew {grown} bytes");
    fx.check("while a peer does not read").await;

    // Reading again: every answer arrives, one close per whole frame, and
    // Alice reads the rest of what was written.
    let mut closes = 0usize;
    let whole_frames = sent / 5;
    while closes < whole_frames {
        match raw.recv_within(PATIENCE).await {
            common::raw::Recv::Frame(frame) => {
                assert!(frame.is_close() && frame.channel.get() == 7, "{frame:?}");
                closes += 1;
            }
            other => panic!("after {closes} of {whole_frames} closes: {other:?}"),
        }
    }
    // Finish the last frame; it is answered too, and nothing more comes.
    if !offset.is_multiple_of(5) {
        let rest = 5 - offset % 5;
        raw.send_raw(&chunk[offset..offset + rest]).await;
        assert!(raw.recv().await.is_close());
    }
    raw.probe_quiet().await;
    drop(floods);
    fx.remove_raw(raw_id, true).await;
    raw.expect_closed(WAIT).await;
    fx.check("after the peer read again").await;
}

// =====================================================================
// §9.2 re-queued messages must go out again on the live connection
// =====================================================================

/// Waits for Alice to open a chat channel (she must, within [`WAIT`]),
/// accepts it, and reads the first message on it.
async fn accept_chat_and_read(
    raw: &mut RawPeer,
) -> (u16, ricochet_proto::message::chat::ChatMessage) {
    let next = match raw.recv_within(WAIT).await {
        common::raw::Recv::Frame(frame) => control_of(&frame),
        other => panic!("the unacknowledged message was not sent again: {other:?}"),
    };
    let ControlMessage::OpenChannel(open) = next else {
        panic!("expected a new chat channel, got {next:?}")
    };
    let channel = open.channel_id.get();
    raw.control(&ControlMessage::ChannelResult(opened(channel)))
        .await;
    let frame = raw.recv().await;
    let ChatPacket::Message(message) = ChatPacket::decode(frame.payload.clone()).unwrap() else {
        panic!("{frame:?}")
    };
    (channel, message)
}

/// §9.2: "An unacked message may be resent with the same id on a new
/// channel or connection"; Ricochet 1.x re-queues the unacknowledged
/// messages when its outbound chat channel closes, and sends them again
/// (failing them after 2 attempts). Here the contact first refuses
/// Alice's chat channel, then closes it with a message unacknowledged;
/// each time the message must come again on a new channel of the same
/// connection, with its id, without Alice having to send anything else.
#[tokio::test]
async fn requeued_messages_are_sent_again_on_the_live_connection() {
    let mut fx = Fixture::new().await;
    let mut raw = fx.raw_contact().await;
    let raw_id = raw.id();

    let mut handle = fx
        .alice
        .client
        .send_message(raw_id, "hello?")
        .await
        .unwrap();
    // Refused once (opened=false, §6.2).
    let ControlMessage::OpenChannel(open) = raw.recv_control().await else {
        panic!("expected Alice's chat channel")
    };
    raw.control(&ControlMessage::ChannelResult(rejected(
        open.channel_id.get(),
        CommonError::Generic,
    )))
    .await;
    // Opened the next time; the message arrives, then the channel is closed
    // without an ack (§4.2).
    let (channel, first) = accept_chat_and_read(&mut raw).await;
    assert_eq!(first.text, "hello?");
    // On the wire and unacknowledged: sent, in the handle and the history.
    assert_eq!(handle.status(), MessageStatus::Sent);
    let history = fx.alice.client.messages(raw_id, None, 10).await.unwrap();
    assert_eq!(history.last().unwrap().status, MessageStatus::Sent);
    raw.close_channel(channel).await;
    raw.expect_close_of(channel).await;
    // Sent again, with the same id, on another channel.
    let (channel, again) = accept_chat_and_read(&mut raw).await;
    assert_eq!(
        (again.text.as_str(), again.message_id),
        ("hello?", first.message_id)
    );
    let ack = ChatPacket::Acknowledge(ChatAcknowledge {
        message_id: again.message_id.unwrap(),
        accepted: true,
    });
    raw.send_frame(channel, &ack.encode()).await;
    assert_eq!(
        tokio::time::timeout(PATIENCE, handle.finished())
            .await
            .unwrap(),
        MessageStatus::Acknowledged
    );

    // A contact that keeps refusing cannot make a loop: after three
    // closures on one connection (two above), the next closes the
    // connection; the message stays queued for the next one.
    let stuck = fx
        .alice
        .client
        .send_message(raw_id, "still there?")
        .await
        .unwrap();
    let frame = raw.recv().await;
    assert_eq!(frame.channel.get(), channel);
    raw.close_channel(channel).await;
    raw.expect_close_of(channel).await;
    let mut refusals = 0;
    loop {
        match raw.recv_within(WAIT).await {
            common::raw::Recv::Frame(frame) => {
                let ControlMessage::OpenChannel(open) = control_of(&frame) else {
                    panic!("expected a chat channel: {frame:?}")
                };
                refusals += 1;
                raw.control(&ControlMessage::ChannelResult(rejected(
                    open.channel_id.get(),
                    CommonError::Generic,
                )))
                .await;
            }
            common::raw::Recv::Closed => break,
            other => panic!("expected refusals, then the end: {other:?}"),
        }
    }
    assert_eq!(refusals, 1, "one closure left, then the connection goes");
    assert_eq!(stuck.status(), MessageStatus::Queued);
    fx.remove_raw(raw_id, true).await;
    fx.check("re-queued messages").await;
}

// =====================================================================
// Alice dialling a hostile server (§3.3, §7, §11.6)
// =====================================================================

#[tokio::test]
async fn hostile_server_when_alice_dials() {
    let mut fx = Fixture::with(deadline_limits(4), |builder| builder).await;
    let key = v3_key();
    let server_id = key.ricochet_id();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    fx.directory
        .insert(*server_id.service_id(), listener.local_addr().unwrap());
    fx.alice
        .client
        .send_contact_request(server_id, "server", "hi")
        .await
        .unwrap();
    let alice_sid = *fx.alice.id().service_id();
    let accept = async || {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("Alice dials again")
            .unwrap();
        let mut server = RawPeer::accepted(stream, alice_sid, key.clone());
        // §12.1 item 1: exactly one version, ours.
        assert_eq!(server.read_raw(4).await, [0x49, 0x4D, 0x01, 0x03]);
        server
    };

    // §3.3, §12.4: FF, or a version we did not offer: the client aborts.
    for reply in [0xFF, 0x01] {
        let mut server = accept().await;
        server.send_raw(&[reply]).await;
        server.expect_closed(WAIT).await;
    }
    // §4.1: a frame size < 4 from the server: abort (Alice may have opened
    // her auth channel already, §12.1 item 2).
    let mut server = accept().await;
    server.send_raw(&[0x03, 0x00, 0x02, 0x00, 0x00]).await;
    for frame in server.frames_until_closed(WAIT).await {
        assert_eq!(frame.channel, ChannelId::CONTROL, "{frame:?}");
    }
    // §7: a server cookie that is not 16 bytes: the client closes the auth
    // channel, and the connection dies at the deadline.
    let mut server = accept().await;
    server.send_raw(&[0x03]).await;
    let ControlMessage::OpenChannel(open) = server.recv_control().await else {
        panic!("expected the auth channel")
    };
    assert_eq!(
        (
            open.channel_id.get(),
            open.channel_type,
            open.client_cookie.map(|c| c.len())
        ),
        (1, ChannelType::AuthHiddenService, Some(16))
    );
    let mut bad_cookie = opened(1);
    bad_cookie.server_cookie = Some(Bytes::from_static(&[1, 2, 3]));
    server
        .control(&ControlMessage::ChannelResult(bad_cookie))
        .await;
    server.expect_close_of(1).await;
    dies_at_deadline(server).await;
    // §7: Result{accepted=false}: the client closes the connection. Her
    // proof, checked here, is valid and names her.
    let mut server = accept().await;
    server.send_raw(&[0x03]).await;
    let ControlMessage::OpenChannel(open) = server.recv_control().await else {
        panic!("expected the auth channel")
    };
    let client: [u8; 16] = open.client_cookie.unwrap()[..].try_into().unwrap();
    let cookies = ricochet_identity::AuthCookies {
        client,
        server: [9; 16],
    };
    let mut result = opened(1);
    result.server_cookie = Some(Bytes::from_static(&[9; 16]));
    server.control(&ControlMessage::ChannelResult(result)).await;
    let frame = server.recv().await;
    let ricochet_proto::message::auth::AuthMessage::Proof(proof) = common::raw::auth_of(&frame)
    else {
        panic!("expected a proof: {frame:?}")
    };
    assert_eq!(
        proof.verify(&cookies, server_id.service_id()).unwrap(),
        alice_sid
    );
    let refusal = ricochet_proto::message::auth::AuthMessage::Result(AuthResult {
        accepted: false,
        is_known_contact: None,
    });
    server.send_frame(1, &refusal.encode()).await;
    for frame in server.frames_until_closed(WAIT).await {
        assert_eq!(frame, Frame::close(ChannelId::new(1)));
    }
    // §11.6: five protocol errors in a row: no more dialling (the retry
    // delay is 200 ms here).
    assert!(
        tokio::time::timeout(Duration::from_secs(2), listener.accept())
            .await
            .is_err(),
        "Alice kept dialling"
    );
    assert_eq!(
        fx.alice
            .client
            .contact(server_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ContactStatus::RequestPending
    );
    fx.alice.client.remove_contact(server_id).await.unwrap();
    fx.check("a hostile server").await;
}
