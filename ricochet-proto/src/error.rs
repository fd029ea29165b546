//! Errors, kept in three kinds (as rustls and h2 do):
//!
//! * [`DecodeError`]: malformed bytes;
//! * [`ProtocolError`]: well-formed, but not allowed now — each has a
//!   [`Reaction`], the defined response of spec §12.4;
//! * [`ApiMisuse`]: our caller's mistake, never caused by peer input.
//!
//! [`NewSessionError`] says why [`crate::Session::client`] or
//! [`crate::Session::server`] could not create a session.

use ricochet_identity::{ProofError, ServiceIdError};

use crate::message::contact_request::ContactRequestError;
use crate::message::file::FileHeaderError;
use crate::{ChannelId, ChannelType};

/// Malformed bytes from the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The introduction does not start with `49 4D` (§3.2).
    #[error("the connection does not start with the Ricochet introduction (\"IM\")")]
    BadIntroMagic,
    /// The introduction offers zero versions (§3.2).
    #[error("the introduction offers no protocol version")]
    NoVersionsOffered,
    /// A frame's size field is below 4, its own header's size (§4.1).
    #[error("frame size {size} is smaller than the 4-byte header: the stream is corrupt")]
    FrameTooShort {
        /// The size field.
        size: usize,
    },
    /// A payload over 65531 bytes cannot be framed (§4.1).
    #[error("a frame payload holds at most 65531 bytes, not {len}")]
    PayloadTooLarge {
        /// Payload size.
        len: usize,
    },
    /// The payload is not a valid protobuf message.
    #[error("{message} is not a valid protobuf message")]
    Protobuf {
        /// Which message was expected.
        message: &'static str,
        /// What prost reported.
        #[source]
        source: prost::DecodeError,
    },
    /// A `Packet` wrapper must carry exactly one field (§5.1).
    #[error("{message} must carry exactly one message, it carries {count}")]
    FieldCount {
        /// The wrapper.
        message: &'static str,
        /// Fields set.
        count: usize,
    },
    /// A field that the protocol requires is absent.
    #[error("{message} lacks its required field `{field}`")]
    MissingField {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A channel identifier outside 0..=65535 (§5.3).
    #[error("channel identifier {value} is outside 0..=65535")]
    ChannelIdOutOfRange {
        /// The value received.
        value: i32,
    },
    /// An enum field holds a value the protocol does not define.
    #[error("{field} has the undefined value {value}")]
    InvalidEnum {
        /// The field.
        field: &'static str,
        /// The value received.
        value: i64,
    },
    /// A file chunk over 64512 bytes (§10.1).
    #[error("a file chunk holds at most 64512 bytes, not {len}")]
    ChunkTooLarge {
        /// Chunk size.
        len: usize,
    },
    /// A version field below the first version of its message (the
    /// private-endpoint extension, docs/private-mode.md: versions start at 1).
    #[error("{message} has version {version}, but versions start at {min}")]
    UnsupportedVersion {
        /// The message.
        message: &'static str,
        /// The version received.
        version: u32,
        /// The lowest version there is.
        min: u32,
    },
    /// A service-id field that is not a canonical id of the generation the
    /// message requires (the private-endpoint extension: a bare, lowercase
    /// 56-character v3 id).
    #[error("{message}.{field} is not a valid onion service id")]
    BadServiceId {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// Why it does not parse, or its generation.
        #[source]
        source: ServiceIdError,
    },
    /// A bytes field of the wrong length (the private-endpoint extension's
    /// 32-byte x25519 key).
    #[error("{message}.{field} must be {expected} bytes, not {len}")]
    BadLength {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The length it must have.
        expected: usize,
        /// Its length.
        len: usize,
    },
}

/// What the session does about a [`ProtocolError`] (spec §12.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reaction {
    /// The message is answered with a refusal (`accepted=false`) and
    /// otherwise dropped.
    Refuse,
    /// The `OpenChannel` is refused with `ChannelResult{opened=false}`.
    RejectChannel,
    /// The channel is closed (an empty frame is sent).
    CloseChannel,
    /// The whole connection is closed.
    CloseConnection,
}

