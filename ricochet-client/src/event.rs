//! The client's event stream and the handles some events carry.

use std::path::PathBuf;
use std::sync::Arc;

use ricochet_identity::RicochetId;
use ricochet_proto::FileDirection;
use tokio::sync::mpsc;

use crate::client::{Call, WeakClient};
use crate::error::ClientError;
use crate::model::{
    ContactRequest, ContactStatus, Message, MessageId, MessageStatus, TransferId, TransferOutcome,
};

/// Something the application should know about. Read them with
/// [`Events::next`]; the client keeps working while nobody reads, but the
/// unread events pile up in memory.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A contact's status changed: it came online, went offline, answered a
    /// request, was blocked, ….
    ContactStatusChanged {
        /// The contact.
        contact: RicochetId,
        /// Its new status.
        status: ContactStatus,
    },
    /// Someone asks to become our contact. Answer through the handle.
    ContactRequestReceived(IncomingContactRequest),
    /// A contact answered our request.
    ContactRequestAnswered {
        /// The contact.
        contact: RicochetId,
        /// Its answer.
        answer: RequestAnswer,
    },
    /// Our contact request ended without an answer we can act on; the
    /// contact's status is now [`ContactStatus::RequestFailed`] and the
    /// request is not sent again. A new
    /// [`crate::Client::send_contact_request`] tries again.
    ContactRequestFailed {
        /// The contact.
        contact: RicochetId,
        /// Why (its `Display` is a sentence for the user).
        reason: RequestFailure,
    },
    /// A contact no longer has us as a contact: its client said so when we
    /// connected (it removed us, or lost its contact list). Its status is
    /// now [`ContactStatus::Rejected`]; messages to it are not delivered
    /// (those waiting fail with [`crate::FailureReason::ContactGone`]) until
    /// a new contact request is accepted.
    ContactRemovedUs {
        /// The contact.
        contact: RicochetId,
    },
    /// A contact sent us a message (already stored and acknowledged).
    MessageReceived(Message),
    /// One of our messages moved on (queued → sent → acknowledged, or failed).
    MessageStatusChanged {
        /// The contact it is for.
        contact: RicochetId,
        /// The message.
        message: MessageId,
        /// Its new status.
        status: MessageStatus,
    },
    /// A contact offers us a file. Answer through the handle.
    FileOffered(IncomingFile),
    /// Bytes of a transfer moved.
    FileProgress {
        /// The transfer.
        transfer: TransferId,
        /// The contact on the other end.
        contact: RicochetId,
        /// Whether we send or receive.
        direction: FileDirection,
        /// Bytes confirmed so far.
        bytes: u64,
        /// The file's size.
        total: u64,
    },
    /// A transfer ended.
    FileTransferFinished {
        /// The transfer.
        transfer: TransferId,
        /// The contact on the other end.
        contact: RicochetId,
        /// Whether we sent or received.
        direction: FileDirection,
        /// How it ended.
        outcome: TransferOutcome,
    },
    /// Something failed in the background that the user should hear about
    /// (the profile database, publishing our onion service, …).
    Error {
        /// The contact concerned, if any.
        contact: Option<RicochetId>,
        /// What went wrong.
        error: Arc<ClientError>,
    },
}

/// A contact's answer to our request (spec §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestAnswer {
    /// It got the request; its user has not decided yet.
    Pending,
    /// Accepted (explicitly, or implicitly by connecting to us as a contact).
    Accepted,
    /// Rejected; the request is not sent again.
    Rejected,
}

/// Why our contact request failed ([`Event::ContactRequestFailed`]).
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
}

/// The stream of [`Event`]s of one client.
#[derive(Debug)]
pub struct Events {
    pub(crate) receiver: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client has shut down and every event
    /// was read.
    pub async fn next(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }
}

/// A contact request waiting for our answer; it stays stored (see
/// [`crate::Client::contact_requests`]) until answered.
#[derive(Debug, Clone)]
pub struct IncomingContactRequest {
    pub(crate) request: ContactRequest,
    pub(crate) client: WeakClient,
}

impl IncomingContactRequest {
    /// The request.
    pub fn request(&self) -> &ContactRequest {
        &self.request
    }

    /// Who asks.
    pub fn from(&self) -> RicochetId {
        self.request.from
    }

    /// Accepts: the sender becomes a contact called `nickname` (made unique
    /// among our contacts if needed).
    pub async fn accept(&self, nickname: &str) -> Result<(), ClientError> {
        let client = self.client.upgrade()?;
        client
            .answer_contact_request(self.request.from, Answer::Accept(nickname.to_owned()))
            .await
    }

    /// Rejects: the sender is told so and blocked, so that its later
    /// requests are refused automatically (spec §8.2).
    pub async fn reject(&self) -> Result<(), ClientError> {
        let client = self.client.upgrade()?;
        client
            .answer_contact_request(self.request.from, Answer::Reject)
            .await
    }

    /// Blocks the sender without telling it more than a rejection.
    pub async fn block(&self) -> Result<(), ClientError> {
        let client = self.client.upgrade()?;
        client.block(self.request.from).await
    }
}

/// How the user answered a contact request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Accept(String),
    Reject,
}

/// A file a contact offers us.
#[derive(Debug, Clone)]
pub struct IncomingFile {
    pub(crate) transfer: TransferId,
    pub(crate) contact: RicochetId,
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) client: WeakClient,
}

impl IncomingFile {
    /// The transfer.
    pub fn transfer(&self) -> TransferId {
        self.transfer
    }

    /// Who offers it.
    pub fn contact(&self) -> RicochetId {
        self.contact
    }

    /// Its base name as the sender gave it (checked: no path separators,
    /// no `..`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Accepts it; it is written to `<destination>.part` and renamed to
    /// `destination` once its SHA3-512 hash checks. `destination` must not
    /// exist yet.
    pub async fn accept(&self, destination: impl Into<PathBuf>) -> Result<(), ClientError> {
        let destination = destination.into();
        if tokio::fs::try_exists(&destination).await.unwrap_or(true) {
            return Err(ClientError::DestinationExists { path: destination });
        }
        let client = self.client.upgrade()?;
        client
            .call(|reply| Call::AnswerFile {
                transfer: self.transfer,
                destination: Some(destination),
                reply,
            })
            .await
    }

    /// Declines it.
    pub async fn reject(&self) -> Result<(), ClientError> {
        let client = self.client.upgrade()?;
        client
            .call(|reply| Call::AnswerFile {
                transfer: self.transfer,
                destination: None,
                reply,
            })
            .await
    }
}
