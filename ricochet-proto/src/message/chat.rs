//! Channel `im.ricochet.chat` (spec §9).

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{decode_varint, encoded_len_varint};

use super::{ChannelId, decode_pb, exactly_one, required, text::utf16_len};
use crate::frame::{FRAME_HEADER_LEN, frame_header};
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
        if text.is_empty() {
            return Err(ChatTextError::Empty);
        }
        // A character never takes more UTF-16 units than UTF-8 bytes (1 ≤ 1,
        // 1 ≤ 2, 1 ≤ 3, 2 ≤ 4), so a text of at most 2000 bytes is within
        // the limit without counting.
        if text.len() > MAX_CHAT_TEXT_UTF16 {
            let len = utf16_len(&text);
            if len > MAX_CHAT_TEXT_UTF16 {
                return Err(ChatTextError::TooLong { len });
            }
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
        Self::decode_slice(&payload)
    }

    /// Decodes a chat-channel payload from a borrowed slice; the same as
    /// [`ChatPacket::decode`] (a chat packet shares no memory with its
    /// payload: the text is copied into its `String` either way).
    pub fn decode_slice(payload: &[u8]) -> Result<Self, DecodeError> {
        match decode_canonical(payload) {
            Some(packet) => Ok(packet),
            None => Self::decode_general(payload),
        }
    }

    /// Any protobuf encoding, through prost; the errors come from here.
    fn decode_general(payload: &[u8]) -> Result<Self, DecodeError> {
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

    /// Length of the encoded payload, in bytes.
    pub fn encoded_len(&self) -> usize {
        let inner = self.inner_len();
        1 + encoded_len_varint(inner as u64) + inner
    }

    /// Encodes the packet.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode_payload(&mut buf);
        buf.freeze()
    }

    /// Appends the packet to `out` as a whole frame on `channel` (§4.1):
    /// header and protobuf written in one pass, after one exact reservation,
    /// with no intermediate buffer. The bytes are those of
    /// [`Frame`](crate::Frame)`{ channel, payload: self.encode() }`.
    ///
    /// Fails, writing nothing, if the payload would exceed
    /// [`MAX_PAYLOAD_LEN`](crate::frame::MAX_PAYLOAD_LEN) (only a text far
    /// above the §9.2 limit can).
    pub fn encode_frame(&self, channel: ChannelId, out: &mut BytesMut) -> Result<(), DecodeError> {
        let len = self.encoded_len();
        let header = frame_header(channel, len)?;
        out.reserve(FRAME_HEADER_LEN + len);
        self.write(Some(header), out);
        Ok(())
    }

    /// Length of the `ChatMessage` or `ChatAcknowledge` inside the packet.
    fn inner_len(&self) -> usize {
        match self {
            Self::Message(message) => {
                let text = message.text.len();
                1 + encoded_len_varint(text as u64)
                    + text
                    + message
                        .message_id
                        .map_or(0, |id| 1 + encoded_len_varint(u64::from(id)))
                    // prost encodes an int64 as the varint of its two's
                    // complement: ten bytes when negative.
                    + message
                        .time_delta
                        .map_or(0, |delta| 1 + encoded_len_varint(delta as u64))
            }
            // The id and `accepted` are always written (§5.3).
            Self::Acknowledge(ack) => 1 + encoded_len_varint(u64::from(ack.message_id)) + 2,
        }
    }

    /// Writes the protobuf `ChatChannel.Packet` as prost would from
    /// [`pb::ChatPacket`]: fields in tag order, absent ones left out.
    fn encode_payload(&self, out: &mut impl BufMut) {
        self.write(None, out);
    }

    /// Writes `header`, if any, and the packet, in at most three copies:
    /// keys and varints are assembled on the stack around the text (each
    /// `put_u8` into a `BytesMut` is a checked copy of its own).
    fn write(&self, header: Option<[u8; FRAME_HEADER_LEN]>, out: &mut impl BufMut) {
        let mut head = Scratch::default();
        if let Some(header) = header {
            head.bytes(&header);
        }
        match self {
            Self::Message(message) => {
                head.byte(KEY_CHAT_MESSAGE);
                head.varint(self.inner_len() as u64);
                head.byte(KEY_MESSAGE_TEXT);
                head.varint(message.text.len() as u64);
                let mut tail = Scratch::default();
                if let Some(id) = message.message_id {
                    tail.byte(KEY_MESSAGE_ID);
                    tail.varint(u64::from(id));
                }
                if let Some(delta) = message.time_delta {
                    tail.byte(KEY_TIME_DELTA);
                    tail.varint(delta as u64);
                }
                out.put_slice(head.as_slice());
                out.put_slice(message.text.as_bytes());
                out.put_slice(tail.as_slice());
            }
            Self::Acknowledge(ack) => {
                head.byte(KEY_CHAT_ACKNOWLEDGE);
                head.varint(self.inner_len() as u64);
                head.byte(KEY_ACK_MESSAGE_ID);
                head.varint(u64::from(ack.message_id));
                head.byte(KEY_ACK_ACCEPTED);
                head.byte(u8::from(ack.accepted));
                out.put_slice(head.as_slice());
            }
        }
    }
}