/// Well-formed input that the protocol does not allow at this point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Malformed bytes on the control channel or in the stream itself.
    #[error("malformed input from the peer")]
    Malformed(#[from] DecodeError),
    /// Malformed packet on a non-control channel (§5.1: closes the channel).
    #[error("malformed packet on channel {channel} ({channel_type})")]
    MalformedPacket {
        /// The channel.
        channel: ChannelId,
        /// Its type.
        channel_type: ChannelType,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },
    /// The server offered none of our versions, or chose another (§3).
    #[error("version negotiation failed: we speak {ours}, the peer {theirs:?}")]
    NoCommonVersion {
        /// Our version.
        ours: u8,
        /// The version(s) the peer offered or chose.
        theirs: Vec<u8>,
    },
    /// An `OpenChannel` with an id of the wrong parity, out of range, or in use (§4.3).
    #[error("the peer tried to open channel {channel}, which it may not use")]
    BadChannelId {
        /// The id.
        channel: ChannelId,
    },
    /// An `OpenChannel` of a type we do not know (§6.2).
    #[error("the peer asked for the unknown channel type {0:?}")]
    UnknownChannelType(String),
    /// A channel-type rule refused an `OpenChannel` (§6.2 step 3).
    #[error("refused to open a {channel_type} channel: {reason}")]
    ChannelRefused {
        /// The type asked for.
        channel_type: ChannelType,
        /// Which rule refused it.
        reason: &'static str,
    },
    /// The peer closed the control channel (§4.2).
    #[error("the peer closed the control channel")]
    ControlChannelClosed,
    /// `FeaturesEnabled` that we never asked for (§6.4).
    #[error("the peer sent FeaturesEnabled without being asked")]
    UnsolicitedFeaturesEnabled,
    /// A packet that the channel's direction or state does not allow.
    #[error("unexpected {message} on channel {channel} ({channel_type})")]
    UnexpectedMessage {
        /// The channel.
        channel: ChannelId,
        /// Its type.
        channel_type: ChannelType,
        /// What arrived.
        message: &'static str,
    },
    /// A cookie extension that is not 16 bytes (§7).
    #[error("an authentication cookie must be 16 bytes, this one is {len}")]
    BadCookie {
        /// Its size.
        len: usize,
    },
    /// The client's proof did not verify (§7.1, §7.2).
    #[error("the peer's authentication proof was rejected")]
    ProofRejected(#[source] ProofError),
    /// The server refused our proof.
    #[error("the peer refused our authentication")]
    AuthenticationRefused,
    /// The connection did not authenticate in time (§3.4, §11.3).
    #[error("the connection did not authenticate within its deadline")]
    AuthenticationTimeout,
    /// A contact request whose content breaks §8.1.
    #[error("invalid contact request")]
    BadContactRequest(#[source] ContactRequestError),
    /// A contact-request response that is missing, `Undefined`, or comes
    /// after a final one (§8.3).
    #[error("invalid contact-request response")]
    BadContactResponse,
    /// A chat message that is empty or too long (answered `accepted=false`).
    #[error("invalid chat message")]
    BadChatMessage(#[source] crate::message::chat::ChatTextError),
    /// A file header that breaks §10.2 (refused with `accepted=false`).
    #[error("invalid file offer")]
    BadFileHeader(#[source] FileHeaderError),
    /// More file offers than `SessionConfig::max_incoming_transfers`
    /// (refused with `accepted=false`).
    #[error("the peer offered more than {limit} files at once")]
    TooManyTransfers {
        /// The limit.
        limit: usize,
    },
    /// A file-transfer message that breaks §10.2–§10.3.
    #[error("file transfer {file_id}: {reason}")]
    FileTransfer {
        /// The transfer.
        file_id: u32,
        /// What went wrong.
        reason: &'static str,
    },
    /// A `PrivateEndpoint` whose private address is the peer's own public
    /// id (the private-endpoint extension, docs/private-mode.md "The
    /// channel"): dialling it "privately" would reach the public service,
    /// so it is refused, and the channel closed, rather than stored.
    #[error("the private address on channel {channel} is the peer's public id")]
    PrivateAddressIsPublic {
        /// The private-endpoint channel.
        channel: ChannelId,
    },
}

impl ProtocolError {
    /// The defined reaction to this error (spec §12.4).
    pub fn reaction(&self) -> Reaction {
        match self {
            Self::Malformed(_)
            | Self::NoCommonVersion { .. }
            | Self::BadChannelId { .. }
            | Self::ControlChannelClosed
            | Self::UnsolicitedFeaturesEnabled
            | Self::AuthenticationRefused
            | Self::AuthenticationTimeout => Reaction::CloseConnection,
            Self::UnknownChannelType(_) | Self::ChannelRefused { .. } => Reaction::RejectChannel,
            Self::MalformedPacket { .. }
            | Self::UnexpectedMessage { .. }
            | Self::BadCookie { .. }
            | Self::ProofRejected(_)
            | Self::BadContactRequest(_)
            | Self::BadContactResponse
            | Self::FileTransfer { .. }
            | Self::PrivateAddressIsPublic { .. } => Reaction::CloseChannel,
            Self::BadFileHeader(_) | Self::BadChatMessage(_) | Self::TooManyTransfers { .. } => {
                Reaction::Refuse
            }
        }
    }
}

/// A mistake of the session's caller; never caused by peer input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// The peer's id is of another generation than our identity.
    #[error("our identity and the peer's id are of different generations")]
    GenerationMismatch,
    /// Only the side that dialled (the client) may do this.
    #[error("only the client side of a connection may do this")]
    NotClient,
    /// The connection is not authenticated yet.
    #[error("the connection is not authenticated")]
    NotAuthenticated,
    /// There is no pending question for the caller to answer.
    #[error("nothing is waiting for this answer")]
    NothingToAnswer,
    /// The peer is already a known contact.
    #[error("the peer is already a contact")]
    AlreadyContact,
    /// A contact request that breaks §8.1.
    #[error("invalid contact request")]
    BadContactRequest(#[source] ContactRequestError),
    /// A contact request was already sent on this connection.
    #[error("a contact request was already sent on this connection")]
    RequestAlreadySent,
    /// File transfer exists only in protocol 3.
    #[error("file transfer needs a protocol 3 (v3) contact")]
    FileTransferUnsupported,
    /// No transfer with this id in a state that allows the call.
    #[error("no file transfer {0} is waiting for this")]
    NoSuchTransfer(u32),
    /// The file id is already in use.
    #[error("file id {0} is already in use")]
    DuplicateFileId(u32),
    /// More data than the transfer announced, or a chunk over 64512 bytes.
    #[error("the chunk does not fit the transfer (too large, or past the announced size)")]
    ChunkDoesNotFit,
    /// A file offer that the peer would refuse.
    #[error("invalid file offer")]
    BadFileHeader(#[source] FileHeaderError),
    /// A positive `time_delta` (§9.2: delayed messages have negative deltas).
    #[error("time_delta must be zero or negative")]
    PositiveTimeDelta,
    /// All channel ids of our parity are in use.
    #[error("no free channel id")]
    NoFreeChannelId,
    /// The private-endpoint extension (docs/private-mode.md) is off on this
    /// connection: our [`SessionConfig::private_endpoint`] is false, the
    /// connection is protocol 1, or the peer did not advertise the
    /// extension on its auth channel.
    ///
    /// [`SessionConfig::private_endpoint`]: crate::SessionConfig::private_endpoint
    #[error(
        "the private-endpoint extension is not available on this connection \
         (off in our configuration, protocol 1, or not advertised by the peer)"
    )]
    PrivateEndpointUnsupported,
    /// A [`PrivateEndpoint`] that the peer would refuse: its private address
    /// is not a v3 id, or is our own public id.
    ///
    /// [`PrivateEndpoint`]: crate::message::private_endpoint::PrivateEndpoint
    #[error("the private address must be a v3 id other than our own public id")]
    BadPrivateEndpoint,
}

/// Why [`Session::client`](crate::Session::client) or
/// [`Session::server`](crate::Session::server) could not create a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewSessionError {
    /// The arguments do not fit together
    /// ([`ApiMisuse::GenerationMismatch`]).
    #[error(transparent)]
    Misuse(#[from] ApiMisuse),
    /// The operating system's random number generator, which seeds the
    /// session's own generator, failed: the session's cookies and ids
    /// cannot be made without it. Rare: it happens where the process may
    /// not read the OS's entropy source (a sandbox that forbids the
    /// `getrandom` system call, a chroot without `/dev/urandom`) or before
    /// the OS has gathered entropy at boot.
    #[error(
        "the operating system's random number generator failed, so no session could be started; \
         check that this process may use it (getrandom, /dev/urandom)"
    )]
    #[non_exhaustive]
    OsRng {
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
}
