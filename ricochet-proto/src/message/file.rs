//! Channel `im.ricochet.file-transfer` (spec §10, protocol 3 only).
//!
//! Every sub-message field is required here, as in Ricochet Refresh's C++
//! code: a missing one is a decode error, which is fatal to the channel.

use bytes::Bytes;

use super::{decode_pb, exactly_one, required};
use crate::{DecodeError, pb};

/// Largest chunk of file data in one `FileChunk` (§10.1: 63 KiB).
pub const MAX_CHUNK_LEN: usize = 63 * 1024;
/// Size of `FileHeader.file_hash`: SHA3-512 of the whole file.
pub const FILE_HASH_LEN: usize = 64;

/// A transfer's id, chosen by the sender, unique per sender and channel.
pub type FileId = u32;

/// A packet on a file-transfer channel: `FilePacket` with exactly one field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileMessage {
    /// Uploader → receiver: offers a file.
    Header(FileHeader),
    /// Receiver → uploader, at once: whether the header was well-formed.
    HeaderAck {
        /// The transfer.
        file_id: FileId,
        /// false: the name or hash was bad.
        accepted: bool,
    },
    /// Receiver → uploader, once the user decided.
    HeaderResponse {
        /// The transfer.
        file_id: FileId,
        /// The decision.
        response: FileResponse,
    },
    /// Uploader → receiver: the next piece of the file.
    Chunk {
        /// The transfer.
        file_id: FileId,
        /// At most [`MAX_CHUNK_LEN`] bytes.
        data: Bytes,
    },
    /// Receiver → uploader: the total received so far.
    ChunkAck {
        /// The transfer.
        file_id: FileId,
        /// Cumulative bytes received.
        bytes_received: u64,
    },
    /// Either way: the transfer is over.
    Complete {
        /// The transfer.
        file_id: FileId,
        /// How it ended.
        result: TransferResult,
    },
}

/// `FileHeader`, as received; [`FileHeader::validate`] applies §10.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// The transfer.
    pub file_id: FileId,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// The file's base name.
    pub name: String,
    /// SHA3-512 of the whole file (64 bytes when valid).
    pub file_hash: Bytes,
}

/// Why a `FileHeader` is refused with `FileHeaderAck{accepted=false}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileHeaderError {
    /// Empty, or containing `/`, `\`, `..` or a NUL (§10.2: a base name).
    #[error("the file name {name:?} is not a plain base name")]
    BadName {
        /// The name received.
        name: String,
    },
    /// The hash is not 64 bytes.
    #[error("the file hash has {len} bytes; SHA3-512 has 64")]
    BadHash {
        /// Its size.
        len: usize,
    },
    /// Zero-byte files are never sent by Refresh and are refused.
    #[error("the file is empty")]
    EmptyFile,
}

/// Longest file name we accept in a [`FileHeader`], in bytes (UTF-8):
/// the limit of ext4, APFS and NTFS (255).
pub const MAX_FILE_NAME_LEN: usize = 255;

impl FileHeader {
    /// Checks the header rules of §10.2, and two of ours: a name longer
    /// than [`MAX_FILE_NAME_LEN`] bytes (no common file system can store
    /// it) or with control characters (they would reach a user's terminal
    /// or file manager) is refused like any other bad name.
    pub fn validate(&self) -> Result<(), FileHeaderError> {
        let name = &self.name;
        let bad_name = name.is_empty()
            || name == "."
            || name.contains("..")
            || name.contains(['/', '\\', '\0'])
            || name.len() > MAX_FILE_NAME_LEN
            || name.chars().any(char::is_control);
        if bad_name {
            return Err(FileHeaderError::BadName { name: name.clone() });
        }
        if self.file_hash.len() != FILE_HASH_LEN {
            return Err(FileHeaderError::BadHash {
                len: self.file_hash.len(),
            });
        }
        if self.file_size == 0 {
            return Err(FileHeaderError::EmptyFile);
        }
        Ok(())
    }
}

/// `FileHeaderResponse.response` (§10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileResponse {
    /// 0: send the file.
    Accept,
    /// 1: do not.
    Reject,
}

/// `FileTransferCompleteNotification.result` (§10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferResult {
    /// 0: received in full (Refresh's C++ client says so even on a bad hash).
    Success,
    /// 1: failed.
    Failure,
    /// 2: cancelled by either side.
    Cancelled,
}

impl FileMessage {
    /// The transfer this message is about.
    pub fn file_id(&self) -> FileId {
        match self {
            Self::Header(header) => header.file_id,
            Self::HeaderAck { file_id, .. }
            | Self::HeaderResponse { file_id, .. }
            | Self::Chunk { file_id, .. }
            | Self::ChunkAck { file_id, .. }
            | Self::Complete { file_id, .. } => *file_id,
        }
    }

