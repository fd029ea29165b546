//! The application's handle ([`Client`]), its builder, and the settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ricochet_identity::{Generation, IdentityKey, RicochetId};
use ricochet_proto::message::file::FILE_HASH_LEN;
use ricochet_transport::{BootstrapStatus, Transport};
use sha3::{Digest as _, Sha3_512};
use tokio::sync::{mpsc, oneshot, watch};

use crate::connection::Upload;
use crate::error::ClientError;
use crate::event::{Answer, Events};
use crate::manager;
use crate::model::{Contact, ContactRequest, Message, MessageId, MessageStatus, TransferId};
use crate::transport::DynTransport;

/// Name of the profile database inside the profile directory.
pub const PROFILE_DATABASE: &str = "profile.sqlite3";

/// Bounds on what peers can make us hold, and the connection timers.
///
/// Everything a peer can make us keep is bounded, by a field here or by the
/// protocol itself:
///
/// | what | bound |
/// |---|---|
/// | connections that have not authenticated | [`max_unauthenticated_connections`](Self::max_unauthenticated_connections), each closed after [`authentication_timeout`](Self::authentication_timeout) |
/// | connections carrying a contact request | [`max_pending_requests`](Self::max_pending_requests) |
/// | connections of contacts | one per contact (spec §11.4: a new one replaces the old) |
/// | channels per connection | at most one per channel type and direction (spec §4.3); a channel of an unknown type is refused without keeping state |
/// | bytes waiting to be written to a peer | [`max_queued_output`](Self::max_queued_output); beyond it we stop reading from that peer until it reads |
/// | bytes read and not yet parsed | one frame (64 KiB, spec §4.1) plus the read buffer (512 B when idle, up to 64 KiB) |
/// | incoming file offers | [`max_incoming_transfers`](Self::max_incoming_transfers) per contact |
/// | received chat | stored on disk before it is acknowledged; a connection holds at most one read's worth in memory |
/// | our own unacknowledged chat | [`max_unacknowledged_messages`](Self::max_unacknowledged_messages) per contact |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Most inbound connections that have not authenticated as a contact or
    /// sent a contact request; more are closed at once. Default: 64.
    pub max_unauthenticated_connections: usize,
    /// Most contact requests waiting for our answer; requests from new ids
    /// beyond it are dropped (the sender retries later). Default: 64.
    pub max_pending_requests: usize,
    /// Most files one contact may offer us at once (spec §10). Default: 32.
    pub max_incoming_transfers: usize,
    /// How long a connection may stay without authenticating as a contact or
    /// sending a request (spec §3.4, §11.3). Default: 15 s.
    pub authentication_timeout: Duration,
    /// Most messages to one contact sent and not yet acknowledged; the rest
    /// wait in the queue. It bounds what a lost connection makes us resend
    /// and what waits in buffers. Receivers recognise a resend only among
    /// the last messages they received (ours: the last 1024), so a larger
    /// value lets some resends after a cut show twice. Default: 256.
    pub max_unacknowledged_messages: usize,
    /// Most bytes waiting to be written to one peer before we stop reading
    /// from it. A peer that sends without reading our answers (channel
    /// closes, acknowledgements) then stalls on its own writes instead of
    /// growing our memory. Default: 4 MiB, more than what we queue on our
    /// own initiative (the window of chat messages, one 63 KiB chunk per
    /// upload), so that two clients sending to each other never both stop
    /// reading.
    pub max_queued_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_unauthenticated_connections: 64,
            max_pending_requests: 64,
            max_incoming_transfers: 32,
            authentication_timeout: ricochet_proto::UNKNOWN_PURPOSE_TIMEOUT,
            max_unacknowledged_messages: 256,
            max_queued_output: 4 * 1024 * 1024,
        }
    }
}