/// A few bytes assembled on the stack. The most written is a frame header
/// and two keys with ten-byte varints (26 bytes).
#[derive(Default)]
struct Scratch {
    buf: [u8; 32],
    len: usize,
}

impl Scratch {
    fn byte(&mut self, byte: u8) {
        debug_assert!(self.len < self.buf.len(), "scratch overflow");
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.byte(byte);
        }
    }

    /// A protobuf base-128 varint, as `prost::encoding::encode_varint`.
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.byte((value as u8) | 0x80);
            value >>= 7;
        }
        self.byte(value as u8);
    }

    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

// Protobuf keys (tag << 3 | wire type) of `ChatChannel.proto` (§9.1).
/// `Packet.chat_message`, length-delimited.
const KEY_CHAT_MESSAGE: u8 = 1 << 3 | 2;
/// `Packet.chat_acknowledge`, length-delimited.
const KEY_CHAT_ACKNOWLEDGE: u8 = 2 << 3 | 2;
/// `ChatMessage.message_text`, length-delimited.
const KEY_MESSAGE_TEXT: u8 = 1 << 3 | 2;
/// `ChatMessage.message_id`, varint.
const KEY_MESSAGE_ID: u8 = 2 << 3;
/// `ChatMessage.time_delta`, varint.
const KEY_TIME_DELTA: u8 = 3 << 3;
/// `ChatAcknowledge.message_id`, varint.
const KEY_ACK_MESSAGE_ID: u8 = 1 << 3;
/// `ChatAcknowledge.accepted`, varint.
const KEY_ACK_ACCEPTED: u8 = 2 << 3;

