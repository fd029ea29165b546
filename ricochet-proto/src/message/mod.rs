//! Typed messages, one set per channel type (spec §5–§10).
//!
//! A payload is decoded only as the message type of the channel it arrived
//! on: a chat packet on the control channel is an error, not a best-effort
//! parse. Decoding enforces structure (exactly one field per `Packet`,
//! required fields present, sizes that make a message meaningless);
//! content rules whose violation has a gentler reaction than dropping the
//! message (text limits, nickname characters, file names) are checked by the
//! validators next to each message, which the session applies.

pub mod auth;
pub mod chat;
pub mod contact_request;
pub mod control;
pub mod file;
pub mod private_endpoint;
mod text;

use std::fmt;

pub use text::{MAX_NICKNAME_UTF16, NicknameError, utf16_len, validate_nickname};

use crate::DecodeError;

/// A channel identifier (§4.3). Channel 0 is the control channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(u16);

impl ChannelId {
    /// The control channel, 0.
    pub const CONTROL: Self = Self(0);

    /// The id `id`.
    pub const fn new(id: u16) -> Self {
        Self(id)
    }

    /// The numeric id.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Whether a client opens channels with this id (odd ids, §4.3).
    pub const fn is_client_parity(self) -> bool {
        self.0 % 2 == 1
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self, DecodeError> {
        u16::try_from(value)
            .map(Self)
            .map_err(|_| DecodeError::ChannelIdOutOfRange { value })
    }

    pub(crate) fn to_wire(self) -> i32 {
        i32::from(self.0)
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A channel type (§6.2). Unknown types are kept, so that they can be
/// refused politely with `UnknownTypeError` instead of a dropped connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelType {
    /// `im.ricochet.auth.hidden-service` (§7).
    AuthHiddenService,
    /// `im.ricochet.contact.request` (§8).
    ContactRequest,
    /// `im.ricochet.chat` (§9).
    Chat,
    /// `im.ricochet.file-transfer` (§10, protocol 3 only).
    FileTransfer,
    /// `im.ricochet-rs.private-endpoint`: the private-endpoint extension of
    /// this implementation (docs/private-mode.md), protocol 3 only. Other
    /// clients do not know it; a session opens it only to a peer that
    /// advertised it, and refuses it as an unknown type when the extension
    /// is off.
    PrivateEndpoint,
    /// Any other type string.
    Unknown(String),
}

impl ChannelType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AuthHiddenService => "im.ricochet.auth.hidden-service",
            Self::ContactRequest => "im.ricochet.contact.request",
            Self::Chat => "im.ricochet.chat",
            Self::FileTransfer => "im.ricochet.file-transfer",
            Self::PrivateEndpoint => "im.ricochet-rs.private-endpoint",
            Self::Unknown(name) => name,
        }
    }

    /// The type named `name`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "im.ricochet.auth.hidden-service" => Self::AuthHiddenService,
            "im.ricochet.contact.request" => Self::ContactRequest,
            "im.ricochet.chat" => Self::Chat,
            "im.ricochet.file-transfer" => Self::FileTransfer,
            "im.ricochet-rs.private-endpoint" => Self::PrivateEndpoint,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ChannelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ChannelResult.common_error` (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommonError {
    /// 0: no specific reason.
    Generic,
    /// 1: the channel type is not known.
    UnknownType,
    /// 2: the connection is not allowed to open this channel.
    Unauthorized,
    /// 3: the request breaks a rule of the channel type.
    BadUsage,
    /// 4: the request failed.
    Failed,
    /// Any other value.
    Other(i32),
}

impl CommonError {
    pub(crate) fn from_wire(value: i32) -> Self {
        match value {
            0 => Self::Generic,
            1 => Self::UnknownType,
            2 => Self::Unauthorized,
            3 => Self::BadUsage,
            4 => Self::Failed,
            other => Self::Other(other),
        }
    }

    pub(crate) fn to_wire(self) -> i32 {
        match self {
            Self::Generic => 0,
            Self::UnknownType => 1,
            Self::Unauthorized => 2,
            Self::BadUsage => 3,
            Self::Failed => 4,
            Self::Other(value) => value,
        }
    }
}

/// Checks the "exactly one field" rule of a `Packet` wrapper (§5.1).
pub(crate) fn exactly_one(message: &'static str, set: &[bool]) -> Result<(), DecodeError> {
    match crate::pb::count_set(set) {
        1 => Ok(()),
        count => Err(DecodeError::FieldCount { message, count }),
    }
}

/// Unwraps a field that the spec requires.
pub(crate) fn required<T>(
    value: Option<T>,
    message: &'static str,
    field: &'static str,
) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::MissingField { message, field })
}

pub(crate) fn decode_pb<M: prost::Message + Default>(
    message: &'static str,
    payload: impl bytes::Buf,
) -> Result<M, DecodeError> {
    M::decode(payload).map_err(|source| DecodeError::Protobuf { message, source })
}
