//! Channel `im.ricochet.contact.request` (spec §8).

use bytes::Bytes;

use super::{NicknameError, decode_pb, required, text::utf16_len, validate_nickname};
use crate::{DecodeError, pb};

/// Longest contact-request message, in UTF-16 code units (§8.1).
pub const MAX_REQUEST_MESSAGE_UTF16: usize = 2000;

/// The `ContactRequest` carried in `OpenChannel` (extension 200), as
/// received: absent fields are empty strings. [`ContactRequest::validate`]
/// applies the limits of §8.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactRequest {
    /// The name the requester suggests for itself (Refresh sends none).
    pub nickname: String,
    /// The requester's message; may be empty.
    pub message_text: String,
}

/// Why a contact request's content breaks §8.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContactRequestError {
    /// The nickname breaks a rule.
    #[error("bad nickname")]
    Nickname(#[from] NicknameError),
    /// The message exceeds 2000 UTF-16 code units.
    #[error("the message has {len} UTF-16 code units, more than the 2000 allowed")]
    MessageTooLong {
        /// Its length in UTF-16 code units.
        len: usize,
    },
}

impl ContactRequest {
    /// A request with a checked nickname and message.
    pub fn new(nickname: &str, message_text: &str) -> Result<Self, ContactRequestError> {
        let request = Self {
            nickname: nickname.to_owned(),
            message_text: message_text.to_owned(),
        };
        request.validate()?;
        Ok(request)
    }

    /// Checks the limits of §8.1.
    pub fn validate(&self) -> Result<(), ContactRequestError> {
        let len = utf16_len(&self.message_text);
        if len > MAX_REQUEST_MESSAGE_UTF16 {
            return Err(ContactRequestError::MessageTooLong { len });
        }
        validate_nickname(&self.nickname)?;
        Ok(())
    }

    pub(crate) fn from_pb(request: pb::ContactRequest) -> Self {
        Self {
            nickname: request.nickname.unwrap_or_default(),
            message_text: request.message_text.unwrap_or_default(),
        }
    }

    /// Like Ricochet 1.1, send each field only if it is non-empty (§8.1).
    pub(crate) fn to_pb(&self) -> pb::ContactRequest {
        pb::ContactRequest {
            nickname: Some(self.nickname.clone()).filter(|s| !s.is_empty()),
            message_text: Some(self.message_text.clone()).filter(|s| !s.is_empty()),
        }
    }
}

/// `Response.status` (§8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseStatus {
    /// 0: never valid on the wire.
    Undefined,
    /// 1: the recipient has not decided yet.
    Pending,
    /// 2: we are contacts now.
    Accepted,
    /// 3: refused; do not ask again.
    Rejected,
    /// 4: the request could not be handled.
    Error,
    /// Any other value (invalid).
    Unknown(i32),
}

impl ResponseStatus {
    /// Whether this ends the request (Accepted, Rejected or Error).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Accepted | Self::Rejected | Self::Error)
    }

    pub(crate) fn from_wire(value: i32) -> Self {
        match value {
            0 => Self::Undefined,
            1 => Self::Pending,
            2 => Self::Accepted,
            3 => Self::Rejected,
            4 => Self::Error,
            other => Self::Unknown(other),
        }
    }

    pub(crate) fn to_wire(self) -> i32 {
        match self {
            Self::Undefined => 0,
            Self::Pending => 1,
            Self::Accepted => 2,
            Self::Rejected => 3,
            Self::Error => 4,
            Self::Unknown(value) => value,
        }
    }

    /// Decodes a bare `Response` message, the only packet on an open
    /// contact-request channel (§5.1: not wrapped in a `Packet`).
    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let response: pb::ContactRequestResponse = decode_pb("Response", payload)?;
        required(response.status, "Response", "status").map(Self::from_wire)
    }

    /// Encodes a bare `Response` message.
    pub fn encode(self) -> Bytes {
        pb::encode(&pb::ContactRequestResponse {
            status: Some(self.to_wire()),
        })
    }
}