/// Decodes the shape every known sender writes (ours, Ricochet 1.1's C++
/// protobuf, Refresh's rust-protobuf): one field in the `Packet`, and
/// inside it each known field at most once, in tag order, with no unknown
/// fields. Anything else returns `None` and goes to prost, which gives the
/// same result for every input this accepts (the same varint decoding and
/// integer conversions: `as u32`, `as i64`, `!= 0`), and the error for every
/// input this refuses. The "exactly one field" rule (§5.1) and the required
/// fields hold by construction.
fn decode_canonical(payload: &[u8]) -> Option<ChatPacket> {
    let (&key, mut rest) = payload.split_first()?;
    let len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
    if len != rest.len() {
        return None;
    }
    let mut last_key = 0;
    match key {
        KEY_CHAT_MESSAGE => {
            let (mut text, mut message_id, mut time_delta) = (None, None, None);
            while let Some((&key, mut tail)) = rest.split_first() {
                if key <= last_key {
                    return None;
                }
                last_key = key;
                match key {
                    KEY_MESSAGE_TEXT => {
                        let len = usize::try_from(decode_varint(&mut tail).ok()?).ok()?;
                        let bytes = tail.get(..len)?;
                        text = Some(std::str::from_utf8(bytes).ok()?.to_owned());
                        tail = tail.get(len..)?;
                    }
                    KEY_MESSAGE_ID => message_id = Some(decode_varint(&mut tail).ok()? as u32),
                    KEY_TIME_DELTA => time_delta = Some(decode_varint(&mut tail).ok()? as i64),
                    _ => return None,
                }
                rest = tail;
            }
            Some(ChatPacket::Message(ChatMessage {
                text: text?,
                message_id,
                time_delta,
            }))
        }
        KEY_CHAT_ACKNOWLEDGE => {
            let (mut message_id, mut accepted) = (None, None);
            while let Some((&key, mut tail)) = rest.split_first() {
                if key <= last_key {
                    return None;
                }
                last_key = key;
                match key {
                    KEY_ACK_MESSAGE_ID => message_id = Some(decode_varint(&mut tail).ok()? as u32),
                    KEY_ACK_ACCEPTED => accepted = Some(decode_varint(&mut tail).ok()? != 0),
                    _ => return None,
                }
                rest = tail;
            }
            Some(ChatPacket::Acknowledge(ChatAcknowledge {
                message_id: message_id?,
                accepted: accepted.unwrap_or(true),
            }))
        }
        _ => None,
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
        // More than 2000 bytes, but within 2000 UTF-16 units; and over.
        assert!(ChatText::new("é".repeat(2000)).is_ok());
        assert!(ChatText::new("€".repeat(2000)).is_ok());
        assert!(ChatText::new("😀".repeat(1000)).is_ok());
        assert_eq!(
            ChatText::new("😀".repeat(1000) + "a"),
            Err(ChatTextError::TooLong { len: 2001 })
        );
        assert_eq!(
            ChatText::new("€".repeat(2001)),
            Err(ChatTextError::TooLong { len: 2001 })
        );
    }

    /// The hand-written codec against prost's, on canonical and
    /// non-canonical encodings.
    #[test]
    fn agrees_with_prost() {
        use prost::Message as _;
        let packets = [
            ChatPacket::Message(ChatMessage {
                text: "hello 😀".to_owned(),
                message_id: Some(0x8000_0000),
                time_delta: Some(-3),
            }),
            ChatPacket::Message(ChatMessage {
                text: String::new(),
                message_id: None,
                time_delta: Some(0),
            }),
            ChatPacket::Message(ChatMessage {
                text: "x".repeat(300),
                message_id: Some(0),
                time_delta: None,
            }),
            ChatPacket::Acknowledge(ChatAcknowledge {
                message_id: u32::MAX,
                accepted: false,
            }),
            ChatPacket::Acknowledge(ChatAcknowledge {
                message_id: 1,
                accepted: true,
            }),
        ];
        for packet in &packets {
            let ours = packet.encode();
            let pb = pb::ChatPacket::decode(&ours[..]).unwrap();
            assert_eq!(ours, pb::encode(&pb), "{packet:?}");
            assert_eq!(packet.encoded_len(), ours.len());
            assert_eq!(&ChatPacket::decode(ours.clone()).unwrap(), packet);
            assert!(decode_canonical(&ours).is_some());
            assert_eq!(&ChatPacket::decode_general(&ours).unwrap(), packet);
            let mut framed = BytesMut::new();
            packet.encode_frame(ChannelId::new(5), &mut framed).unwrap();
            let frame = crate::Frame {
                channel: ChannelId::new(5),
                payload: ours,
            };
            assert_eq!(framed, frame.to_bytes().unwrap());
        }
        // Non-canonical inputs leave the fast path and get prost's answer.
        let cases: [&[u8]; 9] = [
            &[],
            // Fields out of order.
            &[0x0A, 0x05, 0x10, 0x01, 0x0A, 0x01, b'a'],
            // A field twice: the last one wins.
            &[0x0A, 0x06, 0x0A, 0x01, b'a', 0x0A, 0x01, b'b'],
            // An unknown field.
            &[0x0A, 0x05, 0x0A, 0x01, b'a', 0x20, 0x01],
            // Two ChatMessages: merged.
            &[0x0A, 0x03, 0x0A, 0x01, b'a', 0x0A, 0x02, 0x10, 0x07],
            // Both fields.
            &[0x0A, 0x03, 0x0A, 0x01, b'a', 0x12, 0x02, 0x08, 0x01],
            // Invalid UTF-8.
            &[0x0A, 0x03, 0x0A, 0x01, 0xFF],
            // No text; no ack id.
            &[0x0A, 0x02, 0x10, 0x01],
            &[0x12, 0x02, 0x10, 0x01],
        ];
        for case in cases {
            assert!(decode_canonical(case).is_none(), "{case:02x?}");
            assert_eq!(
                ChatPacket::decode_slice(case),
                ChatPacket::decode_general(case),
                "{case:02x?}"
            );
        }
        assert_eq!(
            ChatPacket::decode_slice(&[0x0A, 0x06, 0x0A, 0x01, b'a', 0x0A, 0x01, b'b']),
            Ok(ChatPacket::Message(ChatMessage {
                text: "b".to_owned(),
                message_id: None,
                time_delta: None,
            }))
        );
    }

    proptest::proptest! {
        /// The fast path and prost agree on valid encodings, on mutated
        /// ones, and on junk.
        #[test]
        fn fast_path_agrees_with_prost(
            text in ".{0,40}",
            message_id in proptest::option::of(proptest::num::u32::ANY),
            time_delta in proptest::option::of(proptest::num::i64::ANY),
            ack in proptest::bool::ANY,
            flip in (proptest::num::usize::ANY, proptest::num::u8::ANY),
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..48),
        ) {
            let packet = if ack {
                ChatPacket::Acknowledge(ChatAcknowledge {
                    message_id: message_id.unwrap_or(0),
                    accepted: time_delta.is_some(),
                })
            } else {
                ChatPacket::Message(ChatMessage { text, message_id, time_delta })
            };
            let encoded = packet.encode();
            proptest::prop_assert_eq!(ChatPacket::decode_slice(&encoded), Ok(packet));
            let mut mutated = encoded.to_vec();
            let at = flip.0 % mutated.len();
            mutated[at] = flip.1;
            proptest::prop_assert_eq!(
                ChatPacket::decode_slice(&mutated),
                ChatPacket::decode_general(&mutated)
            );
            mutated.truncate(at);
            proptest::prop_assert_eq!(
                ChatPacket::decode_slice(&mutated),
                ChatPacket::decode_general(&mutated)
            );
            proptest::prop_assert_eq!(
                ChatPacket::decode_slice(&junk),
                ChatPacket::decode_general(&junk)
            );
        }
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
