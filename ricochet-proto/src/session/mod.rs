//! The per-connection state machine (spec §3–§11), free of IO and clocks.
//!
//! ```text
//!           bytes from the peer ──▶ handle_input(now, bytes) ─┐
//!                 API calls    ──▶ accept_peer, send_chat, …  ├─▶ poll_transmit() ──▶ bytes to send
//!           the current time   ──▶ handle_timeout(now)      ─┘   poll_event()    ──▶ events
//!                                                                poll_timeout()  ──▶ next deadline
//! ```
//!
//! # Call order
//!
//! 1. Create the session with [`Session::client`] (we dialled) or
//!    [`Session::server`] (we accepted). A client queues its introduction at
//!    once.
//! 2. Whenever something happens, call the matching input:
//!    [`Session::handle_input`] with bytes read from the peer,
//!    [`Session::handle_timeout`] when the deadline of
//!    [`Session::poll_timeout`] has passed, or an API call.
//! 3. After every input, an API call included (any call may queue bytes to
//!    send), drain the outputs in this order: write everything
//!    [`Session::poll_transmit`] returns, then re-arm the timer from
//!    [`Session::poll_timeout`], then handle every [`Session::poll_event`].
//! 4. Once [`Session::is_closed`] is true, write what `poll_transmit` still
//!    returns (a version refusal, for instance) and close the stream.
//!
//! Time is whatever the caller passes in; randomness (cookies, message ids)
//! comes from a generator seeded from the operating system's RNG at
//! construction, or from the RNG given to [`Session::client_with_rng`] or
//! [`Session::server_with_rng`].

mod auth;
mod channels;
mod chat;
mod contact;
mod control;
mod event;
mod file;
mod private_endpoint;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::SeedableRng as _;
use rand::rngs::{StdRng, SysRng};
use rand_core::CryptoRng;
use ricochet_identity::{Generation, IdentityKey, ServiceId};

pub use event::{CloseReason, Event};
pub use file::{FileDirection, FileOffer};

use self::channels::{ChannelState, ChannelTable, Kind};
use crate::frame::{FRAME_HEADER_LEN, Frame, FrameDecoder, parse_frame};
use crate::intro::{Introduction, NO_COMMON_VERSION};
use crate::message::ChannelId;
use crate::message::chat::{ChatMessage, ChatText, MessageId};
use crate::message::control::ControlMessage;
use crate::message::file::{FILE_HASH_LEN, FileHeader, FileId, FileResponse};
use crate::message::private_endpoint::{PRIVATE_ENDPOINT_VERSION, PrivateEndpoint};
use crate::{ApiMisuse, NewSessionError, ProtocolError, Reaction};

/// How long a connection may stay without a purpose: not authenticated as a
/// known contact and without a contact request (§3.4, §11.3).
pub const UNKNOWN_PURPOSE_TIMEOUT: Duration = Duration::from_secs(15);

/// Which end of the connection we are (§2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We dialled the peer's onion service; we open odd channel ids and
    /// authenticate ourselves.
    Client,
    /// The peer dialled us; we open even channel ids and verify its proof.
    Server,
}

/// Who opened a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We opened it.
    Outbound,
    /// The peer opened it.
    Inbound,
}

/// What the connection is for (§11.3); decides which channels may open and
/// whether the unknown-purpose deadline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// Not yet decided: the 15 s deadline runs.
    Unknown,
    /// Authenticated as a contact: chat and files may flow.
    KnownContact,
    /// Client: our contact request is pending on this connection.
    OutboundRequest,
    /// Server: the peer's contact request is pending on this connection.
    InboundRequest,
}

