//! The application's handle ([`Client`]), its builder, and the settings.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ricochet_identity::RicochetId;
use ricochet_proto::message::file::FILE_HASH_LEN;
use ricochet_transport::ServiceStatus;
use sha3::{Digest as _, Sha3_512};
use tokio::sync::{mpsc, oneshot, watch};

use crate::core::io::{Answer, ApiCall, Response, Upload};
use crate::driver::{Call, Reply, Services};
use crate::error::ClientError;
use crate::model::{
    Contact, ContactRequest, Message, MessageId, MessageStatus, PrivateModeState, Stats, TransferId,
};
use crate::status_board::StatusBoard;

/// A running Ricochet client. Cheap to clone; every clone talks to the same
/// background tasks. Call [`Client::shutdown`] to stop it (dropping every
/// handle stops it too, less gracefully).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) calls: mpsc::UnboundedSender<Call>,
    /// Our ids, v3 first.
    pub(crate) ids: Vec<RicochetId>,
    pub(crate) services: Services,
    pub(crate) next_transfer: Arc<AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("ids", &self.inner.ids)
            .finish_non_exhaustive()
    }
}

/// A handle that does not keep the client alive (events carry these).
#[derive(Clone)]
pub(crate) struct WeakClient {
    pub(crate) calls: mpsc::WeakUnboundedSender<Call>,
    pub(crate) ids: Vec<RicochetId>,
    pub(crate) services: Services,
    pub(crate) next_transfer: Arc<AtomicU64>,
}

impl std::fmt::Debug for WeakClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakClient").finish_non_exhaustive()
    }
}

impl WeakClient {
    pub(crate) fn upgrade(&self) -> Result<Client, ClientError> {
        let calls = self.calls.upgrade().ok_or(ClientError::Shutdown)?;
        Ok(Client {
            inner: Arc::new(Inner {
                calls,
                ids: self.ids.clone(),
                services: self.services.clone(),
                next_transfer: self.next_transfer.clone(),
            }),
        })
    }
}

impl Client {
    pub(crate) fn downgrade(&self) -> WeakClient {
        WeakClient {
            calls: self.inner.calls.downgrade(),
            ids: self.inner.ids.clone(),
            services: self.inner.services.clone(),
            next_transfer: self.inner.next_transfer.clone(),
        }
    }