/// When to dial a contact again (spec §11.6). The defaults are Ricochet
/// 1.x's: 30 s for the first four failed attempts, 120 s for the next two,
/// then 900 s; 60 s after a protocol error, giving up after five in a row.
/// A contact request that the peer ends five times without answering
/// fails.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Delay before dialling again after a working connection was lost.
    pub after_disconnect: Duration,
    /// Delay after failed attempts 1 to 4.
    pub short: Duration,
    /// Delay after failed attempts 5 and 6.
    pub medium: Duration,
    /// Delay after later failed attempts.
    pub long: Duration,
    /// Delay after a protocol error (authentication failed, no common
    /// version).
    pub after_protocol_error: Duration,
    /// Protocol errors in a row after which we stop dialling the contact
    /// until the client restarts or it connects to us.
    pub max_protocol_errors: u32,
    /// Attempts of our contact request that the peer ends without any
    /// answer (it closes the request channel or the connection) after
    /// which the request fails ([`crate::Event::ContactRequestFailed`]).
    pub max_unanswered_requests: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            after_disconnect: Duration::from_secs(2),
            short: Duration::from_secs(30),
            medium: Duration::from_secs(120),
            long: Duration::from_secs(900),
            after_protocol_error: Duration::from_secs(60),
            max_protocol_errors: 5,
            max_unanswered_requests: 5,
        }
    }
}

impl ReconnectPolicy {
    /// The same delay everywhere: for a LAN, loopback or tests.
    pub fn fixed(delay: Duration) -> Self {
        Self {
            after_disconnect: delay,
            short: delay,
            medium: delay,
            long: delay,
            after_protocol_error: delay,
            max_protocol_errors: 5,
            max_unanswered_requests: 5,
        }
    }

    /// The delay after `failures` failed attempts in a row (at least 1).
    pub(crate) fn after_failures(&self, failures: u32) -> Duration {
        match failures {
            0..=4 => self.short,
            5..=6 => self.medium,
            _ => self.long,
        }
    }
}

/// Sets up a [`Client`]: where its profile lives, how it reaches Tor, its
/// limits.
///
/// ```no_run
/// # async fn run() -> Result<(), ricochet_client::ClientError> {
/// use ricochet_client::ClientBuilder;
/// use ricochet_transport::tcp::{Directory, TcpTransport};
///
/// let transport = TcpTransport::new(Directory::new());
/// let (client, mut events) = ClientBuilder::new("/tmp/alice").transport(transport).start().await?;
/// println!("my id: {}", client.id());
/// # Ok(()) }
/// ```
pub struct ClientBuilder {
    profile: PathBuf,
    transport: Option<Arc<dyn DynTransport>>,
    limits: Limits,
    reconnect: ReconnectPolicy,
    v2_identity: bool,
    keys: Vec<IdentityKey>,
    nickname: String,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("profile", &self.profile)
            .field("limits", &self.limits)
            .field("reconnect", &self.reconnect)
            .field("v2_identity", &self.v2_identity)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A client whose profile (identity keys, contacts, messages) lives in
    /// `profile_dir`, created with mode 0700 if missing.
    pub fn new(profile_dir: impl Into<PathBuf>) -> Self {
        Self {
            profile: profile_dir.into(),
            transport: None,
            limits: Limits::default(),
            reconnect: ReconnectPolicy::default(),
            v2_identity: false,
            keys: Vec::new(),
            nickname: String::new(),
        }
    }

    /// The nickname our contact requests suggest for us (at most 30 UTF-16
    /// units, none of `"<>&` or control and format characters; spec §8.1).
    /// Default: none, like Ricochet Refresh.
    pub fn nickname(mut self, nickname: &str) -> Self {
        self.nickname = nickname.to_owned();
        self
    }

    /// How to reach peers: embedded arti, a system tor, or direct TCP.
    pub fn transport<T: Transport>(mut self, transport: T) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// The transport's bootstrap progress, to show while [`Self::start`]
    /// runs (`None` before [`Self::transport`]).
    pub fn bootstrap_status(&self) -> Option<watch::Receiver<BootstrapStatus>> {
        self.transport.as_ref().map(|t| t.bootstrap_status())
    }

    /// Bounds on what peers can make us hold.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// When to dial contacts again.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Also hold a v2 (RSA-1024) identity, generated on first start, to
    /// talk to protocol-1 contacts (original Ricochet). Its onion service
    /// is published too, which only works where v2 services still exist
    /// (direct TCP, or an old tor).
    pub fn v2_identity(mut self, enable: bool) -> Self {
        self.v2_identity = enable;
        self
    }

    /// Use `key` as the identity of its generation when the profile has
    /// none yet (for instance to import an existing Ricochet identity). A
    /// v2 key also enables [`Self::v2_identity`].
    pub fn identity(mut self, key: IdentityKey) -> Self {
        if key.generation() == Generation::V2 {
            self.v2_identity = true;
        }
        self.keys.push(key);
        self
    }