/// Settings of one session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How long the connection may stay without a purpose (§11.3).
    /// Default: 15 s.
    pub unknown_purpose_timeout: Duration,
    /// Shortest interval between two answers to `KeepAlive` pings, so that a
    /// peer answering our answers cannot make a loop (§6.3). Default: 1 s.
    pub keepalive_reply_interval: Duration,
    /// Most files the peer may offer us at once (offered or in progress);
    /// more offers are refused with `FileHeaderAck{accepted=false}`, so a
    /// peer cannot make us hold unbounded transfer state. Default: 32.
    pub max_incoming_transfers: usize,
    /// Whether this session speaks the private-endpoint extension
    /// (docs/private-mode.md), on protocol 3 connections only. When true,
    /// the session advertises version [`PRIVATE_ENDPOINT_VERSION`] in field
    /// 7300 of its auth channel's `OpenChannel` (client) or `ChannelResult`
    /// (server), accepts a known contact's `im.ricochet-rs.private-endpoint`
    /// channel (reporting [`Event::PrivateEndpointReceived`]), and lets
    /// [`KnownContact::send_private_endpoint`] send ours to a peer that
    /// advertised it. When false, or on protocol 1, nothing is advertised
    /// and the channel is refused as an unknown type, as other clients do.
    /// Default: false.
    pub private_endpoint: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            unknown_purpose_timeout: UNKNOWN_PURPOSE_TIMEOUT,
            keepalive_reply_interval: Duration::from_secs(1),
            max_incoming_transfers: 32,
            private_endpoint: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Server: waiting for the client's introduction.
    AwaitingIntroduction,
    /// Client: waiting for the server's one-byte version choice.
    AwaitingVersion,
    /// The packet layer runs.
    Open,
    /// Nothing more is read or sent (but queued bytes may still go out).
    Closed,
}

/// Authentication state of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthState {
    /// Nothing proven yet.
    None,
    /// Server: the proof verified; waiting for the caller to say whether the
    /// peer is a known contact.
    AwaitingDecision { channel: ChannelId },
    /// Done (client: our proof was accepted; server: the peer's proof).
    Authenticated,
}

/// One Ricochet connection's protocol state, in either role.
pub struct Session {
    role: Role,
    generation: Generation,
    identity: Arc<IdentityKey>,
    /// Client: the server we dialled (implicitly authenticated, §2).
    /// Server: the client, once its proof verified.
    peer: Option<ServiceId>,
    phase: Phase,
    auth: AuthState,
    purpose: Purpose,
    config: SessionConfig,
    rng: Box<dyn CryptoRng + Send>,
    input: BytesMut,
    output: BytesMut,
    decoder: FrameDecoder,
    events: VecDeque<Event>,
    channels: ChannelTable,
    deadline: Option<Instant>,
    last_keepalive_reply: Option<Instant>,
    /// Whether an auth channel was ever opened (§7: once per connection).
    auth_channel_used: bool,
    /// Next chat message id; starts at a random value (§9.2).
    next_message_id: MessageId,
    /// Next file id of ours; starts at a random value.
    next_file_id: FileId,
    /// The private-endpoint version the peer advertised in field 7300 of
    /// this connection's auth channel (server: its `OpenChannel`; client:
    /// the server's `ChannelResult`).
    peer_private_endpoint: Option<u32>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("generation", &self.generation)
            .field("peer", &self.peer)
            .field("phase", &self.phase)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for a connection we dialled to `server`. Its generation,
    /// which must match our identity's, decides the protocol version (§1).
    /// The introduction is queued at once.
    ///
    /// The session's randomness (authentication cookies, the first chat
    /// message and file ids) comes from a ChaCha12 generator (rand's
    /// `StdRng`) seeded here, once, from the operating system's random
    /// number generator; [`Session::client_with_rng`] takes an RNG instead.
    ///
    /// # Errors
    ///
    /// [`NewSessionError::Misuse`] with [`ApiMisuse::GenerationMismatch`] if
    /// `server` is of another generation than `identity`;
    /// [`NewSessionError::OsRng`] if the operating system's RNG fails.
    pub fn client(
        identity: Arc<IdentityKey>,
        server: ServiceId,
        config: SessionConfig,
        now: Instant,
    ) -> Result<Self, NewSessionError> {
        let rng = seeded_from_os()?;
        Ok(Self::client_with_rng(identity, server, config, now, rng)?)
    }

