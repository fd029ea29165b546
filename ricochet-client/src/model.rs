//! Plain data the client hands out: contacts, messages and their states.

use std::time::SystemTime;

use ricochet_identity::{Generation, RicochetId};
use ricochet_proto::message::chat::ChatText;

use crate::error::DiskFull;

/// A contact's standing, as the contact list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContactStatus {
    /// A contact with an authenticated connection: messages flow now.
    Online,
    /// A contact without a connection; messages to it are queued.
    Offline,
    /// We asked to become its contact and it has not answered yet; the
    /// request is retried while it stays pending (spec §8.3).
    RequestPending,
    /// It rejected our request, or removed us from its contacts (§11.4);
    /// nothing is sent until we make a new request.
    Rejected,
    /// It answered our request with `Error` (for instance a nickname it did
    /// not accept); a new request may succeed.
    RequestFailed,
    /// We blocked it: its connections and requests are refused.
    Blocked,
}

impl std::fmt::Display for ContactStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::RequestPending => "request pending",
            Self::Rejected => "rejected",
            Self::RequestFailed => "request failed",
            Self::Blocked => "blocked",
        })
    }
}

/// A contact in the contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Contact {
    /// Its `ricochet:` id, which decides the protocol generation.
    pub id: RicochetId,
    /// The name we gave it (never sent to it).
    pub nickname: String,
    /// Online, offline, pending, ….
    pub status: ContactStatus,
}

impl Contact {
    /// The protocol generation spoken with this contact.
    pub fn generation(&self) -> Generation {
        self.id.generation()
    }
}

/// A contact request someone sent us, waiting for our answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContactRequest {
    /// Who asks.
    pub from: RicochetId,
    /// The nickname it suggests for itself (often empty; checked against the
    /// rules of spec §8.1).
    pub nickname: String,
    /// Its message (may be empty).
    pub message: String,
    /// When it arrived (the latest time, if it was repeated).
    pub received_at: SystemTime,
}

/// The number of a message in the profile database; unique within a
/// profile, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) i64);

impl MessageId {
    /// The number as stored.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Where an outgoing message is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageStatus {
    /// Stored; waiting for the contact to be online (or for the current
    /// connection to take it again after a reconnect).
    Queued,
    /// Written to the contact's connection; no acknowledgement yet.
    Sent,
    /// The contact acknowledged it (spec §9.2): it has it.
    Acknowledged,
    /// It will not be delivered.
    Failed(FailureReason),
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Queued => f.write_str("queued"),
            Self::Sent => f.write_str("sent"),
            Self::Acknowledged => f.write_str("acknowledged"),
            Self::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

impl MessageStatus {
    /// Whether the status can no longer change.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Acknowledged | Self::Failed(_))
    }
}

/// Why a message failed. Its `Display` is a sentence for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FailureReason {
    /// The contact received it and refused it (`accepted = false`, §9.2):
    /// its client found it empty, too long, or otherwise unacceptable.
    #[error("their client refused it (it may be too long or otherwise not acceptable to it)")]
    RefusedByPeer,
    /// The contact was removed, blocked, or rejected us before it went out.
    #[error("not delivered: they are no longer a contact (removed, blocked, or they removed us)")]
    ContactGone,
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageDirection {
    /// We sent it.
    Outgoing,
    /// The contact sent it.
    Incoming,
}

/// A message of a conversation, as stored in the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// Its number in the profile.
    pub id: MessageId,
    /// The contact the conversation is with.
    pub contact: RicochetId,
    /// Who sent it.
    pub direction: MessageDirection,
    /// The text (at most 2000 UTF-16 units; longer texts were split).
    pub text: String,
    /// Outgoing: when it was written. Incoming: when the sender says it was
    /// written (arrival time plus the sender's non-positive `time_delta`).
    pub time: SystemTime,
    /// Outgoing: its delivery status. Incoming: always `Acknowledged`.
    pub status: MessageStatus,
}

/// The number of a file transfer, unique within a running client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub(crate) u64);

impl TransferId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// How a file transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferOutcome {
    /// Every byte arrived and the SHA3-512 hash matched. For a download,
    /// `path` is where the file now is; for an upload, the file we sent.
    Completed {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The receiver declined the offer.
    Rejected,
    /// One side cancelled it.
    Cancelled {
        /// Whether the contact cancelled (or we did).
        by_peer: bool,
    },
    /// It failed.
    Failed(TransferFailure),
}