    /// Sends a request to the driver and waits for the core's answer.
    pub(crate) async fn request(&self, request: ApiCall) -> Result<Reply, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .calls
            .send(Call::Api(request, reply))
            .map_err(|_| ClientError::Shutdown)?;
        answer.await.map_err(|_| ClientError::Shutdown)
    }

    /// A request answered with [`Response::Done`].
    pub(crate) async fn done(&self, request: ApiCall) -> Result<(), ClientError> {
        match self.request(request).await? {
            Reply::Core(Response::Done(result)) => result,
            other => Err(mismatch(&other)),
        }
    }

    /// Our `ricochet:` id (the v3 one), to give to people who want to add us.
    pub fn id(&self) -> RicochetId {
        self.inner.ids[0]
    }

    /// All our ids: the v3 one, and the v2 one if the client holds one.
    pub fn ids(&self) -> &[RicochetId] {
        &self.inner.ids
    }

    /// Whether peers can reach us now: [`ServiceStatus::Published`] once
    /// the onion service of each of our ids is; otherwise the state of the
    /// one that is furthest from it. Changes come as
    /// [`crate::Event::ServiceStatusChanged`].
    ///
    /// While we do not accept contact requests (see
    /// [`Client::set_accepting_contact_requests`]) the public services are
    /// [`ServiceStatus::Stopped`], and this is the state of our private
    /// service, through which contacts reach us
    /// ([`Client::private_service_status`]).
    pub fn service_status(&self) -> ServiceStatus {
        let rank = |status: &ServiceStatus| match status {
            ServiceStatus::Published => 0,
            ServiceStatus::Publishing => 1,
            ServiceStatus::Degraded { .. } => 2,
            _ => 3,
        };
        self.inner
            .services
            .public
            .iter()
            .map(|(_, status)| status.borrow().clone())
            .filter(|status| *status != ServiceStatus::Stopped)
            .max_by_key(rank)
            .unwrap_or_else(|| self.private_service_status())
    }

    /// The state of our private service (docs/private-mode.md): the
    /// contacts-only onion service that contacts running this library
    /// reach us through. [`ServiceStatus::Stopped`] while no contact holds
    /// a key to it. Changes come as
    /// [`crate::Event::PrivateServiceStatusChanged`].
    pub fn private_service_status(&self) -> ServiceStatus {
        self.inner.services.private.borrow().clone()
    }

    /// Waits until peers can reach us: Tor has uploaded the descriptor of
    /// the onion service of each of our ids (usually seconds after
    /// [`crate::ClientBuilder::start`], up to a minute or two on a slow
    /// network). A peer that dials us before fails as if we were offline,
    /// and tries again later (see [`crate::ReconnectPolicy`]).
    ///
    /// Fails with [`ClientError::ServiceFailed`] if a service went down for
    /// good (Tor exited), and [`ClientError::Shutdown`] after shutdown.
    ///
    /// While we do not accept contact requests it waits for our private
    /// service instead, if one runs.
    pub async fn published(&self) -> Result<(), ClientError> {
        let services = &self.inner.services;
        let private = (self.inner.ids[0], &services.private);
        let running: Vec<(RicochetId, &watch::Receiver<ServiceStatus>)> = services
            .public
            .iter()
            .map(|(id, status)| (*id, status))
            .chain(std::iter::once(private))
            .filter(|(_, status)| *status.borrow() != ServiceStatus::Stopped)
            .collect();
        for (id, status) in running {
            let mut status = status.clone();
            let reached = status
                .wait_for(|s| matches!(s, ServiceStatus::Published | ServiceStatus::Failed { .. }))
                .await
                .map_err(|_| ClientError::Shutdown)?
                .clone();
            if let ServiceStatus::Failed { reason } = reached {
                return Err(ClientError::ServiceFailed {
                    id: Box::new(id),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Dials `contact` (or the recipient of our pending request) now,
    /// whatever the reconnect schedule says, unless we are connected or
    /// dialling already. It returns at once; the outcome comes as
    /// [`crate::Event::ContactStatusChanged`] or
    /// [`crate::Event::DialFailed`]. It also lifts the stop after repeated
    /// protocol errors ([`crate::ReconnectPolicy::max_protocol_errors`]).
    pub async fn connect_now(&self, contact: RicochetId) -> Result<(), ClientError> {
        self.done(ApiCall::ConnectNow(*contact.service_id())).await
    }

    /// Whether we accept contact requests, and which contacts reach us
    /// through our private service and which only through the public one
    /// (docs/private-mode.md). Ask this before turning requests off: the
    /// contacts of [`PrivateModeState::public_only`] would be cut off.
    pub async fn private_mode(&self) -> Result<PrivateModeState, ClientError> {
        match self.request(ApiCall::PrivateMode).await? {
            Reply::Core(Response::PrivateMode(state)) => Ok(state),
            other => Err(mismatch(&other)),
        }
    }

    /// Publishes our public onion service (`true`, the default) or takes
    /// it down (`false`: "not accepting contact requests"). The setting is
    /// kept in the profile.
    ///
    /// With requests off, a stranger who knows our id cannot send us a
    /// contact request, and cannot tell whether we are online: dialling us
    /// fails exactly as when we are offline. Contacts that run this library
    /// still reach us, through our private service; contacts on other
    /// clients (Ricochet Refresh, Ricochet 1.x) know only the public
    /// service and cannot reach us until requests are on again (see
    /// [`Client::private_mode`] for who they are). We still reach them
    /// while their own service is up. It returns once the setting is
    /// stored; the services follow in the background
    /// ([`crate::Event::ServiceStatusChanged`]).
    pub async fn set_accepting_contact_requests(&self, accepting: bool) -> Result<(), ClientError> {
        self.done(ApiCall::SetAcceptingRequests(accepting)).await
    }

    /// The contact list, including outgoing requests and blocked contacts.
    pub async fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        match self.request(ApiCall::Contacts).await? {
            Reply::Core(Response::Contacts(contacts)) => Ok(contacts),
            other => Err(mismatch(&other)),
        }
    }

    /// One contact, if it is in the list.
    pub async fn contact(&self, id: RicochetId) -> Result<Option<Contact>, ClientError> {
        Ok(self.contacts().await?.into_iter().find(|c| c.id == id))
    }

    /// Contact requests waiting for our answer.
    pub async fn contact_requests(&self) -> Result<Vec<ContactRequest>, ClientError> {
        match self.request(ApiCall::ContactRequests).await? {
            Reply::Core(Response::ContactRequests(requests)) => Ok(requests),
            other => Err(mismatch(&other)),
        }
    }

    /// Blocked ids.
    pub async fn blocked(&self) -> Result<Vec<RicochetId>, ClientError> {
        match self.request(ApiCall::Blocked).await? {
            Reply::Core(Response::Blocked(blocked)) => Ok(blocked),
            other => Err(mismatch(&other)),
        }
    }

    /// Asks `id` to become our contact. It appears in the contact list,
    /// under `nickname` (our name for it, never sent; empty: the start of its
    /// id), as [`crate::ContactStatus::RequestPending`], and the request is
    /// retried until answered (spec §8.3). `message` is shown to its user
    /// (at most 2000 UTF-16 units, §8.1); the request also carries our own
    /// nickname, if [`crate::ClientBuilder::nickname`] set one.
    pub async fn send_contact_request(
        &self,
        id: RicochetId,
        nickname: &str,
        message: &str,
    ) -> Result<(), ClientError> {
        ricochet_proto::message::contact_request::ContactRequest::new("", message)?;
        self.done(ApiCall::SendContactRequest {
            id: *id.service_id(),
            nickname: nickname.to_owned(),
            message: message.to_owned(),
        })
        .await
    }

    pub(crate) async fn answer_contact_request(
        &self,
        id: RicochetId,
        answer: Answer,
    ) -> Result<(), ClientError> {
        self.done(ApiCall::AnswerContactRequest {
            id: *id.service_id(),
            answer,
        })
        .await
    }

    /// Accepts the pending request from `id`; it becomes a contact called
    /// `nickname`.
    pub async fn accept_contact_request(
        &self,
        id: RicochetId,
        nickname: &str,
    ) -> Result<(), ClientError> {
        self.answer_contact_request(id, Answer::Accept(nickname.to_owned()))
            .await
    }

    /// Rejects the pending request from `id` and blocks it (spec §8.2).
    pub async fn reject_contact_request(&self, id: RicochetId) -> Result<(), ClientError> {
        self.answer_contact_request(id, Answer::Reject).await
    }

    /// Removes a contact. Its unsent messages fail; if it connects again it
    /// learns that we removed it.
    pub async fn remove_contact(&self, id: RicochetId) -> Result<(), ClientError> {
        self.done(ApiCall::RemoveContact(*id.service_id())).await
    }

    /// Renames a contact (the nickname is ours; it is never sent).
    pub async fn rename_contact(&self, id: RicochetId, nickname: &str) -> Result<(), ClientError> {
        self.done(ApiCall::Rename {
            id: *id.service_id(),
            nickname: nickname.to_owned(),
        })
        .await
    }

    /// Blocks `id`: its connections are closed and its requests refused.
    /// A pending request from it is rejected.
    pub async fn block(&self, id: RicochetId) -> Result<(), ClientError> {
        self.done(ApiCall::Block(*id.service_id())).await
    }

    /// Unblocks `id`.
    pub async fn unblock(&self, id: RicochetId) -> Result<(), ClientError> {
        self.done(ApiCall::Unblock(*id.service_id())).await
    }

    /// Sends `text` to a contact (or to an id we sent a request to). Texts
    /// over 2000 UTF-16 units are split into several messages (spec §9.2).
    /// The messages are stored first, and sent now if the contact is online,
    /// or when it next comes online; the handle follows their status.
    pub async fn send_message(
        &self,
        id: RicochetId,
        text: &str,
    ) -> Result<MessageHandle, ClientError> {
        let mut handles = self.send_messages(id, [text]).await?;
        handles.pop().ok_or(ClientError::EmptyMessage)
    }

    /// Sends several texts to one contact, in order, as
    /// [`send_message`](Self::send_message) does for one, with one handle
    /// per text. All are stored in one database transaction, so a burst
    /// (pasted lines, a bridge relaying a backlog) costs far less than as
    /// many `send_message` calls. Either every text is queued or, on an
    /// error, none is.
    pub async fn send_messages<I>(
        &self,
        id: RicochetId,
        texts: I,
    ) -> Result<Vec<MessageHandle>, ClientError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let texts: Vec<String> = texts.into_iter().map(|t| t.as_ref().to_owned()).collect();
        if texts.is_empty() || texts.iter().any(String::is_empty) {
            return Err(ClientError::EmptyMessage);
        }
        let request = ApiCall::SendMessages {
            id: *id.service_id(),
            texts,
        };
        match self.request(request).await? {
            Reply::Queued(queued) => {
                let (board, texts) = queued?;
                let mut start = 0;
                Ok(texts
                    .into_iter()
                    .map(|ids| {
                        let parts = start..start + ids.len();
                        start = parts.end;
                        MessageHandle {
                            contact: id,
                            ids,
                            board: board.clone(),
                            parts,
                        }
                    })
                    .collect())
            }
            other => Err(mismatch(&other)),
        }
    }

    /// The conversation with `id`: up to `limit` messages older than
    /// `before` (or the newest), oldest first.
    pub async fn messages(
        &self,
        id: RicochetId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, ClientError> {
        let request = ApiCall::History {
            id: *id.service_id(),
            before,
            limit,
        };
        match self.request(request).await? {
            Reply::Core(Response::History(history)) => history,
            other => Err(mismatch(&other)),
        }
    }

    /// Offers the file at `path` to an online protocol-3 contact. Its
    /// SHA3-512 hash is computed first; progress and the end arrive as
    /// events carrying the returned id.
    pub async fn send_file(
        &self,
        id: RicochetId,
        path: impl AsRef<Path>,
    ) -> Result<TransferId, ClientError> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::File {
                path: path.clone(),
                reason: "it has no file name in UTF-8".to_owned(),
            })?;
        let hashed = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || hash_file(&path)).await
        };
        let (size, hash) = match hashed {
            Ok(Ok(hashed)) => hashed,
            Ok(Err(error)) => {
                return Err(ClientError::File {
                    path,
                    reason: error.to_string(),
                });
            }
            Err(_) => return Err(ClientError::Shutdown),
        };
        if size == 0 {
            return Err(ClientError::File {
                path,
                reason: "it is empty, and Ricochet cannot send empty files".to_owned(),
            });
        }
        let transfer = TransferId(self.inner.next_transfer.fetch_add(1, Ordering::Relaxed));
        self.done(ApiCall::SendFile {
            id: *id.service_id(),
            upload: Upload {
                transfer,
                path,
                name,
                size,
                hash,
            },
        })
        .await?;
        Ok(transfer)
    }

    /// Cancels a transfer in either direction.
    pub async fn cancel_transfer(&self, transfer: TransferId) -> Result<(), ClientError> {
        self.done(ApiCall::CancelFile(transfer)).await
    }

    /// Counters of the running client.
    pub async fn stats(&self) -> Result<Stats, ClientError> {
        match self.request(ApiCall::Stats).await? {
            Reply::Core(Response::Stats(stats)) => Ok(stats),
            other => Err(mismatch(&other)),
        }
    }

    /// One stored message.
    pub async fn message(&self, id: MessageId) -> Result<Option<Message>, ClientError> {
        match self.request(ApiCall::Message(id)).await? {
            Reply::Core(Response::Message(message)) => message,
            other => Err(mismatch(&other)),
        }
    }

    /// Closes every connection, takes our onion services down and closes
    /// the profile. Other handles fail with [`ClientError::Shutdown`] after.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.inner.calls.send(Call::Shutdown(reply)).is_ok() {
            let _ = done.await;
        }
    }
}