    /// Opens the profile, brings the transport up, publishes our onion
    /// service(s) and starts connecting to contacts.
    pub async fn start(self) -> Result<(Client, Events), ClientError> {
        let transport = self.transport.ok_or(ClientError::NoTransport)?;
        ricochet_proto::message::validate_nickname(&self.nickname)?;
        manager::start(manager::StartConfig {
            profile: self.profile,
            transport,
            limits: self.limits,
            reconnect: self.reconnect,
            v2_identity: self.v2_identity,
            keys: self.keys,
            own_nickname: self.nickname,
        })
        .await
    }
}

/// A request from a [`Client`] handle to the manager task.
#[derive(Debug)]
pub(crate) enum Call {
    Contacts(oneshot::Sender<Vec<Contact>>),
    ContactRequests(Reply<Vec<ContactRequest>>),
    Blocked(Reply<Vec<RicochetId>>),
    SendContactRequest {
        id: RicochetId,
        nickname: String,
        message: String,
        reply: Reply<()>,
    },
    AnswerContactRequest {
        id: RicochetId,
        answer: Answer,
        reply: Reply<()>,
    },
    RemoveContact {
        id: RicochetId,
        reply: Reply<()>,
    },
    Rename {
        id: RicochetId,
        nickname: String,
        reply: Reply<()>,
    },
    Block {
        id: RicochetId,
        reply: Reply<()>,
    },
    Unblock {
        id: RicochetId,
        reply: Reply<()>,
    },
    /// One handle per text, in order.
    SendMessages {
        id: RicochetId,
        texts: Vec<String>,
        reply: Reply<Vec<MessageHandle>>,
    },
    History {
        id: RicochetId,
        before: Option<MessageId>,
        limit: usize,
        reply: Reply<Vec<Message>>,
    },
    Message {
        id: MessageId,
        reply: Reply<Option<Message>>,
    },
    SendFile {
        id: RicochetId,
        upload: Upload,
        reply: Reply<()>,
    },
    AnswerFile {
        transfer: TransferId,
        destination: Option<PathBuf>,
        reply: Reply<()>,
    },
    CancelFile {
        transfer: TransferId,
        reply: Reply<()>,
    },
    Stats(oneshot::Sender<Stats>),
    Shutdown(oneshot::Sender<()>),
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

pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

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
    pub(crate) next_transfer: Arc<std::sync::atomic::AtomicU64>,
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
    pub(crate) next_transfer: Arc<std::sync::atomic::AtomicU64>,
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
            next_transfer: self.inner.next_transfer.clone(),
        }
    }

    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Call,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .calls
            .send(make(reply))
            .map_err(|_| ClientError::Shutdown)?;
        answer.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Our `ricochet:` id (the v3 one), to give to people who want to add us.
    pub fn id(&self) -> RicochetId {
        self.inner.ids[0]
    }

    /// All our ids: the v3 one, and the v2 one if the client holds one.
    pub fn ids(&self) -> &[RicochetId] {
        &self.inner.ids
    }

    /// The contact list, including outgoing requests and blocked contacts.
    pub async fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .calls
            .send(Call::Contacts(reply))
            .map_err(|_| ClientError::Shutdown)?;
        answer.await.map_err(|_| ClientError::Shutdown)
    }

    /// One contact, if it is in the list.
    pub async fn contact(&self, id: RicochetId) -> Result<Option<Contact>, ClientError> {
        Ok(self.contacts().await?.into_iter().find(|c| c.id == id))
    }

    /// Contact requests waiting for our answer.
    pub async fn contact_requests(&self) -> Result<Vec<ContactRequest>, ClientError> {
        self.call(Call::ContactRequests).await
    }

    /// Blocked ids.
    pub async fn blocked(&self) -> Result<Vec<RicochetId>, ClientError> {
        self.call(Call::Blocked).await
    }

    /// Asks `id` to become our contact. It appears in the contact list,
    /// under `nickname` (our name for it, never sent; empty: the start of its
    /// id), as [`crate::ContactStatus::RequestPending`], and the request is
    /// retried until answered (spec §8.3). `message` is shown to its user
    /// (at most 2000 UTF-16 units, §8.1); the request also carries our own
    /// nickname, if [`ClientBuilder::nickname`] set one.
    pub async fn send_contact_request(
        &self,
        id: RicochetId,
        nickname: &str,
        message: &str,
    ) -> Result<(), ClientError> {
        ricochet_proto::message::contact_request::ContactRequest::new("", message)?;
        self.call(|reply| Call::SendContactRequest {
            id,
            nickname: nickname.to_owned(),
            message: message.to_owned(),
            reply,
        })
        .await
    }

    pub(crate) async fn answer_contact_request(
        &self,
        id: RicochetId,
        answer: Answer,
    ) -> Result<(), ClientError> {
        self.call(|reply| Call::AnswerContactRequest { id, answer, reply })
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
        self.call(|reply| Call::RemoveContact { id, reply }).await
    }

    /// Renames a contact (the nickname is ours; it is never sent).
    pub async fn rename_contact(&self, id: RicochetId, nickname: &str) -> Result<(), ClientError> {
        self.call(|reply| Call::Rename {
            id,
            nickname: nickname.to_owned(),
            reply,
        })
        .await
    }

    /// Blocks `id`: its connections are closed and its requests refused.
    /// A pending request from it is rejected.
    pub async fn block(&self, id: RicochetId) -> Result<(), ClientError> {
        self.call(|reply| Call::Block { id, reply }).await
    }

    /// Unblocks `id`.
    pub async fn unblock(&self, id: RicochetId) -> Result<(), ClientError> {
        self.call(|reply| Call::Unblock { id, reply }).await
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
        self.call(|reply| Call::SendMessages { id, texts, reply })
            .await
    }

    /// The conversation with `id`: up to `limit` messages older than
    /// `before` (or the newest), oldest first.
    pub async fn messages(
        &self,
        id: RicochetId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, ClientError> {
        self.call(|reply| Call::History {
            id,
            before,
            limit,
            reply,
        })
        .await
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
        let transfer = TransferId(
            self.inner
                .next_transfer
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        self.call(|reply| Call::SendFile {
            id,
            upload: Upload {
                transfer,
                path,
                name,
                size,
                hash,
            },
            reply,
        })
        .await?;
        Ok(transfer)
    }

    /// Cancels a transfer in either direction.
    pub async fn cancel_transfer(&self, transfer: TransferId) -> Result<(), ClientError> {
        self.call(|reply| Call::CancelFile { transfer, reply })
            .await
    }

    /// Counters of the running client.
    pub async fn stats(&self) -> Result<Stats, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .calls
            .send(Call::Stats(reply))
            .map_err(|_| ClientError::Shutdown)?;
        answer.await.map_err(|_| ClientError::Shutdown)
    }

    /// One stored message.
    pub async fn message(&self, id: MessageId) -> Result<Option<Message>, ClientError> {
        self.call(|reply| Call::Message { id, reply }).await
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
    pub(crate) contact: RicochetId,
    pub(crate) parts: Vec<(MessageId, watch::Receiver<MessageStatus>)>,
}

impl MessageHandle {
    /// The contact.
    pub fn contact(&self) -> RicochetId {
        self.contact
    }

    /// The stored messages, in order (more than one if the text was split).
    pub fn ids(&self) -> Vec<MessageId> {
        self.parts.iter().map(|(id, _)| *id).collect()
    }

    /// The status of the whole: failed if any part failed, else the least
    /// advanced part's.
    pub fn status(&self) -> MessageStatus {
        let mut overall = MessageStatus::Acknowledged;
        for (_, status) in &self.parts {
            let status = status.borrow().clone();
            match (&overall, &status) {
                (MessageStatus::Failed(_), _) => {}
                (_, MessageStatus::Failed(_)) => overall = status,
                (_, MessageStatus::Queued) => overall = MessageStatus::Queued,
                (MessageStatus::Acknowledged, MessageStatus::Sent) => overall = MessageStatus::Sent,
                _ => {}
            }
        }
        overall
    }

    /// Waits until every part is acknowledged or one failed, and returns
    /// the final status. If the client shuts down first, returns the status
    /// at that time (the messages stay queued in the profile).
    pub async fn finished(&mut self) -> MessageStatus {
        for (_, status) in &mut self.parts {
            if status.wait_for(MessageStatus::is_final).await.is_err() {
                break;
            }
        }
        self.status()
    }
}
