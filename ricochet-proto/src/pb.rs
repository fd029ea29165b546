//! The protobuf messages of spec §5.4, derived with `prost` (no `protoc`).
//!
//! Every field is `optional` here, even where the upstream schema says
//! `required`: prost does not enforce `required`, so presence is checked by
//! hand when these are turned into the typed messages of [`crate::message`],
//! and we always set required fields when sending (§5.3). The proto2
//! extensions (200, 201, 7200, and 7300 of the private-endpoint extension,
//! docs/private-mode.md) are flattened into the messages they extend.
//! These types never leave the crate.

#![allow(missing_docs, unreachable_pub, clippy::derive_partial_eq_without_eq)]

use prost::Message;

// ---- channel 0 (§6) ----

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ControlPacket {
    #[prost(message, optional, tag = "1")]
    pub open_channel: Option<OpenChannel>,
    #[prost(message, optional, tag = "2")]
    pub channel_result: Option<ChannelResult>,
    #[prost(message, optional, tag = "3")]
    pub keep_alive: Option<KeepAlive>,
    #[prost(message, optional, tag = "4")]
    pub enable_features: Option<Features>,
    #[prost(message, optional, tag = "5")]
    pub features_enabled: Option<Features>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct OpenChannel {
    #[prost(int32, optional, tag = "1")]
    pub channel_identifier: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub channel_type: Option<String>,
    #[prost(message, optional, tag = "200")]
    pub contact_request: Option<ContactRequest>,
    #[prost(bytes = "bytes", optional, tag = "7200")]
    pub client_cookie: Option<bytes::Bytes>,
    /// The private-endpoint extension's version (docs/private-mode.md
    /// "Advertising support"), on the auth channel's `OpenChannel`.
    #[prost(uint32, optional, tag = "7300")]
    pub private_endpoint: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ChannelResult {
    #[prost(int32, optional, tag = "1")]
    pub channel_identifier: Option<i32>,
    #[prost(bool, optional, tag = "2")]
    pub opened: Option<bool>,
    #[prost(int32, optional, tag = "3")]
    pub common_error: Option<i32>,
    #[prost(message, optional, tag = "201")]
    pub response: Option<ContactRequestResponse>,
    #[prost(bytes = "bytes", optional, tag = "7200")]
    pub server_cookie: Option<bytes::Bytes>,
    /// As `OpenChannel.private_endpoint`, on the auth channel's `ChannelResult`.
    #[prost(uint32, optional, tag = "7300")]
    pub private_endpoint: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct KeepAlive {
    #[prost(bool, optional, tag = "1")]
    pub response_requested: Option<bool>,
}

/// `EnableFeatures` and `FeaturesEnabled` have the same shape.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Features {
    #[prost(string, repeated, tag = "1")]
    pub feature: Vec<String>,
}

// ---- im.ricochet.auth.hidden-service (§7) ----

#[derive(Clone, PartialEq, Message)]
pub(crate) struct AuthPacketV1 {
    #[prost(message, optional, tag = "1")]
    pub proof: Option<AuthProofV1>,
    #[prost(message, optional, tag = "2")]
    pub result: Option<AuthResult>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct AuthPacketV3 {
    #[prost(message, optional, tag = "1")]
    pub proof: Option<AuthProofV3>,
    #[prost(message, optional, tag = "2")]
    pub result: Option<AuthResult>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct AuthProofV1 {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub public_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct AuthProofV3 {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub signature: Option<Vec<u8>>,
    #[prost(string, optional, tag = "2")]
    pub service_id: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct AuthResult {
    #[prost(bool, optional, tag = "1")]
    pub accepted: Option<bool>,
    #[prost(bool, optional, tag = "2")]
    pub is_known_contact: Option<bool>,
}

// ---- im.ricochet.contact.request (§8) ----

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ContactRequest {
    #[prost(string, optional, tag = "1")]
    pub nickname: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub message_text: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ContactRequestResponse {
    #[prost(int32, optional, tag = "1")]
    pub status: Option<i32>,
}

// ---- im.ricochet.chat (§9) ----

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ChatPacket {
    #[prost(message, optional, tag = "1")]
    pub chat_message: Option<ChatMessage>,
    #[prost(message, optional, tag = "2")]
    pub chat_acknowledge: Option<ChatAcknowledge>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ChatMessage {
    #[prost(string, optional, tag = "1")]
    pub message_text: Option<String>,
    #[prost(uint32, optional, tag = "2")]
    pub message_id: Option<u32>,
    #[prost(int64, optional, tag = "3")]
    pub time_delta: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ChatAcknowledge {
    #[prost(uint32, optional, tag = "1")]
    pub message_id: Option<u32>,
    #[prost(bool, optional, tag = "2")]
    pub accepted: Option<bool>,
}

// ---- im.ricochet.file-transfer (§10) ----

#[derive(Clone, PartialEq, Message)]
pub(crate) struct FilePacket {
    #[prost(message, optional, tag = "1")]
    pub file_header: Option<FileHeader>,
    #[prost(message, optional, tag = "2")]
    pub file_header_ack: Option<FileHeaderAck>,
    #[prost(message, optional, tag = "3")]
    pub file_header_response: Option<FileHeaderResponse>,
    #[prost(message, optional, tag = "4")]
    pub file_chunk: Option<FileChunk>,
    #[prost(message, optional, tag = "5")]
    pub file_chunk_ack: Option<FileChunkAck>,
    #[prost(message, optional, tag = "6")]
    pub file_transfer_complete_notification: Option<FileTransferComplete>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileHeader {
    #[prost(uint32, optional, tag = "1")]
    pub file_id: Option<u32>,
    #[prost(uint64, optional, tag = "2")]
    pub file_size: Option<u64>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub file_hash: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileHeaderAck {
    #[prost(uint32, optional, tag = "1")]
    pub file_id: Option<u32>,
    #[prost(bool, optional, tag = "2")]
    pub accepted: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileHeaderResponse {
    #[prost(uint32, optional, tag = "1")]
    pub file_id: Option<u32>,
    #[prost(int32, optional, tag = "2")]
    pub response: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileChunk {
    #[prost(uint32, optional, tag = "1")]
    pub file_id: Option<u32>,
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub chunk_data: Option<bytes::Bytes>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileChunkAck {
    #[prost(uint32, optional, tag = "1")]
    pub file_id: Option<u32>,
    #[prost(uint64, optional, tag = "2")]
    pub bytes_received: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileTransferComplete {
    #[prost(uint32, optional, tag = "1")]
    pub file_id: Option<u32>,
    #[prost(int32, optional, tag = "2")]
    pub result: Option<i32>,
}

// ---- im.ricochet-rs.private-endpoint (docs/private-mode.md "The channel") ----

/// Not wrapped in a `Packet`: the channel carries this one message.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct PrivateEndpoint {
    #[prost(uint32, optional, tag = "1")]
    pub version: Option<u32>,
    #[prost(string, optional, tag = "2")]
    pub private_address: Option<String>,
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub client_auth_key: Option<bytes::Bytes>,
    #[prost(bool, optional, tag = "4")]
    pub accepts_contact_requests: Option<bool>,
}

/// Counts the `Some` fields of a `Packet` wrapper (§5.1: exactly one).
pub(crate) fn count_set(fields: &[bool]) -> usize {
    fields.iter().filter(|&&set| set).count()
}

/// Encodes a message into a fresh buffer.
pub(crate) fn encode<M: Message>(message: &M) -> bytes::Bytes {
    let mut buf = bytes::BytesMut::with_capacity(message.encoded_len());
    // Encoding into a buffer with room for `encoded_len` bytes cannot fail.
    let _ = message.encode(&mut buf);
    buf.freeze()
}