/// The driver answered a call with the answer to another kind of call: a
/// bug of this crate, reported rather than panicking.
fn mismatch(reply: &Reply) -> ClientError {
    debug_assert!(false, "mismatched reply {reply:?}");
    tracing::error!(
        ?reply,
        "the client answered a call with the wrong kind of answer"
    );
    ClientError::Shutdown
}

/// The size and SHA3-512 hash of a file.
fn hash_file(path: &Path) -> std::io::Result<(u64, [u8; FILE_HASH_LEN])> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut hasher = Sha3_512::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
    Ok((size, hasher.finalize().into()))
}

/// Follows the delivery of one [`Client::send_message`] call: one message,
/// or several if the text was split.
#[derive(Debug, Clone)]
pub struct MessageHandle {
    contact: RicochetId,
    ids: Vec<MessageId>,
    /// Shared by the handles of one call.
    board: Arc<StatusBoard>,
    /// This handle's messages on the board.
    parts: Range<usize>,
}

impl MessageHandle {
    /// The contact.
    pub fn contact(&self) -> RicochetId {
        self.contact
    }

    /// The stored messages, in order (more than one if the text was split).
    pub fn ids(&self) -> Vec<MessageId> {
        self.ids.clone()
    }

    /// The status of the whole: failed if any part failed, else the least
    /// advanced part's.
    pub fn status(&self) -> MessageStatus {
        self.board.status(self.parts.clone())
    }

    /// Waits until every part is acknowledged or one failed, and returns
    /// the final status. If the client shuts down first, returns the status
    /// at that time (the messages stay queued in the profile).
    pub async fn finished(&mut self) -> MessageStatus {
        self.board.wait_final(self.parts.clone()).await;
        self.status()
    }
}
