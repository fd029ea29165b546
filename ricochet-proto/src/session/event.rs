//! What the session reports to its caller.

use bytes::Bytes;
use ricochet_identity::{ErrorChain, ServiceId};

use super::file::{FileDirection, FileOffer};
use crate::message::CommonError;
use crate::message::chat::MessageId;
use crate::message::contact_request::ResponseStatus;
use crate::message::file::{FileId, FileResponse, TransferResult};
use crate::message::private_endpoint::PrivateEndpoint;
use crate::{ProtocolError, Reaction};

/// Something the caller should know or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Both sides agreed on `version` (§3); the packet layer runs.
    VersionNegotiated {
        /// 1 or 3.
        version: u8,
    },
    /// Server: the client proved that it owns `peer`. Answer with
    /// [`crate::Session::accept_peer`] (saying whether it is a known contact)
    /// or [`crate::Session::refuse_peer`].
    PeerProved {
        /// The client's authenticated service id.
        peer: ServiceId,
    },
    /// Authentication is complete (§7).
    Authenticated {
        /// The peer's service id.
        peer: ServiceId,
        /// Whether the server has the client as a contact. A client that is
        /// not a known contact may only send a contact request.
        known_contact: bool,
    },
    /// Server: the peer asks to become a contact (§8.2). It has been told
    /// `Pending`; answer with [`crate::Session::accept_contact_request`] or
    /// [`crate::Session::reject_contact_request`].
    ContactRequestReceived {
        /// The nickname it suggests (often empty; §8.1 already checked).
        nickname: String,
        /// Its message (may be empty).
        message: String,
    },
    /// Client: the recipient answered our contact request (§8.3).
    ContactRequestAnswered {
        /// Pending, Accepted, Rejected or Error.
        status: ResponseStatus,
    },
    /// The connection now belongs to a known contact: chat and files may
    /// flow (after authentication or an accepted request).
    BecameContact,
    /// A chat message from the peer (already acknowledged).
    ChatReceived {
        /// Its id, for duplicate detection (§9.2); absent if the peer sent none.
        message_id: Option<MessageId>,
        /// The text.
        text: String,
        /// Seconds between composing and sending, ≤ 0 (§9.2).
        time_delta: i64,
        /// Whether this is the first message the peer's current chat channel
        /// delivered. A sender resends what it has not seen acknowledged at
        /// the start of a new channel (§9.2), so a receiver's duplicate
        /// detection starts afresh here.
        first_on_channel: bool,
    },
    /// The peer acknowledged one of our chat messages.
    ChatAcknowledged {
        /// The message.
        message_id: MessageId,
        /// false: the peer refused it.
        accepted: bool,
    },
    /// Our outbound chat channel closed or was refused; these messages were
    /// not acknowledged and should be resent later with the same ids (§9.2).
    ChatChannelClosed {
        /// Unacknowledged message ids, oldest first.
        unacknowledged: Vec<MessageId>,
    },
    /// Download: the peer offers a file. Answer with
    /// [`crate::KnownContact::respond_to_file`].
    FileOffered(FileOffer),
    /// Upload: the receiver's immediate verdict on our header (§10.2 step 2);
    /// `false` ends the transfer.
    FileHeaderAcknowledged {
        /// The transfer.
        file_id: FileId,
        /// Whether the header was acceptable.
        accepted: bool,
    },
    /// Upload: the receiver decided (§10.2 step 3); a rejection ends the transfer.
    FileOfferAnswered {
        /// The transfer.
        file_id: FileId,
        /// The decision.
        response: FileResponse,
    },
    /// Upload: send the chunk that starts at `offset` with
    /// [`crate::KnownContact::send_file_chunk`] (stop-and-wait, §10.2 step 4).
    FileChunkWanted {
        /// The transfer.
        file_id: FileId,
        /// Bytes acknowledged so far.
        offset: u64,
    },
    /// Download: a piece of the file (already acknowledged).
    FileChunkReceived {
        /// The transfer.
        file_id: FileId,
        /// Where it goes in the file.
        offset: u64,
        /// The data.
        data: Bytes,
    },
    /// Download: every byte arrived. Check the hash and call
    /// [`crate::KnownContact::finish_download`].
    FileReceived {
        /// The transfer.
        file_id: FileId,
    },
    /// A transfer is over: finished by the peer, cancelled by either side,
    /// or failed with its channel.
    FileTransferEnded {
        /// The transfer.
        file_id: FileId,
        /// Whether we were sending or receiving.
        direction: FileDirection,
        /// How it ended.
        result: TransferResult,
    },
    /// The peer told us where its private service is and which key it uses
    /// to reach ours (the private-endpoint extension, docs/private-mode.md
    /// "The channel"). Already checked: a v3 address that is not the peer's
    /// public id, and a 32-byte key. Store both, replacing what the peer
    /// sent before, and authorise the key on our private service if it
    /// changed. Only with [`crate::SessionConfig::private_endpoint`] on.
    PrivateEndpointReceived(PrivateEndpoint),
    /// The peer broke a rule; `reaction` says what the session did about it.
    /// (Errors that close the connection arrive as [`Event::Closed`].)
    ProtocolViolation {
        /// What happened.
        error: ProtocolError,
        /// What was done.
        reaction: Reaction,
    },
    /// A bug in this crate was caught instead of panicking.
    InternalError {
        /// What went wrong.
        what: &'static str,
    },
    /// The session is over; close the stream after writing what
    /// `poll_transmit` still returns.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Our caller closed it.
    Local,
    /// Our contact request ended without acceptance (§8.3).
    ContactRequestEnded(ResponseStatus),
    /// The peer closed the channel of our contact request before a final
    /// answer; the connection had no other purpose (§8.3).
    ContactRequestChannelClosed,
    /// The peer refused to open the channel of our contact request with
    /// this error and no answer to the request (§8.3): not an answer, but a
    /// peer that could not take it on this connection.
    ContactRequestChannelRefused(CommonError),
    /// The peer broke a rule whose reaction is closing the connection.
    Protocol(ProtocolError),
}

impl std::fmt::Display for CloseReason {
    /// A sentence for logs, causes included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local => f.write_str("we closed it"),
            Self::ContactRequestEnded(status) => {
                write!(f, "our contact request ended ({status:?})")
            }
            Self::ContactRequestChannelClosed => {
                f.write_str("the peer closed our contact request without answering")
            }
            Self::ContactRequestChannelRefused(error) => write!(
                f,
                "the peer refused the channel of our contact request ({error:?}) without answering"
            ),
            Self::Protocol(error) => {
                write!(f, "the peer broke the protocol: {}", ErrorChain(error))
            }
        }
    }
}
