//! Channel `im.ricochet.chat` (spec §9).

use bytes::Bytes;

use super::{decode_pb, exactly_one, required, text::utf16_len};
use crate::{DecodeError, pb};

/// A chat message id (§9.2).
pub type MessageId = u32;

/// Longest chat message, in UTF-16 code units (§9.2).
pub const MAX_CHAT_TEXT_UTF16: usize = 2000;

/// A packet on a chat channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatPacket {
    /// Opener → receiver.
    Message(ChatMessage),
    /// Receiver → opener.
    Acknowledge(ChatAcknowledge),
}

/// `ChatMessage`, as received; [`ChatText`] holds the checked text we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The text (required on the wire, but possibly empty or too long).
    pub text: String,
    /// The id to acknowledge; we always send one (§9.2).
    pub message_id: Option<u32>,
    /// Seconds between composing and sending, ≤ 0; absent means 0.
    pub time_delta: Option<i64>,
}

/// `ChatAcknowledge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatAcknowledge {
    /// The acknowledged message (an ack without one closes the channel, §9.2).
    pub message_id: u32,
    /// false: delivery failed. Absent means true (proto2 default), but we
    /// always send it (§5.3).
    pub accepted: bool,
}

/// Why a chat text cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatTextError {
    /// Empty messages are refused (Refresh drops the connection on them).
    #[error("a chat message cannot be empty")]
    Empty,
    /// Over the limit; split it first.
    #[error("a chat message has at most 2000 UTF-16 code units, this one has {len}; split it")]
    TooLong {
        /// Its length in UTF-16 code units.
        len: usize,
    },
}

/// A chat text that may be sent: 1 to 2000 UTF-16 code units (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChatText(String);

impl ChatText {
    /// Checks `text` against the limits of §9.2.
    pub fn new(text: impl Into<String>) -> Result<Self, ChatTextError> {
        let text = text.into();
        let len = utf16_len(&text);
        if len == 0 {
            return Err(ChatTextError::Empty);
        }
        if len > MAX_CHAT_TEXT_UTF16 {
            return Err(ChatTextError::TooLong { len });
        }
        Ok(Self(text))
    }

    /// Splits any non-empty text into sendable pieces, never inside a
    /// surrogate pair (a UTF-8 `char` is never split).
    pub fn split(text: &str) -> Vec<Self> {
        let mut pieces = Vec::new();
        let mut current = String::new();
        let mut units = 0;
        for c in text.chars() {
            let width = c.len_utf16();
            if units + width > MAX_CHAT_TEXT_UTF16 {
                pieces.push(Self(std::mem::take(&mut current)));
                units = 0;
            }
            current.push(c);
            units += width;
        }
        if !current.is_empty() {
            pieces.push(Self(current));
        }
        pieces
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl ChatPacket {
    /// Decodes a chat-channel payload.
    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let packet: pb::ChatPacket = decode_pb("ChatChannel.Packet", payload)?;
        exactly_one(
            "ChatChannel.Packet",
            &[
                packet.chat_message.is_some(),
                packet.chat_acknowledge.is_some(),
            ],
        )?;
        if let Some(message) = packet.chat_message {
            return Ok(Self::Message(ChatMessage {
                text: required(message.message_text, "ChatMessage", "message_text")?,
                message_id: message.message_id,
                time_delta: message.time_delta,
            }));
        }
        let ack = required(
            packet.chat_acknowledge,
            "ChatChannel.Packet",
            "chat_acknowledge",
        )?;
        Ok(Self::Acknowledge(ChatAcknowledge {
            message_id: required(ack.message_id, "ChatAcknowledge", "message_id")?,
            accepted: ack.accepted.unwrap_or(true),
        }))
    }

    /// Encodes the packet.
    pub fn encode(&self) -> Bytes {
        let packet = match self {
            Self::Message(message) => pb::ChatPacket {
                chat_message: Some(pb::ChatMessage {
                    message_text: Some(message.text.clone()),
                    message_id: message.message_id,
                    time_delta: message.time_delta,
                }),
                chat_acknowledge: None,
            },
            Self::Acknowledge(ack) => pb::ChatPacket {
                chat_message: None,
                chat_acknowledge: Some(pb::ChatAcknowledge {
                    message_id: Some(ack.message_id),
                    accepted: Some(ack.accepted),
                }),
            },
        };
        pb::encode(&packet)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod test {
    use super::*;

    #[test]
    fn split_respects_utf16_limit() {
        let text = "😀".repeat(1500); // 3000 code units
        let pieces = ChatText::split(&text);
        assert_eq!(pieces.len(), 2);
        assert_eq!(utf16_len(pieces[0].as_str()), 2000);
        assert_eq!(pieces.concat_len(), text.len());
        assert!(ChatText::split("").is_empty());
        assert_eq!(ChatText::new(""), Err(ChatTextError::Empty));
        assert_eq!(
            ChatText::new("a".repeat(2001)),
            Err(ChatTextError::TooLong { len: 2001 })
        );
    }

    trait ConcatLen {
        fn concat_len(&self) -> usize;
    }
    impl ConcatLen for Vec<ChatText> {
        fn concat_len(&self) -> usize {
            self.iter().map(|p| p.as_str().len()).sum()
        }
    }
}
