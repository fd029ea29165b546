//! The client's event stream and the handles some events carry.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ricochet_identity::RicochetId;
use ricochet_proto::FileDirection;
use ricochet_transport::{ServiceStatus, TransportError};
use tokio::sync::mpsc;

use crate::client::WeakClient;
use crate::core::io::{Answer, ApiCall, Notice};
use crate::error::{ClientError, DiskFull};
use crate::model::{
    ContactRequest, ContactStatus, Message, MessageId, MessageStatus, RequestAnswer,
    RequestFailure, TransferId, TransferOutcome,
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
    /// Our contact request reached the contact's client, which now shows
    /// it to its user; the answer comes as [`Event::ContactRequestAnswered`]
    /// (which may take days). Reported once per run of the client.
    ContactRequestDelivered {
        /// The contact.
        contact: RicochetId,
    },
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
    /// A contact (or the recipient of our contact request) could not be
    /// reached. It is offline, or its onion service is not published yet
    /// (it started a moment ago). [`crate::Client::connect_now`] tries at
    /// once.
    DialFailed {
        /// The contact.
        contact: RicochetId,
        /// Why; [`TransportError::kind`] tells "unreachable" from a local
        /// problem, [`crate::ErrorChain`] shows all of it.
        error: Arc<TransportError>,
        /// When we try again, from now; `None` if we do not (the contact
        /// failed the protocol too often; `connect_now` tries anyway).
        retry_in: Option<Duration>,
    },
    /// One of our onion services changed state: peers can reach us once it
    /// is [`ServiceStatus::Published`] (see [`crate::Client::published`]).
    ServiceStatusChanged {
        /// Our id whose service it is.
        id: RicochetId,
        /// Its new state.
        status: ServiceStatus,
    },
    /// Our private service (docs/private-mode.md) changed state: contacts
    /// that hold a key to it reach us through it once it is
    /// [`ServiceStatus::Published`]. It is [`ServiceStatus::Stopped`]
    /// while no contact holds a key (none has told us its own private
    /// service yet). See [`crate::Client::private_service_status`].
    PrivateServiceStatusChanged {
        /// Its new state.
        status: ServiceStatus,
    },
    /// The disk holding the profile is full: what arrives is not stored
    /// (nor acknowledged: peers send it again later), and calls that write
    /// fail with [`crate::StorageError::DiskFull`]. Said once; the client
    /// checks for room every few seconds and carries on by itself
    /// ([`Event::DiskSpaceFreed`]). A full disk is not also reported as
    /// [`Event::Error`].
    DiskFull(DiskFull),
    /// There is room on the disk again (after [`Event::DiskFull`]): the
    /// client stores what waited, and reconnects to the contacts whose
    /// messages it could not store.
    DiskSpaceFreed {
        /// The profile database.
        path: PathBuf,
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

/// The stream of [`Event`]s of one client: read it with [`Events::next`],
/// or as a [`futures_core::Stream`] (with `StreamExt`'s combinators,
/// `select!` over several clients, …).
#[derive(Debug)]
pub struct Events {
    pub(crate) receiver: mpsc::UnboundedReceiver<Notice>,
    /// What the handles of some events answer through.
    pub(crate) client: WeakClient,
}

impl Events {
    /// The next event; `None` once the client has shut down and every event
    /// was read.
    pub async fn next(&mut self) -> Option<Event> {
        let notice = self.receiver.recv().await?;
        Some(self.event(notice))
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        let notice = self.receiver.try_recv().ok()?;
        Some(self.event(notice))
    }

    /// Waits for the next event in a `poll` function (what
    /// [`futures_core::Stream`] calls).
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.receiver
            .poll_recv(cx)
            .map(|notice| notice.map(|notice| self.event(notice)))
    }

    /// The event of a notice of the core, with its handles.
    fn event(&self, notice: Notice) -> Event {
        match notice {
            Notice::ContactStatusChanged { contact, status } => {
                Event::ContactStatusChanged { contact, status }
            }
            Notice::ContactRequestReceived(request) => {
                Event::ContactRequestReceived(IncomingContactRequest {
                    request,
                    client: self.client.clone(),
                })
            }
            Notice::ContactRequestDelivered { contact } => {
                Event::ContactRequestDelivered { contact }
            }
            Notice::ContactRequestAnswered { contact, answer } => {
                Event::ContactRequestAnswered { contact, answer }
            }
            Notice::ContactRequestFailed { contact, reason } => {
                Event::ContactRequestFailed { contact, reason }
            }
            Notice::ContactRemovedUs { contact } => Event::ContactRemovedUs { contact },
            Notice::MessageReceived(message) => Event::MessageReceived(message),
            Notice::MessageStatusChanged {
                contact,
                message,
                status,
            } => Event::MessageStatusChanged {
                contact,
                message,
                status,
            },
            Notice::FileOffered {
                transfer,
                contact,
                name,
                size,
            } => Event::FileOffered(IncomingFile {
                transfer,
                contact,
                name,
                size,
                client: self.client.clone(),
            }),
            Notice::FileProgress {
                transfer,
                contact,
                direction,
                bytes,
                total,
            } => Event::FileProgress {
                transfer,
                contact,
                direction,
                bytes,
                total,
            },
            Notice::FileTransferFinished {
                transfer,
                contact,
                direction,
                outcome,
            } => Event::FileTransferFinished {
                transfer,
                contact,
                direction,
                outcome,
            },
            Notice::DialFailed {
                contact,
                error,
                retry_in,
            } => Event::DialFailed {
                contact,
                error,
                retry_in,
            },
            Notice::ServiceStatusChanged { id, status } => {
                Event::ServiceStatusChanged { id, status }
            }
            Notice::PrivateServiceStatusChanged { status } => {
                Event::PrivateServiceStatusChanged { status }
            }
            Notice::DiskFull(full) => Event::DiskFull(full),
            Notice::DiskSpaceFreed { path } => Event::DiskSpaceFreed { path },
            Notice::Error { contact, error } => Event::Error {
                contact,
                error: Arc::new(error),
            },
        }
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
    pub fn sender(&self) -> RicochetId {
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
    pub async fn accept(&self, destination: impl AsRef<Path>) -> Result<(), ClientError> {
        let destination = destination.as_ref().to_owned();
        if tokio::fs::try_exists(&destination).await.unwrap_or(true) {
            return Err(ClientError::DestinationExists { path: destination });
        }
        let client = self.client.upgrade()?;
        client
            .done(ApiCall::AnswerFile {
                transfer: self.transfer,
                destination: Some(destination),
            })
            .await
    }

    /// Declines it.
    pub async fn reject(&self) -> Result<(), ClientError> {
        let client = self.client.upgrade()?;
        client
            .done(ApiCall::AnswerFile {
                transfer: self.transfer,
                destination: None,
            })
            .await
    }
}

impl futures_core::Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_next_event(cx)
    }
}
