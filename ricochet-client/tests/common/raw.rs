//! A scripted raw peer for the hostile tests: one TCP connection to a
//! running client, driven frame by frame with the public message types of
//! `ricochet-proto`, able to break every rule on purpose (spec §3–§10).
//!
//! Reads always have a deadline: a reply that does not come is a failure,
//! never a hang.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ricochet_client::transport::tcp::Directory;
use ricochet_client::{Event, RicochetId};
use ricochet_identity::{AuthCookies, AuthProof, Generation, IdentityKey, ServiceId};
use ricochet_proto::message::auth::{AuthMessage, AuthResult};
use ricochet_proto::message::chat::{ChatAcknowledge, ChatMessage, ChatPacket};
use ricochet_proto::message::contact_request::{ContactRequest, ResponseStatus};
use ricochet_proto::message::control::{ChannelResult, ControlMessage, OpenChannel};
use ricochet_proto::message::file::FileMessage;
use ricochet_proto::{ChannelId, ChannelType, Frame, FrameDecoder, Introduction};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Peer;

/// How long any one expected reply of the victim may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// What one read brought.
#[derive(Debug)]
pub enum Recv {
    /// A whole frame.
    Frame(Frame),
    /// The victim closed the connection (EOF or reset).
    Closed,
    /// Nothing within the time given.
    Silent,
}

/// A hostile (or merely scripted) peer on one TCP connection.
pub struct RawPeer {
    /// Our identity.
    pub key: Arc<IdentityKey>,
    /// The client under attack.
    pub victim: ServiceId,
    stream: TcpStream,
    input: BytesMut,
    decoder: FrameDecoder,
    closed: bool,
    /// The cookies of our last auth channel.
    pub cookies: Option<AuthCookies>,
    /// The last proof we sent.
    pub last_proof: Option<AuthProof>,
    /// When the TCP connection was established (the victim's deadlines
    /// start a little later).
    pub connected_at: tokio::time::Instant,
}

impl std::fmt::Debug for RawPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPeer")
            .field("id", &self.key.service_id())
            .field("victim", &self.victim)
            .finish_non_exhaustive()
    }
}

/// A fresh v3 identity.
pub fn v3_key() -> Arc<IdentityKey> {
    Arc::new(IdentityKey::generate(Generation::V3).expect("a v3 key"))
}

/// Distinct 16-byte cookies (they need not be secret here).
pub fn cookie() -> [u8; 16] {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut cookie = [0xC0; 16];
    cookie[..8].copy_from_slice(&n.to_be_bytes());
    cookie
}