    /// A session for a connection the peer dialled to us.
    ///
    /// Its randomness comes from a generator seeded from the operating
    /// system's RNG, as for [`Session::client`];
    /// [`Session::server_with_rng`] takes an RNG instead.
    ///
    /// # Errors
    ///
    /// [`NewSessionError::OsRng`] if the operating system's RNG fails.
    pub fn server(
        identity: Arc<IdentityKey>,
        config: SessionConfig,
        now: Instant,
    ) -> Result<Self, NewSessionError> {
        let rng = seeded_from_os()?;
        Ok(Self::server_with_rng(identity, config, now, rng))
    }

    /// [`Session::client`] with the RNG the session draws its randomness
    /// from, for tests, fuzzing and deterministic simulation (a seeded
    /// generator replays the same cookies and ids). Production code should
    /// pass a cryptographically secure generator that cannot fail later
    /// (not `rand_core::UnwrapErr` around the OS RNG, which panics if the OS
    /// RNG fails), or use [`Session::client`].
    ///
    /// `rng` implements [`rand_core::CryptoRng`] of `rand_core` 0.10,
    /// re-exported as [`crate::rand_core`]; rand 0.10's generators do.
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::GenerationMismatch`] if `server` is of another
    /// generation than `identity`.
    pub fn client_with_rng(
        identity: Arc<IdentityKey>,
        server: ServiceId,
        config: SessionConfig,
        now: Instant,
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<Self, ApiMisuse> {
        if server.generation() != identity.generation() {
            return Err(ApiMisuse::GenerationMismatch);
        }
        let mut session = Self::new(Role::Client, identity, config, now, Box::new(rng));
        session.peer = Some(server);
        session.phase = Phase::AwaitingVersion;
        let intro = Introduction::offering(session.generation.protocol_version());
        session.output.extend_from_slice(&intro.encode());
        Ok(session)
    }

    /// [`Session::server`] with the RNG the session draws its randomness
    /// from, for tests, fuzzing and deterministic simulation; see
    /// [`Session::client_with_rng`].
    pub fn server_with_rng(
        identity: Arc<IdentityKey>,
        config: SessionConfig,
        now: Instant,
        rng: impl CryptoRng + Send + 'static,
    ) -> Self {
        Self::new(Role::Server, identity, config, now, Box::new(rng))
    }

    fn new(
        role: Role,
        identity: Arc<IdentityKey>,
        config: SessionConfig,
        now: Instant,
        rng: Box<dyn CryptoRng + Send>,
    ) -> Self {
        let mut rng = rng;
        let next_message_id = rng.next_u32();
        let next_file_id = rng.next_u32();
        Self {
            auth_channel_used: false,
            peer_private_endpoint: None,
            next_message_id,
            next_file_id,
            role,
            generation: identity.generation(),
            identity,
            peer: None,
            phase: Phase::AwaitingIntroduction,
            auth: AuthState::None,
            purpose: Purpose::Unknown,
            deadline: Some(now + config.unknown_purpose_timeout),
            config,
            rng,
            input: BytesMut::new(),
            output: BytesMut::new(),
            decoder: FrameDecoder::new(),
            events: VecDeque::new(),
            channels: ChannelTable::new(role),
            last_keepalive_reply: None,
        }
    }

    // ---- getters ----

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The protocol generation of this connection.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The peer's service id: for a client, the server dialled; for a
    /// server, the client once its proof verified.
    pub fn peer(&self) -> Option<&ServiceId> {
        self.peer.as_ref()
    }

    /// Whether authentication has completed (client: our proof accepted;
    /// server: the peer's proof verified and the caller answered).
    pub fn is_authenticated(&self) -> bool {
        self.auth == AuthState::Authenticated
    }

    /// What the connection is for.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether the peer advertised the private-endpoint extension
    /// (docs/private-mode.md), version 1 or later, on this connection's
    /// auth channel: the server in its `ChannelResult`, the client in its
    /// `OpenChannel`. Always false while our own
    /// [`SessionConfig::private_endpoint`] is off or the connection is
    /// protocol 1, since then we neither advertised nor may use it.
    pub fn peer_supports_private_endpoint(&self) -> bool {
        self.private_endpoint_enabled()
            && self
                .peer_private_endpoint
                .is_some_and(|version| version >= PRIVATE_ENDPOINT_VERSION)
    }

    // ---- outputs ----

    /// Bytes to write to the peer, if any: everything queued so far, in one
    /// piece.
    ///
    /// **Any call may queue output**, not only [`Session::handle_input`]:
    /// the constructors (a client's introduction),
    /// [`Session::handle_timeout`], and every API call
    /// ([`Session::accept_peer`], [`Session::refuse_peer`],
    /// [`Session::send_contact_request`],
    /// [`Session::accept_contact_request`],
    /// [`Session::reject_contact_request`], [`Session::send_keepalive`],
    /// [`Session::close`], and the chat, file and private-endpoint calls of
    /// [`KnownContact`]).
    /// A driver therefore calls `poll_transmit` after each of them, whatever
    /// it returned, until it returns `None`, and writes the bytes in order.
    /// Bytes left here are never sent: the peer may then wait for them
    /// until the connection times out.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.output.is_empty()).then(|| self.output.split().freeze())
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        self.deadline
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- inputs ----

    /// Feeds bytes read from the peer.
    ///
    /// Whole frames are handled straight from `data` when nothing is
    /// buffered from an earlier call; only a trailing partial frame is
    /// copied into the session's buffer.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() {
            return;
        }
        let result = if self.input.is_empty() && self.phase == Phase::Open {
            self.process_borrowed(now, data)
        } else {
            self.input.extend_from_slice(data);
            self.process_input(now)
        };
        if let Err(error) = result {
            self.protocol_error(error);
        }
    }

    /// Tells the session that `now` has come; closes the connection if its
    /// unknown-purpose deadline has passed (§11.3).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.deadline
            && now >= deadline
            && self.purpose == Purpose::Unknown
            && !self.is_closed()
        {
            self.protocol_error(ProtocolError::AuthenticationTimeout);
        }
    }

    /// Sends `KeepAlive{response_requested=true}`.
    ///
    /// Only for protocol 1 peers: Ricochet Refresh's new Rust code drops the
    /// connection on any KeepAlive (§6.3, §12.1 item 6).
    pub fn send_keepalive(&mut self) -> Result<(), ApiMisuse> {
        self.ensure_open()?;
        if self.phase != Phase::Open {
            return Err(ApiMisuse::NotAuthenticated);
        }
        self.send_control(&ControlMessage::KeepAlive {
            response_requested: true,
        });
        Ok(())
    }

    /// Closes the connection from our side.
    pub fn close(&mut self) {
        self.close_with(CloseReason::Local);
    }

    // ---- internals ----

    fn process_input(&mut self, now: Instant) -> Result<(), ProtocolError> {
        loop {
            match self.phase {
                Phase::Closed => return Ok(()),
                Phase::AwaitingIntroduction => {
                    let Some((intro, used)) = Introduction::parse(&self.input)? else {
                        // An introduction is at most MAX_INTRO_LEN bytes, and
                        // anything that long parses or fails: the buffer
                        // stays bounded while we wait.
                        return Ok(());
                    };
                    let _ = self.input.split_to(used);
                    self.negotiate_as_server(&intro)?;
                }
                Phase::AwaitingVersion => {
                    let Some(&version) = self.input.first() else {
                        return Ok(());
                    };
                    let _ = self.input.split_to(1);
                    self.negotiate_as_client(version)?;
                }
                Phase::Open => {
                    let Some(frame) = self.decoder.decode(&mut self.input)? else {
                        return Ok(());
                    };
                    self.handle_frame(now, frame.channel, Payload::Shared(frame.payload))?;
                }
            }
        }
    }

    /// The packet layer (§4.1) over the caller's slice, with nothing
    /// buffered: each whole frame is handled in place, without copying it
    /// into the session's buffer. What is left (a partial frame, or the
    /// bytes after a frame that failed) is buffered, so that the session
    /// ends up exactly where `process_input` would have left it.
    fn process_borrowed(&mut self, now: Instant, mut data: &[u8]) -> Result<(), ProtocolError> {
        let result = loop {
            if self.phase != Phase::Open {
                break Ok(());
            }
            match parse_frame(data) {
                Ok(Some((channel, payload))) => {
                    data = data
                        .get(FRAME_HEADER_LEN + payload.len()..)
                        .unwrap_or_default();
                    if let Err(error) = self.handle_frame(now, channel, Payload::Borrowed(payload))
                    {
                        break Err(error);
                    }
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error.into()),
            }
        };
        if !self.is_closed() {
            self.input.extend_from_slice(data);
        }
        result
    }

    /// §3.2: pick our own version wherever it appears, else `FF` and close.
    fn negotiate_as_server(&mut self, intro: &Introduction) -> Result<(), ProtocolError> {
        let ours = self.generation.protocol_version();
        if !intro.offers(ours) {
            self.output.extend_from_slice(&[NO_COMMON_VERSION]);
            return Err(ProtocolError::NoCommonVersion {
                ours,
                theirs: intro.versions().to_vec(),
            });
        }
        self.output.extend_from_slice(&[ours]);
        self.phase = Phase::Open;
        self.events
            .push_back(Event::VersionNegotiated { version: ours });
        Ok(())
    }

    /// §3.3: the reply must be exactly our version; then authenticate at
    /// once (§12.1 item 2).
    fn negotiate_as_client(&mut self, version: u8) -> Result<(), ProtocolError> {
        let ours = self.generation.protocol_version();
        if version != ours {
            return Err(ProtocolError::NoCommonVersion {
                ours,
                theirs: vec![version],
            });
        }
        self.phase = Phase::Open;
        self.events.push_back(Event::VersionNegotiated { version });
        self.open_auth_channel()
    }

    fn handle_frame(
        &mut self,
        now: Instant,
        channel: ChannelId,
        payload: Payload<'_>,
    ) -> Result<(), ProtocolError> {
        if channel == ChannelId::CONTROL {
            if payload.is_empty() {
                return Err(ProtocolError::ControlChannelClosed);
            }
            let message = ControlMessage::decode(payload.into_bytes())?;
            return self.handle_control(now, message);
        }
        let Some(state) = self.channels.state(channel) else {
            // §4.2: data for an unknown channel gets a close; a close for an
            // unknown channel is ignored, so closes never ping-pong.
            if !payload.is_empty() {
                self.send_frame(Frame::close(channel));
            }
            return Ok(());
        };
        if payload.is_empty() {
            let our_request = self.channels.get_mut(channel).is_some_and(|c| {
                matches!(
                    c.kind,
                    Kind::ContactRequest(contact::RequestChannel::Outbound)
                )
            });
            // The echo of §4.2 is the same empty frame as our own close.
            self.close_channel(channel);
            if our_request {
                // §8.3: a final answer closes the channel on our side first,
                // so this close came without one.
                self.close_with(CloseReason::ContactRequestChannelClosed);
            }
            return Ok(());
        }
        if state == ChannelState::Opening {
            // The peer may not send on a channel before answering our
            // OpenChannel.
            let channel_type = self.channels.channel_type(channel);
            self.channel_violation(
                channel,
                ProtocolError::UnexpectedMessage {
                    channel,
                    channel_type,
                    message: "data before ChannelResult",
                },
            );
            return Ok(());
        }
        self.handle_channel_packet(channel, payload)
    }

    /// Queues a frame. Payloads we build are far below the frame limit.
    fn send_frame(&mut self, frame: Frame) {
        if frame.encode(&mut self.output).is_err() {
            self.events.push_back(Event::InternalError {
                what: "an outgoing payload exceeded the frame limit",
            });
        }
    }

    fn send_control(&mut self, message: &ControlMessage) {
        self.send_frame(Frame {
            channel: ChannelId::CONTROL,
            payload: message.encode(),
        });
    }

    /// Applies the reaction of a protocol error that concerns the whole
    /// connection, or reports it.
    fn protocol_error(&mut self, error: ProtocolError) {
        match error.reaction() {
            Reaction::CloseConnection => self.close_with(CloseReason::Protocol(error)),
            reaction => self
                .events
                .push_back(Event::ProtocolViolation { error, reaction }),
        }
    }

    /// Closes `channel` because of `error` (§5.1), and reports it.
    fn channel_violation(&mut self, channel: ChannelId, error: ProtocolError) {
        self.close_channel(channel);
        self.events.push_back(Event::ProtocolViolation {
            error,
            reaction: Reaction::CloseChannel,
        });
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.phase = Phase::Closed;
        self.deadline = None;
        self.input.clear();
        self.events.push_back(Event::Closed { reason });
    }

    fn set_purpose(&mut self, purpose: Purpose) {
        self.purpose = purpose;
        if purpose != Purpose::Unknown {
            self.deadline = None;
        }
    }

    fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut bytes = [0; N];
        self.rng.fill_bytes(&mut bytes);
        bytes
    }

    fn ensure_open(&self) -> Result<(), ApiMisuse> {
        if self.is_closed() {
            Err(ApiMisuse::Closed)
        } else {
            Ok(())
        }
    }
}

/// A frame's payload, as the session handles it: borrowed from the caller's
/// input, or shared with the session's input buffer.
#[derive(Debug)]
enum Payload<'a> {
    Borrowed(&'a [u8]),
    Shared(Bytes),
}

impl Payload<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Borrowed(slice) => slice,
            Self::Shared(bytes) => bytes,
        }
    }

    /// An empty payload closes its channel (§4.2).
    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// The payload as `Bytes`: free when shared, a copy when borrowed.
    fn into_bytes(self) -> Bytes {
        match self {
            Self::Borrowed(slice) => Bytes::copy_from_slice(slice),
            Self::Shared(bytes) => bytes,
        }
    }
}

/// A ChaCha12 generator seeded from the operating system's RNG: the OS is
/// asked once, here, so that its failure is an error at construction and
/// never a panic later.
fn seeded_from_os() -> Result<StdRng, NewSessionError> {
    StdRng::try_from_rng(&mut SysRng).map_err(|error| NewSessionError::OsRng {
        source: error.into(),
    })
}

/// The operations of a connection that belongs to a known contact: chat,
/// file transfer, and the private-endpoint extension. Only
/// [`Session::known_contact`] hands one out, so these cannot be called
/// before authentication (§11.3: chat and file channels need KnownContact;
/// docs/private-mode.md: so does the private-endpoint channel).
#[derive(Debug)]
pub struct KnownContact<'a> {
    session: &'a mut Session,
}

impl Session {
    /// Chat, file and private-endpoint operations, if the peer is a known
    /// contact.
    pub fn known_contact(&mut self) -> Option<KnownContact<'_>> {
        (self.purpose == Purpose::KnownContact && !self.is_closed())
            .then_some(KnownContact { session: self })
    }
}

impl KnownContact<'_> {
    /// Sends a chat message with a new id; it is queued until our chat
    /// channel is open. `time_delta` is 0 for a message composed now, or the
    /// negative number of seconds since it was composed (§9.2).
    pub fn send_chat(&mut self, text: ChatText, time_delta: i64) -> Result<MessageId, ApiMisuse> {
        let message_id = self.session.next_message_id;
        self.resend_chat(message_id, text, time_delta)?;
        self.session.next_message_id = message_id.wrapping_add(1);
        Ok(message_id)
    }

    /// Sends a chat message with the id it had before, so the receiver can
    /// drop it if it already has it (§9.2 "resend and dedup").
    pub fn resend_chat(
        &mut self,
        message_id: MessageId,
        text: ChatText,
        time_delta: i64,
    ) -> Result<(), ApiMisuse> {
        if time_delta > 0 {
            return Err(ApiMisuse::PositiveTimeDelta);
        }
        self.session.send_chat_message(ChatMessage {
            text: text.into_string(),
            message_id: Some(message_id),
            time_delta: (time_delta != 0).then_some(time_delta),
        })
    }

    /// Offers a file (protocol 3 only); returns its new id. Chunks are asked
    /// for with [`Event::FileChunkWanted`] once the peer accepts.
    pub fn offer_file(
        &mut self,
        name: &str,
        size: u64,
        hash: [u8; FILE_HASH_LEN],
    ) -> Result<FileId, ApiMisuse> {
        if self.session.generation != Generation::V3 {
            return Err(ApiMisuse::FileTransferUnsupported);
        }
        let file_id = self.session.next_file_id;
        self.session.offer_file_inner(FileHeader {
            file_id,
            file_size: size,
            name: name.to_owned(),
            file_hash: Bytes::copy_from_slice(&hash),
        })?;
        self.session.next_file_id = file_id.wrapping_add(1);
        Ok(file_id)
    }

    /// Sends the next chunk of an upload (at most 64512 bytes), after
    /// [`Event::FileChunkWanted`].
    pub fn send_file_chunk(&mut self, file_id: FileId, data: Bytes) -> Result<(), ApiMisuse> {
        self.session.send_file_chunk_inner(file_id, data)
    }

    /// Accepts or rejects a download offered by [`Event::FileOffered`].
    pub fn respond_to_file(
        &mut self,
        file_id: FileId,
        response: FileResponse,
    ) -> Result<(), ApiMisuse> {
        self.session.respond_to_file_inner(file_id, response)
    }

    /// Ends a download after [`Event::FileReceived`], telling the sender
    /// whether the SHA3-512 hash matched.
    pub fn finish_download(
        &mut self,
        file_id: FileId,
        hash_matches: bool,
    ) -> Result<(), ApiMisuse> {
        self.session.finish_download_inner(file_id, hash_matches)
    }

    /// Cancels a transfer in either direction.
    pub fn cancel_file(
        &mut self,
        direction: FileDirection,
        file_id: FileId,
    ) -> Result<(), ApiMisuse> {
        self.session.cancel_file_inner(direction, file_id)
    }

    /// Tells the peer where our private service is, and which key we use to
    /// reach its own (the private-endpoint extension, docs/private-mode.md
    /// "The channel"): opens an `im.ricochet-rs.private-endpoint` channel,
    /// and once the peer accepts it, sends `endpoint` and closes it. Send it
    /// on every contact connection: the receiver takes it as the current
    /// value, so a lost one is made good by the next.
    ///
    /// While our channel still waits for its `ChannelResult`, a second call
    /// replaces the endpoint it will carry rather than opening another. A
    /// peer may refuse the channel; that is not an error, and nothing is
    /// reported.
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::PrivateEndpointUnsupported`] if our
    /// [`SessionConfig::private_endpoint`] is off, the connection is
    /// protocol 1, or the peer did not advertise the extension
    /// ([`Session::peer_supports_private_endpoint`]);
    /// [`ApiMisuse::BadPrivateEndpoint`] if the private address is not a v3
    /// id or is our own public id (the peer would refuse it).
    pub fn send_private_endpoint(&mut self, endpoint: PrivateEndpoint) -> Result<(), ApiMisuse> {
        self.session.send_private_endpoint_inner(endpoint)
    }
}
