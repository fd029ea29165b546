//! Channel `im.ricochet.file-transfer` (spec §10): per-transfer state in
//! both directions. The session moves chunks as bytes; reading, writing and
//! hashing files is the caller's part.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::channels::{ChannelState, Kind};
use super::event::Event;
use super::{Direction, Session};
use crate::frame::Frame;
use crate::message::control::OpenChannel;
use crate::message::file::{
    FILE_HASH_LEN, FileHeader, FileId, FileMessage, FileResponse, MAX_CHUNK_LEN, TransferResult,
};
use crate::message::{ChannelId, ChannelType};
use crate::{ApiMisuse, ProtocolError, Reaction};

/// Whether we send or receive a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileDirection {
    /// We send it (on our outbound file channel).
    Upload,
    /// We receive it (on the peer's file channel).
    Download,
}

/// A file the peer offers us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOffer {
    /// The transfer.
    pub file_id: FileId,
    /// A checked base name (§10.2).
    pub name: String,
    /// Size in bytes (more than 0).
    pub size: u64,
    /// SHA3-512 of the whole file.
    pub hash: [u8; FILE_HASH_LEN],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadStage {
    /// Header sent; waiting for `FileHeaderAck` and `FileHeaderResponse`.
    Offered,
    /// Accepted; `acked` bytes confirmed, `in_flight` more sent.
    Sending { acked: u64, in_flight: u64 },
    /// Every byte acknowledged; waiting for the receiver's verdict.
    AllSent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownloadStage {
    /// Offered to our caller, who has not answered yet.
    Offered,
    /// Accepted; `received` bytes so far.
    Receiving { received: u64 },
    /// Every byte arrived; the caller checks the hash.
    Received,
}

#[derive(Debug)]
pub(super) struct Upload {
    size: u64,
    stage: UploadStage,
}

#[derive(Debug)]
pub(super) struct Download {
    size: u64,
    stage: DownloadStage,
}

/// The per-channel state of a file channel.
#[derive(Debug)]
pub(super) enum FileChannel {
    /// Ours: we upload.
    Outbound {
        /// Headers waiting for the channel to open.
        queued: VecDeque<FileHeader>,
        uploads: BTreeMap<FileId, Upload>,
    },
    /// The peer's: we download.
    Inbound {
        downloads: BTreeMap<FileId, Download>,
    },
}

impl Session {
    /// §10 and §12.2: accept a known contact's file channel (refusing it
    /// makes Refresh's Rust client panic); one per direction.
    pub(super) fn open_inbound_file(&mut self, open: &OpenChannel) {
        self.open_inbound_contact_channel(
            open,
            Kind::File(FileChannel::Inbound {
                downloads: BTreeMap::new(),
            }),
        );
    }

    /// The file channel that carries transfers of `direction`.
    fn transfer_channel(
        &self,
        direction: FileDirection,
        file_id: FileId,
    ) -> Result<ChannelId, ApiMisuse> {
        let channel_direction = match direction {
            FileDirection::Upload => Direction::Outbound,
            FileDirection::Download => Direction::Inbound,
        };
        self.channels
            .find(&ChannelType::FileTransfer, channel_direction)
            .ok_or(ApiMisuse::NoSuchTransfer(file_id))
    }

    fn send_file_message(&mut self, id: ChannelId, message: &FileMessage) {
        self.send_frame(Frame {
            channel: id,
            payload: message.encode(),
        });
    }

    pub(super) fn offer_file_inner(&mut self, header: FileHeader) -> Result<(), ApiMisuse> {
        header.validate().map_err(ApiMisuse::BadFileHeader)?;
        let id = self.outbound_channel(ChannelType::FileTransfer, || {
            Kind::File(FileChannel::Outbound {
                queued: VecDeque::new(),
                uploads: BTreeMap::new(),
            })
        })?;
        let Some(channel) = self.channels.get_mut(id) else {
            return Err(ApiMisuse::Closed);
        };
        let open = channel.state == ChannelState::Open;
        let Kind::File(FileChannel::Outbound { queued, uploads }) = &mut channel.kind else {
            return Err(ApiMisuse::Closed);
        };
        if uploads.contains_key(&header.file_id) {
            return Err(ApiMisuse::DuplicateFileId(header.file_id));
        }
        uploads.insert(
            header.file_id,
            Upload {
                size: header.file_size,
                stage: UploadStage::Offered,
            },
        );
        if open {
            self.send_file_message(id, &FileMessage::Header(header));
        } else {
            queued.push_back(header);
        }
        Ok(())
    }

    pub(super) fn file_channel_opened(&mut self, id: ChannelId) {
        let Some(super::channels::Channel {
            kind: Kind::File(FileChannel::Outbound { queued, .. }),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        let queued = std::mem::take(queued);
        for header in queued {
            self.send_file_message(id, &FileMessage::Header(header));
        }
    }

    /// Every transfer of a channel that is gone has failed.
    pub(super) fn file_channel_gone(&mut self, file: FileChannel) {
        let (direction, ids): (_, Vec<FileId>) = match file {
            FileChannel::Outbound { uploads, .. } => {
                (FileDirection::Upload, uploads.into_keys().collect())
            }
            FileChannel::Inbound { downloads } => {
                (FileDirection::Download, downloads.into_keys().collect())
            }
        };
        for file_id in ids {
            self.events.push_back(Event::FileTransferEnded {
                file_id,
                direction,
                result: TransferResult::Failure,
            });
        }
    }

    /// §10.3: errors that are fatal to the whole file channel.
    fn file_channel_error(&mut self, id: ChannelId, file_id: FileId, reason: &'static str) {
        self.channel_violation(id, ProtocolError::FileTransfer { file_id, reason });
    }

    pub(super) fn handle_file_packet(&mut self, id: ChannelId, payload: Bytes) {
        let message = match FileMessage::decode(payload) {
            Ok(message) => message,
            Err(error) => return self.malformed_packet(id, error),
        };
        let Some(super::channels::Channel {
            kind: Kind::File(state),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        match state {
            FileChannel::Inbound { .. } => self.handle_download_message(id, message),
            FileChannel::Outbound { .. } => self.handle_upload_message(id, message),
        }
    }

    fn downloads(&mut self, id: ChannelId) -> Option<&mut BTreeMap<FileId, Download>> {
        match self.channels.get_mut(id) {
            Some(super::channels::Channel {
                kind: Kind::File(FileChannel::Inbound { downloads }),
                ..
            }) => Some(downloads),
            _ => None,
        }
    }

    fn uploads(&mut self, id: ChannelId) -> Option<&mut BTreeMap<FileId, Upload>> {
        match self.channels.get_mut(id) {
            Some(super::channels::Channel {
                kind: Kind::File(FileChannel::Outbound { uploads, .. }),
                ..
            }) => Some(uploads),
            _ => None,
        }
    }

    /// Messages on the peer's file channel, where we receive.
    fn handle_download_message(&mut self, id: ChannelId, message: FileMessage) {
        let file_id = message.file_id();
        let limit = self.config.max_incoming_transfers;
        let Some(downloads) = self.downloads(id) else {
            return;
        };
        match message {
            FileMessage::Header(header) => {
                if downloads.contains_key(&file_id) {
                    return self.file_channel_error(id, file_id, "duplicate file id");
                }
                let verdict = if downloads.len() >= limit {
                    Err(ProtocolError::TooManyTransfers { limit })
                } else {
                    header.validate().map_err(ProtocolError::BadFileHeader)
                };
                if let Err(error) = verdict {
                    // §10.2 step 2 and §10.4: refuse with the file id set.
                    self.send_file_message(
                        id,
                        &FileMessage::HeaderAck {
                            file_id,
                            accepted: false,
                        },
                    );
                    self.events.push_back(Event::ProtocolViolation {
                        error,
                        reaction: Reaction::Refuse,
                    });
                    return;
                }
                let Ok(hash) = <[u8; FILE_HASH_LEN]>::try_from(header.file_hash.as_ref()) else {
                    return;
                };
                downloads.insert(
                    file_id,
                    Download {
                        size: header.file_size,
                        stage: DownloadStage::Offered,
                    },
                );
                self.send_file_message(
                    id,
                    &FileMessage::HeaderAck {
                        file_id,
                        accepted: true,
                    },
                );
                self.events.push_back(Event::FileOffered(FileOffer {
                    file_id,
                    name: header.name,
                    size: header.file_size,
                    hash,
                }));
            }
            FileMessage::Chunk { data, .. } => {
                // Chunks for unknown transfers are ignored (§10.3).
                let Some(download) = downloads.get_mut(&file_id) else {
                    return;
                };
                let DownloadStage::Receiving { received } = download.stage else {
                    return self.file_channel_error(
                        id,
                        file_id,
                        "a chunk before acceptance or after the end",
                    );
                };
                let total = received.saturating_add(data.len() as u64);
                if total > download.size {
                    return self.file_channel_error(
                        id,
                        file_id,
                        "more bytes than the announced size",
                    );
                }
                let complete = total == download.size;
                download.stage = if complete {
                    DownloadStage::Received
                } else {
                    DownloadStage::Receiving { received: total }
                };
                self.send_file_message(
                    id,
                    &FileMessage::ChunkAck {
                        file_id,
                        bytes_received: total,
                    },
                );
                self.events.push_back(Event::FileChunkReceived {
                    file_id,
                    offset: received,
                    data,
                });
                if complete {
                    self.events.push_back(Event::FileReceived { file_id });
                }
            }
            FileMessage::Complete { result, .. } => {
                if downloads.remove(&file_id).is_some() {
                    self.events.push_back(Event::FileTransferEnded {
                        file_id,
                        direction: FileDirection::Download,
                        result,
                    });
                }
            }
            FileMessage::HeaderAck { .. }
            | FileMessage::HeaderResponse { .. }
            | FileMessage::ChunkAck { .. } => {
                self.file_channel_error(id, file_id, "an uploader's message sent to the uploader")
            }
        }
    }

    /// Messages on our file channel, where we send.
    fn handle_upload_message(&mut self, id: ChannelId, message: FileMessage) {
        let file_id = message.file_id();
        let Some(uploads) = self.uploads(id) else {
            return;
        };
        // Messages for unknown transfers are ignored (§10.3).
        let Some(upload) = uploads.get_mut(&file_id) else {
            if matches!(message, FileMessage::Header(_) | FileMessage::Chunk { .. }) {
                self.file_channel_error(id, file_id, "a receiver's message sent to the receiver");
            }
            return;
        };
        match message {
            FileMessage::HeaderAck { accepted, .. } => {
                if upload.stage != UploadStage::Offered {
                    return;
                }
                if !accepted {
                    uploads.remove(&file_id);
                }
                self.events
                    .push_back(Event::FileHeaderAcknowledged { file_id, accepted });
            }
            FileMessage::HeaderResponse { response, .. } => {
                if upload.stage != UploadStage::Offered {
                    return self.file_channel_error(id, file_id, "a second response");
                }
                match response {
                    FileResponse::Accept => {
                        upload.stage = UploadStage::Sending {
                            acked: 0,
                            in_flight: 0,
                        };
                    }
                    FileResponse::Reject => {
                        uploads.remove(&file_id);
                    }
                }
                self.events
                    .push_back(Event::FileOfferAnswered { file_id, response });
                if response == FileResponse::Accept {
                    self.events
                        .push_back(Event::FileChunkWanted { file_id, offset: 0 });
                }
            }
            FileMessage::ChunkAck { bytes_received, .. } => {
                let UploadStage::Sending { acked, in_flight } = upload.stage else {
                    return self.file_channel_error(id, file_id, "an ack with nothing in flight");
                };
                // §10.2 step 4: the ack must count exactly what we sent.
                if in_flight == 0 || bytes_received != acked + in_flight {
                    return self.file_channel_error(
                        id,
                        file_id,
                        "an ack for bytes we did not send",
                    );
                }
                if bytes_received == upload.size {
                    upload.stage = UploadStage::AllSent;
                } else {
                    upload.stage = UploadStage::Sending {
                        acked: bytes_received,
                        in_flight: 0,
                    };
                    self.events.push_back(Event::FileChunkWanted {
                        file_id,
                        offset: bytes_received,
                    });
                }
            }
            FileMessage::Complete { result, .. } => {
                uploads.remove(&file_id);
                self.events.push_back(Event::FileTransferEnded {
                    file_id,
                    direction: FileDirection::Upload,
                    result,
                });
            }
            FileMessage::Header(_) | FileMessage::Chunk { .. } => {
                self.file_channel_error(id, file_id, "a receiver's message sent to the receiver")
            }
        }
    }

    pub(super) fn send_file_chunk_inner(
        &mut self,
        file_id: FileId,
        data: Bytes,
    ) -> Result<(), ApiMisuse> {
        let id = self.transfer_channel(FileDirection::Upload, file_id)?;
        let upload = self
            .uploads(id)
            .and_then(|uploads| uploads.get_mut(&file_id))
            .ok_or(ApiMisuse::NoSuchTransfer(file_id))?;
        let UploadStage::Sending {
            acked,
            in_flight: 0,
        } = upload.stage
        else {
            return Err(ApiMisuse::NoSuchTransfer(file_id));
        };
        let len = data.len() as u64;
        if data.is_empty() || data.len() > MAX_CHUNK_LEN || acked + len > upload.size {
            return Err(ApiMisuse::ChunkDoesNotFit);
        }
        upload.stage = UploadStage::Sending {
            acked,
            in_flight: len,
        };
        self.send_file_message(id, &FileMessage::Chunk { file_id, data });
        Ok(())
    }

    pub(super) fn respond_to_file_inner(
        &mut self,
        file_id: FileId,
        response: FileResponse,
    ) -> Result<(), ApiMisuse> {
        let id = self.transfer_channel(FileDirection::Download, file_id)?;
        let downloads = self
            .downloads(id)
            .ok_or(ApiMisuse::NoSuchTransfer(file_id))?;
        let download = downloads
            .get_mut(&file_id)
            .filter(|d| d.stage == DownloadStage::Offered)
            .ok_or(ApiMisuse::NoSuchTransfer(file_id))?;
        match response {
            FileResponse::Accept => download.stage = DownloadStage::Receiving { received: 0 },
            FileResponse::Reject => {
                downloads.remove(&file_id);
            }
        }
        self.send_file_message(id, &FileMessage::HeaderResponse { file_id, response });
        Ok(())
    }

    pub(super) fn finish_download_inner(
        &mut self,
        file_id: FileId,
        hash_matches: bool,
    ) -> Result<(), ApiMisuse> {
        let id = self.transfer_channel(FileDirection::Download, file_id)?;
        let downloads = self
            .downloads(id)
            .ok_or(ApiMisuse::NoSuchTransfer(file_id))?;
        if downloads.get(&file_id).map(|d| d.stage) != Some(DownloadStage::Received) {
            return Err(ApiMisuse::NoSuchTransfer(file_id));
        }
        downloads.remove(&file_id);
        // Like Refresh's Rust code, report a bad hash as Failure (§10.2 step 5).
        let result = if hash_matches {
            TransferResult::Success
        } else {
            TransferResult::Failure
        };
        self.send_file_message(id, &FileMessage::Complete { file_id, result });
        Ok(())
    }

    pub(super) fn cancel_file_inner(
        &mut self,
        direction: FileDirection,
        file_id: FileId,
    ) -> Result<(), ApiMisuse> {
        let id = self.transfer_channel(direction, file_id)?;
        let removed = match direction {
            FileDirection::Upload => self.uploads(id).and_then(|u| u.remove(&file_id)).is_some(),
            FileDirection::Download => self
                .downloads(id)
                .and_then(|d| d.remove(&file_id))
                .is_some(),
        };
        if !removed {
            return Err(ApiMisuse::NoSuchTransfer(file_id));
        }
        // A header still waiting for our channel to open is simply dropped:
        // nothing may be sent on a channel before it is open (§12.1 item 5).
        if let Some(super::channels::Channel {
            state: ChannelState::Opening,
            kind: Kind::File(FileChannel::Outbound { queued, .. }),
            ..
        }) = self.channels.get_mut(id)
        {
            queued.retain(|header| header.file_id != file_id);
            return Ok(());
        }
        self.send_file_message(
            id,
            &FileMessage::Complete {
                file_id,
                result: TransferResult::Cancelled,
            },
        );
        Ok(())
    }
}