/// Why a file transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferFailure {
    /// The received file's SHA3-512 hash differs from the offer's; the file
    /// was deleted (spec §10.2 step 5).
    #[error("the file arrived damaged (its hash differs from the offer's) and was deleted")]
    HashMismatch,
    /// The receiver reported a failure (for instance its hash check failed).
    #[error("the contact could not take the file")]
    PeerReportedFailure,
    /// The connection to the contact closed before the transfer finished.
    #[error("the connection closed before the transfer finished")]
    ConnectionLost,
    /// Reading or writing the file failed.
    #[error("{message}")]
    Io {
        /// What went wrong, for people.
        message: String,
    },
    /// The disk of the download's destination is full (or had too little
    /// room for the offered size when we accepted): what was received is
    /// deleted and the sender told the transfer failed; once there is room
    /// the contact can send the file again.
    #[error(transparent)]
    DiskFull(DiskFull),
}

/// A contact's answer to our request (spec §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestAnswer {
    /// Accepted (explicitly, or implicitly by connecting to us as a contact).
    Accepted,
    /// Rejected; the request is not sent again.
    Rejected,
}

impl std::fmt::Display for RequestAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        })
    }
}

/// Why our contact request failed ([`crate::Event::ContactRequestFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RequestFailure {
    /// The contact's client answered `Error`: it could not take the
    /// request (for instance our nickname or message was not acceptable to
    /// it, or it is one of its own identities).
    #[error(
        "their client could not take the request (it may not accept our nickname or message); \
         try again with a shorter message"
    )]
    RefusedByPeer,
    /// The contact's client answered with something that is not a valid
    /// answer to a contact request.
    #[error("their client answered with something that is not a valid answer to a contact request")]
    BadAnswer,
    /// The contact's client closed the request (its channel or the
    /// connection) without answering, this many times in a row.
    #[error(
        "their client closed the connection {attempts} times without answering the request; \
         it may not support contact requests"
    )]
    NoAnswer {
        /// Attempts made.
        attempts: u32,
    },
    /// The contact's client refused to open the channel of our request,
    /// without answering it, this many times in a row (its last refusal;
    /// earlier tries may have ended otherwise without an answer). A client
    /// does so while it is busy with the connection's authentication, or
    /// when it does not take requests over this kind of connection.
    #[error(
        "their client refused to take the request {attempts} times; it may be busy or not \
         accept requests now; send it again later"
    )]
    ChannelRefused {
        /// Attempts made.
        attempts: u32,
    },
}

/// Counters of a running client, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections in every state (dialling, authenticating, carrying
    /// a request, carrying chat).
    pub connections: usize,
    /// Connections that carry a contact's chat (one per online contact).
    pub contact_connections: usize,
}

/// Private mode as it stands: whether we accept contact requests, and who
/// reaches us how (see [`crate::Client::private_mode`] and
/// docs/private-mode.md).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrivateModeState {
    /// Whether our public service is published: strangers who know our id
    /// can send contact requests, and can tell whether we are online.
    pub accepting_contact_requests: bool,
    /// The address of our private service (`None` for a profile without a
    /// v3 identity). It is no secret, since only contacts that hold a key
    /// can find the service, but there is no reason to hand it out either:
    /// contacts learn it by themselves. For diagnostics and tests.
    pub private_service: Option<crate::ServiceId>,
    /// Contacts that told us of their private service and hold a key to
    /// ours: they reach us, and we them, whatever this setting.
    pub reachable_privately: Vec<Contact>,
    /// Contacts that know only our public service (Ricochet Refresh,
    /// Ricochet 1.x, or not yet met since they were added): with contact
    /// requests off they cannot reach us, and we reach them only while
    /// their own public service is up.
    pub public_only: Vec<Contact>,
}

/// The longest text one chat message carries: 2000 UTF-16 code units
/// (spec §9.2), counted by [`message_len`]. [`crate::Client::send_message`]
/// sends a longer text as several messages, cut by [`split_message`].
pub const MAX_MESSAGE_UTF16: usize = ricochet_proto::message::chat::MAX_CHAT_TEXT_UTF16;

/// The length of `text` as the limit counts it, in UTF-16 code units (what
/// a UI shows next to [`MAX_MESSAGE_UTF16`]).
pub fn message_len(text: &str) -> usize {
    ricochet_proto::message::utf16_len(text)
}

/// `text` cut into the messages [`crate::Client::send_message`] sends: in
/// order, each at most [`MAX_MESSAGE_UTF16`] long, never inside a
/// character. An empty text gives none.
pub fn split_message(text: &str) -> Vec<String> {
    ChatText::split(text)
        .into_iter()
        .map(ChatText::into_string)
        .collect()
}