    /// Decodes a file-channel payload.
    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let packet: pb::FilePacket = decode_pb("FilePacket", payload)?;
        exactly_one(
            "FilePacket",
            &[
                packet.file_header.is_some(),
                packet.file_header_ack.is_some(),
                packet.file_header_response.is_some(),
                packet.file_chunk.is_some(),
                packet.file_chunk_ack.is_some(),
                packet.file_transfer_complete_notification.is_some(),
            ],
        )?;
        if let Some(h) = packet.file_header {
            return Ok(Self::Header(FileHeader {
                file_id: required(h.file_id, "FileHeader", "file_id")?,
                file_size: required(h.file_size, "FileHeader", "file_size")?,
                name: required(h.name, "FileHeader", "name")?,
                file_hash: Bytes::from(required(h.file_hash, "FileHeader", "file_hash")?),
            }));
        }
        if let Some(a) = packet.file_header_ack {
            return Ok(Self::HeaderAck {
                file_id: required(a.file_id, "FileHeaderAck", "file_id")?,
                accepted: a.accepted.unwrap_or(false),
            });
        }
        if let Some(r) = packet.file_header_response {
            let response = match required(r.response, "FileHeaderResponse", "response")? {
                0 => FileResponse::Accept,
                1 => FileResponse::Reject,
                value => {
                    return Err(DecodeError::InvalidEnum {
                        field: "FileHeaderResponse.response",
                        value: i64::from(value),
                    });
                }
            };
            return Ok(Self::HeaderResponse {
                file_id: required(r.file_id, "FileHeaderResponse", "file_id")?,
                response,
            });
        }
        if let Some(c) = packet.file_chunk {
            let data = required(c.chunk_data, "FileChunk", "chunk_data")?;
            if data.len() > MAX_CHUNK_LEN {
                return Err(DecodeError::ChunkTooLarge { len: data.len() });
            }
            return Ok(Self::Chunk {
                file_id: required(c.file_id, "FileChunk", "file_id")?,
                data,
            });
        }
        if let Some(a) = packet.file_chunk_ack {
            return Ok(Self::ChunkAck {
                file_id: required(a.file_id, "FileChunkAck", "file_id")?,
                bytes_received: required(a.bytes_received, "FileChunkAck", "bytes_received")?,
            });
        }
        let c = required(
            packet.file_transfer_complete_notification,
            "FilePacket",
            "file_transfer_complete_notification",
        )?;
        let result = match required(c.result, "FileTransferCompleteNotification", "result")? {
            0 => TransferResult::Success,
            1 => TransferResult::Failure,
            2 => TransferResult::Cancelled,
            value => {
                return Err(DecodeError::InvalidEnum {
                    field: "FileTransferCompleteNotification.result",
                    value: i64::from(value),
                });
            }
        };
        Ok(Self::Complete {
            file_id: required(c.file_id, "FileTransferCompleteNotification", "file_id")?,
            result,
        })
    }

    /// Encodes the packet.
    pub fn encode(&self) -> Bytes {
        let mut packet = pb::FilePacket::default();
        match self {
            Self::Header(h) => {
                packet.file_header = Some(pb::FileHeader {
                    file_id: Some(h.file_id),
                    file_size: Some(h.file_size),
                    name: Some(h.name.clone()),
                    file_hash: Some(h.file_hash.to_vec()),
                });
            }
            Self::HeaderAck { file_id, accepted } => {
                packet.file_header_ack = Some(pb::FileHeaderAck {
                    file_id: Some(*file_id),
                    accepted: Some(*accepted),
                });
            }
            Self::HeaderResponse { file_id, response } => {
                packet.file_header_response = Some(pb::FileHeaderResponse {
                    file_id: Some(*file_id),
                    response: Some(match response {
                        FileResponse::Accept => 0,
                        FileResponse::Reject => 1,
                    }),
                });
            }
            Self::Chunk { file_id, data } => {
                packet.file_chunk = Some(pb::FileChunk {
                    file_id: Some(*file_id),
                    chunk_data: Some(data.clone()),
                });
            }
            Self::ChunkAck {
                file_id,
                bytes_received,
            } => {
                packet.file_chunk_ack = Some(pb::FileChunkAck {
                    file_id: Some(*file_id),
                    bytes_received: Some(*bytes_received),
                });
            }
            Self::Complete { file_id, result } => {
                packet.file_transfer_complete_notification = Some(pb::FileTransferComplete {
                    file_id: Some(*file_id),
                    result: Some(match result {
                        TransferResult::Success => 0,
                        TransferResult::Failure => 1,
                        TransferResult::Cancelled => 2,
                    }),
                });
            }
        }
        pb::encode(&packet)
    }
}