/// The bytes of a frame, built by hand (so that any size can be claimed).
pub fn frame_bytes(channel: u16, payload: &[u8]) -> Vec<u8> {
    let size = u16::try_from(payload.len() + 4).expect("payload fits in a frame");
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The control message in `frame`, which must be on channel 0.
pub fn control_of(frame: &Frame) -> ControlMessage {
    assert_eq!(
        frame.channel,
        ChannelId::CONTROL,
        "not a control frame: {frame:?}"
    );
    ControlMessage::decode(frame.payload.clone())
        .unwrap_or_else(|e| panic!("the victim sent a bad control packet ({e}): {frame:?}"))
}

/// The chat packet in `frame`.
pub fn chat_of(frame: &Frame) -> ChatPacket {
    ChatPacket::decode(frame.payload.clone())
        .unwrap_or_else(|e| panic!("the victim sent a bad chat packet ({e}): {frame:?}"))
}

/// The file packet in `frame`.
pub fn file_of(frame: &Frame) -> FileMessage {
    FileMessage::decode(frame.payload.clone())
        .unwrap_or_else(|e| panic!("the victim sent a bad file packet ({e}): {frame:?}"))
}

/// The auth packet in `frame` (protocol 3).
pub fn auth_of(frame: &Frame) -> AuthMessage {
    AuthMessage::decode(frame.payload.clone(), Generation::V3)
        .unwrap_or_else(|e| panic!("the victim sent a bad auth packet ({e}): {frame:?}"))
}

/// The bare contact-request `Response` in `frame` (§5.1: not wrapped).
pub fn response_of(frame: &Frame) -> ResponseStatus {
    ResponseStatus::decode(frame.payload.clone())
        .unwrap_or_else(|e| panic!("the victim sent a bad Response ({e}): {frame:?}"))
}

/// A chat message payload.
pub fn chat_message(text: &str, message_id: Option<u32>, time_delta: Option<i64>) -> Bytes {
    ChatPacket::Message(ChatMessage {
        text: text.to_owned(),
        message_id,
        time_delta,
    })
    .encode()
}

/// The ack `frame` must be, on `channel`.
pub fn ack_of(frame: &Frame, channel: u16) -> ChatAcknowledge {
    assert_eq!(
        frame.channel.get(),
        channel,
        "not on channel {channel}: {frame:?}"
    );
    match chat_of(frame) {
        ChatPacket::Acknowledge(ack) => ack,
        other => panic!("expected a ChatAcknowledge, got {other:?}"),
    }
}

impl RawPeer {
    /// Connects to `addr` as `key`; `victim` is the client listening there.
    pub async fn connect_to(addr: SocketAddr, victim: ServiceId, key: Arc<IdentityKey>) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the victim");
        Self::accepted(stream, victim, key)
    }

    /// A peer on an established connection: the server side of one the
    /// victim dialled to us (`key` being the identity it dialled), or one
    /// we set up ourselves.
    pub fn accepted(stream: TcpStream, victim: ServiceId, key: Arc<IdentityKey>) -> Self {
        stream.set_nodelay(true).expect("nodelay");
        Self {
            connected_at: tokio::time::Instant::now(),
            key,
            victim,
            stream,
            input: BytesMut::new(),
            decoder: FrameDecoder::new(),
            closed: false,
            cookies: None,
            last_proof: None,
        }
    }

    /// Connects to `victim` (found in `directory`) as `key`.
    pub async fn connect_as(
        directory: &Directory,
        victim: RicochetId,
        key: Arc<IdentityKey>,
    ) -> Self {
        let addr = directory
            .get(victim.service_id())
            .expect("the victim is in the directory");
        Self::connect_to(addr, *victim.service_id(), key).await
    }

    /// Connects to `victim` with a fresh v3 identity.
    pub async fn connect(directory: &Directory, victim: RicochetId) -> Self {
        Self::connect_as(directory, victim, v3_key()).await
    }

    /// Connects with a fresh v3 identity and introduces itself (§3).
    pub async fn introduced(directory: &Directory, victim: RicochetId) -> Self {
        let mut peer = Self::connect(directory, victim).await;
        peer.introduce().await;
        peer
    }

    /// Our id.
    pub fn id(&self) -> RicochetId {
        self.key.ricochet_id()
    }

    // ---- writing ----

    /// One write of up to `bytes.len()` bytes, waiting at most `timeout`
    /// for the victim to take any: how many it took, or `None` when it took
    /// none in time. Unlike a timed-out `write_all`, never leaves half a
    /// frame unaccounted for.
    pub async fn write_some(&mut self, bytes: &[u8], timeout: Duration) -> Option<usize> {
        match tokio::time::timeout(timeout, self.stream.write(bytes)).await {
            Ok(Ok(0)) | Ok(Err(_)) => panic!("the victim hung up"),
            Ok(Ok(n)) => Some(n),
            Err(_) => None,
        }
    }

    /// Writes bytes as they are; an error means the victim hung up.
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Writes bytes as they are; the connection must be up.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .await
            .unwrap_or_else(|e| panic!("writing to the victim failed: {e}"));
    }

    /// Sends one frame; the connection must be up.
    pub async fn send_frame(&mut self, channel: u16, payload: &[u8]) {
        self.send_raw(&frame_bytes(channel, payload)).await;
    }

    /// Sends one frame, if the victim still listens.
    pub async fn try_send_frame(&mut self, channel: u16, payload: &[u8]) -> std::io::Result<()> {
        self.try_send_raw(&frame_bytes(channel, payload)).await
    }

    /// Sends a close (empty frame) for `channel` (§4.1).
    pub async fn close_channel(&mut self, channel: u16) {
        self.send_frame(channel, &[]).await;
    }

    /// Sends a control message.
    pub async fn control(&mut self, message: &ControlMessage) {
        self.send_frame(0, &message.encode()).await;
    }

    /// Sends `OpenChannel{id, channel_type}` with no extension.
    pub async fn open(&mut self, id: u16, channel_type: ChannelType) {
        self.control(&ControlMessage::OpenChannel(OpenChannel::new(
            ChannelId::new(id),
            channel_type,
        )))
        .await;
    }

    /// Sends `OpenChannel{id, channel_type}` and returns the answer.
    pub async fn open_and_result(&mut self, id: u16, channel_type: ChannelType) -> ChannelResult {
        self.open(id, channel_type).await;
        self.expect_result(id).await
    }

    // ---- reading ----

    /// Reads more bytes; false once the victim hung up.
    async fn fill(&mut self, until: tokio::time::Instant) -> Option<bool> {
        if self.closed {
            return Some(false);
        }
        match tokio::time::timeout_at(until, self.stream.read_buf(&mut self.input)).await {
            Err(_) => None,
            Ok(Ok(0) | Err(_)) => {
                self.closed = true;
                Some(false)
            }
            Ok(Ok(_)) => Some(true),
        }
    }

    /// The next byte before the packet layer (the version choice, §3.1);
    /// `None` if the victim hung up first.
    pub async fn read_byte(&mut self, timeout: Duration) -> Option<u8> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if !self.input.is_empty() {
                let byte = self.input.split_to(1);
                return Some(byte[0]);
            }
            match self.fill(until).await {
                Some(true) => {}
                Some(false) => return None,
                None => panic!("no byte from the victim within {timeout:?}"),
            }
        }
    }

    /// The next `n` bytes before the packet layer (an introduction).
    pub async fn read_raw(&mut self, n: usize) -> Vec<u8> {
        let until = tokio::time::Instant::now() + WAIT;
        while self.input.len() < n {
            match self.fill(until).await {
                Some(true) => {}
                Some(false) => panic!("the victim hung up after {:02x?}", &self.input[..]),
                None => panic!("no {n} bytes from the victim within {WAIT:?}"),
            }
        }
        self.input.split_to(n).to_vec()
    }

    /// Sends our introduction offering our generation's version only
    /// (§12.1 item 1) and checks the victim chose it.
    pub async fn introduce(&mut self) {
        let version = self.key.generation().protocol_version();
        self.send_raw(&Introduction::offering(version).encode())
            .await;
        assert_eq!(self.read_byte(WAIT).await, Some(version), "version choice");
    }

    /// The next frame, whether the victim hung up, or silence.
    pub async fn recv_within(&mut self, timeout: Duration) -> Recv {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(frame)) => return Recv::Frame(frame),
                Ok(None) => {}
                Err(e) => panic!("the victim sent a corrupt frame: {e}"),
            }
            match self.fill(until).await {
                Some(true) => {}
                Some(false) => return Recv::Closed,
                None => return Recv::Silent,
            }
        }
    }

    /// The next frame; the victim must send one.
    pub async fn recv(&mut self) -> Frame {
        match self.recv_within(WAIT).await {
            Recv::Frame(frame) => frame,
            other => panic!("expected a frame from the victim, got {other:?}"),
        }
    }

    /// The next control message.
    pub async fn recv_control(&mut self) -> ControlMessage {
        let frame = self.recv().await;
        control_of(&frame)
    }

    /// The next frame must be `ChannelResult` for `channel`.
    pub async fn expect_result(&mut self, channel: u16) -> ChannelResult {
        match self.recv_control().await {
            ControlMessage::ChannelResult(result) if result.channel_id.get() == channel => result,
            other => panic!("expected the ChannelResult of channel {channel}, got {other:?}"),
        }
    }

    /// The next frame must be a close (empty frame) of `channel`.
    pub async fn expect_close_of(&mut self, channel: u16) {
        let frame = self.recv().await;
        assert!(
            frame.is_close() && frame.channel.get() == channel,
            "expected the close of channel {channel}, got {frame:?}"
        );
    }

    /// The victim closes the connection without sending anything more
    /// (within `timeout`; EOF or reset).
    pub async fn expect_closed(&mut self, timeout: Duration) {
        match self.recv_within(timeout).await {
            Recv::Closed => assert!(
                self.input.is_empty(),
                "the victim sent {:02x?} before closing",
                &self.input[..]
            ),
            other => panic!("expected the victim to close the connection, got {other:?}"),
        }
    }

    /// Every frame the victim sends until it closes the connection.
    pub async fn frames_until_closed(&mut self, timeout: Duration) -> Vec<Frame> {
        let until = tokio::time::Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Recv::Frame(frame) => frames.push(frame),
                Recv::Closed => return frames,
                Recv::Silent => panic!("the victim did not close within {timeout:?}: {frames:?}"),
            }
        }
    }

    /// Whether the victim has closed the connection (now or within
    /// `timeout`), failing on any frame.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        match self.recv_within(timeout).await {
            Recv::Closed => true,
            Recv::Silent => false,
            Recv::Frame(frame) => panic!("unexpected frame {frame:?}"),
        }
    }

    /// Nothing arrives for `duration`, and the connection stays up.
    pub async fn expect_silence(&mut self, duration: Duration) {
        match self.recv_within(duration).await {
            Recv::Silent => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// Sends `EnableFeatures{}` and returns every frame received before
    /// its answer, `FeaturesEnabled{}` (§6.4). The victim handles input in
    /// order, so the answer proves the connection is up and everything sent
    /// before was processed.
    pub async fn probe(&mut self) -> Vec<Frame> {
        self.control(&ControlMessage::EnableFeatures(vec!["probe".to_owned()]))
            .await;
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame.channel == ChannelId::CONTROL
                && control_of(&frame) == ControlMessage::FeaturesEnabled(Vec::new())
            {
                return before;
            }
            before.push(frame);
        }
    }

    /// [`Self::probe`], and nothing may have come before the answer.
    pub async fn probe_quiet(&mut self) {
        let before = self.probe().await;
        assert!(before.is_empty(), "unexpected frames: {before:?}");
    }

    // ---- authentication (§7) ----

    /// Opens the auth channel `channel` with `client_cookie`; returns the
    /// `ChannelResult` (opened with a 16-byte server cookie, which is kept).
    pub async fn open_auth(&mut self, channel: u16, client_cookie: [u8; 16]) -> ChannelResult {
        let mut open = OpenChannel::new(ChannelId::new(channel), ChannelType::AuthHiddenService);
        open.client_cookie = Some(Bytes::copy_from_slice(&client_cookie));
        self.control(&ControlMessage::OpenChannel(open)).await;
        let result = self.expect_result(channel).await;
        assert!(result.opened, "auth channel refused: {result:?}");
        let server: [u8; 16] = result
            .server_cookie
            .as_deref()
            .and_then(|c| c.try_into().ok())
            .unwrap_or_else(|| panic!("no 16-byte server cookie: {result:?}"));
        self.cookies = Some(AuthCookies {
            client: client_cookie,
            server,
        });
        result
    }

    /// The correct proof for the current cookies (§7.1 / §7.2).
    pub fn proof(&self) -> AuthProof {
        let cookies = self.cookies.expect("an auth channel is open");
        self.key
            .auth_proof(&cookies, &self.victim)
            .expect("a proof of our generation")
    }

    /// Sends `proof` on `channel`.
    pub async fn send_proof(&mut self, channel: u16, proof: &AuthProof) {
        self.last_proof = Some(proof.clone());
        self.send_frame(channel, &AuthMessage::Proof(proof.clone()).encode())
            .await;
    }

    /// The server's verdict: `Result` on `channel`, then its close (§7:
    /// the server closes the channel in every case), which we echo.
    pub async fn expect_verdict(&mut self, channel: u16) -> AuthResult {
        let frame = self.recv().await;
        assert_eq!(
            frame.channel.get(),
            channel,
            "expected the auth Result: {frame:?}"
        );
        let AuthMessage::Result(result) = auth_of(&frame) else {
            panic!("expected an auth Result, got {frame:?}")
        };
        self.expect_close_of(channel).await;
        // The echo (§4.2); the victim may have hung up already.
        let _ = self.try_send_frame(channel, &[]).await;
        result
    }

    /// Authenticates correctly on channel 1 and returns the verdict.
    pub async fn authenticate(&mut self) -> AuthResult {
        self.open_auth(1, cookie()).await;
        let proof = self.proof();
        self.send_proof(1, &proof).await;
        self.expect_verdict(1).await
    }

    /// Server side of a connection the victim dialled: reads its
    /// introduction, chooses protocol 3, answers its auth channel, checks
    /// its proof and says whether it is a `known` contact; then closes the
    /// auth channel (§7) and returns what comes next from the victim
    /// (skipping the echo of that close).
    pub async fn serve_auth(&mut self, known: bool) -> Recv {
        assert_eq!(self.read_raw(4).await, [0x49, 0x4D, 0x01, 0x03], "intro");
        self.send_raw(&[0x03]).await;
        let ControlMessage::OpenChannel(open) = self.recv_control().await else {
            panic!("expected the auth channel")
        };
        let channel = open.channel_id.get();
        let client: [u8; 16] = open.client_cookie.as_deref().unwrap().try_into().unwrap();
        let server = cookie();
        let mut result = ChannelResult::opened(open.channel_id);
        result.server_cookie = Some(Bytes::copy_from_slice(&server));
        self.control(&ControlMessage::ChannelResult(result)).await;
        let AuthMessage::Proof(proof) = auth_of(&self.recv().await) else {
            panic!("expected a proof")
        };
        let cookies = AuthCookies { client, server };
        assert_eq!(
            proof.verify(&cookies, &self.key.service_id()).unwrap(),
            self.victim,
            "the victim proves its own id"
        );
        let verdict = AuthMessage::Result(AuthResult {
            accepted: true,
            is_known_contact: Some(known),
        });
        self.send_frame(channel, &verdict.encode()).await;
        self.close_channel(channel).await;
        loop {
            match self.recv_within(WAIT).await {
                Recv::Frame(frame)
                    if frame.channel.get() == channel && frame.payload.is_empty() => {}
                other => return other,
            }
        }
    }

    // ---- contact requests (§8) ----

    /// Opens a contact-request channel; returns its `ChannelResult`.
    pub async fn send_request(
        &mut self,
        channel: u16,
        nickname: &str,
        message: &str,
    ) -> ChannelResult {
        let mut open = OpenChannel::new(ChannelId::new(channel), ChannelType::ContactRequest);
        open.contact_request = Some(ContactRequest {
            nickname: nickname.to_owned(),
            message_text: message.to_owned(),
        });
        self.control(&ControlMessage::OpenChannel(open)).await;
        self.expect_result(channel).await
    }

    /// Authenticates as a stranger and sends a valid request on channel 3,
    /// which the victim holds as pending.
    pub async fn request_contact(&mut self, message: &str) {
        let verdict = self.authenticate().await;
        assert_eq!(
            verdict,
            AuthResult {
                accepted: true,
                is_known_contact: Some(false)
            }
        );
        let result = self.send_request(3, "", message).await;
        assert!(
            result.opened && result.response == Some(ResponseStatus::Pending),
            "{result:?}"
        );
    }

    /// After the victim's user accepted our request: `Response{Accepted}`
    /// on channel 3, then its close, which we echo (§8.2 step 8).
    pub async fn expect_accepted(&mut self) {
        let frame = self.recv().await;
        assert_eq!(frame.channel.get(), 3, "{frame:?}");
        assert_eq!(response_of(&frame), ResponseStatus::Accepted);
        self.expect_close_of(3).await;
        self.close_channel(3).await;
    }

    /// Becomes a known contact of `victim`: a request over the wire, which
    /// the victim's user accepts. The connection then carries chat.
    pub async fn become_contact(&mut self, victim: &mut Peer) {
        self.request_contact("let me in").await;
        let me = self.id();
        let request = victim
            .expect("the raw peer's request", |event| match event {
                Event::ContactRequestReceived(request) if request.sender() == me => Some(request),
                _ => None,
            })
            .await;
        request.accept("raw").await.expect("accept the raw peer");
        self.expect_accepted().await;
    }
}
