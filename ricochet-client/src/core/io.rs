//! What goes into the client core and what comes out of it: plain data,
//! no channels, no clocks. The driver (`crate::driver`) turns API calls,
//! connection reports and store results into these inputs, and carries the
//! outputs to connections, the store thread and the application.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ricochet_identity::{ClientAuthPublicKey, ClientAuthSecretKey, RicochetId, ServiceId};
use ricochet_proto::CloseReason;
use ricochet_proto::FileDirection;
use ricochet_proto::message::chat::{ChatText, MessageId as WireId};
use ricochet_proto::message::contact_request::{
    ContactRequest as WireContactRequest, ResponseStatus,
};
use ricochet_proto::message::file::FILE_HASH_LEN;
use ricochet_proto::message::private_endpoint::PrivateEndpoint;
use ricochet_transport::{ErrorChain, ServiceStatus, TransportError};

use crate::error::{ClientError, StorageError};
use crate::model::{
    Contact, ContactRequest, Message, MessageId, MessageStatus, RequestAnswer, RequestFailure,
    Stats, TransferId, TransferOutcome,
};
use crate::resend::ResendDetector;

/// The number of a connection, unique within a running client.
pub(crate) type ConnId = u64;

/// The number of an API call waiting for its [`Response`].
pub(crate) type CallId = u64;

/// The time, as the driver read it: monotonic for deadlines, wall-clock
/// for the times stored with messages. The core reads no clock of its own,
/// so a simulation can run it on any timeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    /// For deadlines.
    pub(crate) instant: Instant,
    /// For message times.
    pub(crate) wall: SystemTime,
}

// ----- API calls -----------------------------------------------------------

/// How the user answered a contact request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Accept(String),
    Reject,
}

/// A file to offer.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub(crate) transfer: TransferId,
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) hash: [u8; FILE_HASH_LEN],
}

/// An API call, answered by one [`Response`].
#[derive(Debug)]
pub(crate) enum ApiCall {
    Contacts,
    ContactRequests,
    Blocked,
    SendContactRequest {
        id: ServiceId,
        nickname: String,
        message: String,
    },
    AnswerContactRequest {
        id: ServiceId,
        answer: Answer,
    },
    RemoveContact(ServiceId),
    Rename {
        id: ServiceId,
        nickname: String,
    },
    Block(ServiceId),
    Unblock(ServiceId),
    /// Answered with one list of message numbers per text (its parts).
    SendMessages {
        id: ServiceId,
        texts: Vec<String>,
    },
    History {
        id: ServiceId,
        before: Option<MessageId>,
        limit: usize,
    },
    Message(MessageId),
    SendFile {
        id: ServiceId,
        upload: Upload,
    },
    AnswerFile {
        transfer: TransferId,
        destination: Option<PathBuf>,
    },
    CancelFile(TransferId),
    Stats,
    ConnectNow(ServiceId),
    /// Publish the public service (accept contact requests) or not.
    SetAcceptingRequests(bool),
    /// Private mode's state: answered with [`Response::PrivateMode`].
    PrivateMode,
}

/// The answer to an [`ApiCall`].
#[derive(Debug)]
pub(crate) enum Response {
    Done(Result<(), ClientError>),
    Contacts(Vec<Contact>),
    ContactRequests(Vec<ContactRequest>),
    Blocked(Vec<RicochetId>),
    /// Per text, the numbers of its parts; stored when this is sent.
    Queued(Result<Vec<Vec<MessageId>>, ClientError>),
    History(Result<Vec<Message>, ClientError>),
    Message(Result<Option<Message>, ClientError>),
    Stats(Stats),
    PrivateMode(crate::model::PrivateModeState),
}

// ----- connections ---------------------------------------------------------

/// What the core asks a connection to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Server: answer [`Report::PeerProved`].
    AcceptPeer { known_contact: bool },
    /// Server: refuse the proven peer and close.
    RefusePeer,
    /// Client: send our contact request.
    SendContactRequest(WireContactRequest),
    /// Server: accept the pending request on this connection.
    AcceptContactRequest,
    /// Server: reject it (and close).
    RejectContactRequest,
    /// Send these chat messages, with the ids they were given.
    SendChat(Vec<OutgoingChat>),
    /// Offer a file (protocol 3).
    OfferFile(Box<Upload>),
    /// Answer an offered download: `Some(destination)` accepts.
    AnswerFile {
        transfer: TransferId,
        destination: Option<PathBuf>,
    },
    /// Cancel a transfer.
    CancelFile { transfer: TransferId },
    /// Tell the contact our private service and the key we reach its own
    /// with (docs/private-mode.md). Boxed, as is [`Upload`]: every
    /// connection's command queue allocates its slots at this enum's size
    /// (see the size bound below).
    SendPrivateEndpoint(Box<PrivateEndpoint>),
    /// Close the connection.
    Close,
}

// Each contact connection's command channel allocates a block of 32 slots
// when it is created, so this size is paid by every idle connection (issue
// 16's ≤ 16 KiB per idle connection; a 240-byte `Command` cost 7.7 KB each).
// Large, rare payloads are boxed to keep it small.
const _: () = assert!(size_of::<Command>() <= 64);

/// A chat message to put on the wire.
#[derive(Debug)]
pub(crate) struct OutgoingChat {
    pub(crate) wire_id: WireId,
    pub(crate) text: ChatText,
    /// ≤ 0 (§9.2).
    pub(crate) time_delta: i64,
}

/// What a connection tells the core.
#[derive(Debug)]
pub(crate) enum Report {
    /// The version is agreed; a client is now authenticating (§11.4 rule 5).
    Negotiated,
    /// Server: the client proved it owns `peer`; answer with
    /// [`Command::AcceptPeer`] or [`Command::RefusePeer`].
    PeerProved { peer: ServiceId },
    /// Authentication finished.
    Authenticated {
        peer: ServiceId,
        known_contact: bool,
    },
    /// Server: the peer asks to become a contact.
    ContactRequestReceived { nickname: String, message: String },
    /// Client: the answer to our request.
    ContactRequestAnswered {
        status: ResponseStatus,
        /// The peer's answer was not a valid one; `status` is `Error`.
        malformed: bool,
    },
    /// The connection now carries chat; `private_endpoint`: the peer
    /// takes our private endpoint (it advertised the extension).
    BecameContact { private_endpoint: bool },
    /// The contact told us of its private service (boxed: it is rare and
    /// would make every report 240 bytes).
    PrivateEndpoint(Box<PrivateEndpoint>),
    /// Chat messages that arrived together. The connection writes their
    /// acknowledgements only after [`Output::ChatsStored`] says they are
    /// stored; until then it sends nothing more of this connection's
    /// output, and reports nothing more.
    ChatsReceived(Vec<ReceivedChat>),
    /// The peer acknowledged these messages of ours (`accepted` or not).
    ChatsAcknowledged(Vec<(WireId, bool)>),
    /// Our chat channel closed; what it carried without an ack goes back
    /// to the queue.
    ChatChannelClosed,
    /// The peer offers a file.
    FileOffered {
        transfer: TransferId,
        name: String,
        size: u64,
    },
    /// Bytes of a transfer moved.
    FileProgress {
        transfer: TransferId,
        direction: FileDirection,
        bytes: u64,
        total: u64,
    },
    /// A transfer is over.
    FileEnded {
        transfer: TransferId,
        direction: FileDirection,
        outcome: TransferOutcome,
    },
    /// The connection is gone; always the last report.
    Closed(Closure),
}

/// A chat message as received.
#[derive(Debug)]
pub(crate) struct ReceivedChat {
    pub(crate) wire_id: Option<WireId>,
    pub(crate) text: String,
    /// ≤ 0 (§9.2).
    pub(crate) time_delta: i64,
    /// The first message of the peer's chat channel (resends start there).
    pub(crate) first_on_channel: bool,
}

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Closure {
    /// The dial failed.
    DialFailed(TransportError),
    /// Reading or writing the stream failed, or the peer hung up.
    Stream(Option<std::io::Error>),
    /// The session ended.
    Session(CloseReason),
    /// We closed it (or the client is shutting down).
    Shutdown,
}

impl std::fmt::Display for Closure {
    /// For logs: what ended the connection, its causes included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DialFailed(error) => write!(f, "the dial failed: {}", ErrorChain(error)),
            Self::Stream(None) => f.write_str("the peer hung up"),
            Self::Stream(Some(error)) => write!(f, "the connection failed: {}", ErrorChain(error)),
            Self::Session(reason) => write!(f, "{reason}"),
            Self::Shutdown => f.write_str("we closed it"),
        }
    }
}

/// Where a dial goes: the contact's private service first, if we know it,
/// then its public one, if it may be published (docs/private-mode.md).
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) private: Option<(ServiceId, ClientAuthSecretKey)>,
    pub(crate) public: bool,
}

impl Route {
    /// The public service only.
    pub(crate) fn public() -> Self {
        Self {
            private: None,
            public: true,
        }
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field(
                "private",
                &self.private.as_ref().map(|(address, _)| address),
            )
            .field("public", &self.public)
            .finish()
    }
}

// ----- the application -----------------------------------------------------

/// Something the application should know about: the public
/// [`crate::Event`]s, without the handles some of them carry (the event
/// layer adds those).
#[derive(Debug)]
pub(crate) enum Notice {
    ContactStatusChanged {
        contact: RicochetId,
        status: crate::model::ContactStatus,
    },
    ContactRequestReceived(ContactRequest),
    ContactRequestDelivered {
        contact: RicochetId,
    },
    ContactRequestAnswered {
        contact: RicochetId,
        answer: RequestAnswer,
    },
    ContactRequestFailed {
        contact: RicochetId,
        reason: RequestFailure,
    },
    ContactRemovedUs {
        contact: RicochetId,
    },
    MessageReceived(Message),
    MessageStatusChanged {
        contact: RicochetId,
        message: MessageId,
        status: MessageStatus,
    },
    FileOffered {
        transfer: TransferId,
        contact: RicochetId,
        name: String,
        size: u64,
    },
    FileProgress {
        transfer: TransferId,
        contact: RicochetId,
        direction: FileDirection,
        bytes: u64,
        total: u64,
    },
    FileTransferFinished {
        transfer: TransferId,
        contact: RicochetId,
        direction: FileDirection,
        outcome: TransferOutcome,
    },
    Error {
        contact: Option<RicochetId>,
        error: ClientError,
    },
    DiskFull(crate::error::DiskFull),
    DiskSpaceFreed {
        path: PathBuf,
    },
    DialFailed {
        contact: RicochetId,
        error: Arc<TransportError>,
        retry_in: Option<Duration>,
    },
    /// Made by the driver, from the transport's listeners.
    ServiceStatusChanged {
        id: RicochetId,
        status: ServiceStatus,
    },
    /// Made by the driver: our private service's state.
    PrivateServiceStatusChanged {
        status: ServiceStatus,
    },
}

// ----- the store -----------------------------------------------------------

/// The stored standing of a contact. Whether it is online, offline or
/// blocked is decided at run time, not stored here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ContactState {
    /// An accepted contact.
    Contact,
    /// We sent a request that has not been answered.
    RequestPending,
    /// It rejected our request or removed us.
    Rejected,
    /// It answered our request with an error.
    RequestFailed,
}

/// A row of the contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContactRow {
    /// The contact's service id.
    pub(crate) id: ServiceId,
    /// The name we gave it.
    pub(crate) nickname: String,
    /// Its stored standing.
    pub(crate) state: ContactState,
    /// The nickname we send in our contact request (while one is pending).
    pub(crate) request_nickname: String,
    /// The message we send in our contact request (while one is pending).
    pub(crate) request_message: String,
    /// Tries of our pending request that ended without an answer, in a
    /// row (kept across restarts: a peer sees at most
    /// [`crate::ReconnectPolicy::max_unanswered_requests`] tries, not that
    /// many per start).
    pub(crate) unanswered_requests: u32,
}

/// An outgoing message that has not reached a final status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutgoingRow {
    /// Its number in the profile.
    pub(crate) id: MessageId,
    /// The message id it is sent with (spec §9.2).
    pub(crate) wire_id: u32,
    /// The text.
    pub(crate) text: String,
    /// When it was written.
    pub(crate) time: SystemTime,
    /// `Queued` or `Sent`.
    pub(crate) status: MessageStatus,
}

/// A received message on its way to the store.
#[derive(Debug)]
pub(crate) struct IncomingChat {
    pub(crate) wire_id: Option<WireId>,
    pub(crate) text: String,
    /// When the sender says it was written.
    pub(crate) time: SystemTime,
    pub(crate) first_on_channel: bool,
}

/// What the profile holds when the client starts.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// In the order they were added.
    pub(crate) contacts: Vec<ContactRow>,
    pub(crate) blocked: Vec<ServiceId>,
    /// Contact requests waiting for the user, oldest first.
    pub(crate) requests: Vec<ContactRequest>,
    /// What contacts told us of their private services.
    pub(crate) endpoints: Vec<(ServiceId, PrivateEndpoint)>,
}

/// Work for the store. The store runs jobs in the order the core made
/// them, so a read sees every write made before it; the jobs the core makes
/// in one turn share one transaction, and each comes back as a
/// [`StoreDone`] only after that transaction is committed.
///
/// A job carries what the core needs to go on when it is done (the call
/// to answer, the connection waiting), so the core keeps no table of
/// pending jobs.
#[derive(Debug)]
pub(crate) enum StoreJob {
    /// Add a contact, or update its row (keeping its numbering); then
    /// accept the request carried by `answer_on`, or dial.
    AddContact {
        row: ContactRow,
        call: Option<CallId>,
        answer_on: Option<ConnId>,
    },
    /// Set a contact's standing; with `fail_unfinished`, its undelivered
    /// messages fail (→ [`Stored::Failed`]).
    SetContactState {
        id: ServiceId,
        state: ContactState,
        fail_unfinished: bool,
    },
    /// Remove a contact; its undelivered messages fail.
    RemoveContact {
        id: ServiceId,
        call: CallId,
    },
    SetNickname {
        id: ServiceId,
        nickname: String,
        call: CallId,
    },
    /// Block an id: also drops its request and fails its undelivered
    /// messages.
    Block {
        id: ServiceId,
        call: CallId,
    },
    Unblock {
        id: ServiceId,
        call: CallId,
    },
    UpsertRequest(ContactRequest),
    RemoveRequest(ServiceId),
    /// Keep what a contact told us of its private service.
    SetEndpoint {
        contact: ServiceId,
        endpoint: PrivateEndpoint,
    },
    /// Keep whether we accept contact requests.
    SetAcceptingRequests {
        accepting: bool,
        call: CallId,
    },
    /// Queue the texts of one send call (its parts, flattened).
    Queue {
        contact: ServiceId,
        texts: Vec<String>,
        /// How many parts each text of the call has.
        parts: Vec<usize>,
        time: SystemTime,
        call: CallId,
    },
    /// Read the oldest `limit` queued messages after `after`.
    FetchQueued {
        contact: ServiceId,
        after: Option<MessageId>,
        limit: usize,
        /// The outbox's epoch when asked; a newer one ignores the answer.
        epoch: u64,
    },
    /// Record the contact's answers to our messages.
    Acknowledge {
        contact: ServiceId,
        acks: Vec<(WireId, bool, Option<MessageId>)>,
    },
    /// Store received messages, except resends (`detector` decides, with
    /// the stored history; it comes back updated).
    RecordIncoming {
        conn: ConnId,
        contact: ServiceId,
        messages: Vec<IncomingChat>,
        detector: ResendDetector,
    },
    History {
        contact: ServiceId,
        before: Option<MessageId>,
        limit: usize,
        call: CallId,
    },
    Message {
        id: MessageId,
        call: CallId,
    },
    /// Record how many tries of our request to `id` went unanswered.
    SetUnansweredRequests {
        id: ServiceId,
        count: u32,
    },
    /// After a full disk: is there room again for what failed? Answers
    /// `Done`, or the full disk as it is now.
    CheckSpace(crate::error::DiskFull),
}

impl StoreJob {
    /// Whether the job's effect must be on stable storage before the
    /// store says it is done ("stable before visible"): its done goes
    /// to a peer (an acknowledgement, a request or an answer), to
    /// the application (stored, queued, removed) or both.
    ///
    /// Not the record of a peer's acknowledgements of our messages: lost
    /// in a power cut, it only makes them go out again, with the same ids,
    /// and the peer drops them as resends (§9.2); the store bounds how many
    /// go unsynced. Reads write nothing, so they have nothing to sync.
    pub(crate) fn must_be_stable(&self) -> bool {
        !matches!(
            self,
            Self::Acknowledge { .. }
                | Self::FetchQueued { .. }
                | Self::History { .. }
                | Self::Message { .. }
                | Self::CheckSpace(_)
                // Lost in a power cut: the peer sees one try more.
                | Self::SetUnansweredRequests { .. }
        )
    }

    /// The bytes of text the job writes: what a full disk lacked room
    /// for, at least ([`crate::DiskFull::needed`]).
    pub(crate) fn text_bytes(&self) -> u64 {
        let bytes: usize = match self {
            Self::Queue { texts, .. } => texts.iter().map(String::len).sum(),
            Self::RecordIncoming { messages, .. } => messages.iter().map(|m| m.text.len()).sum(),
            _ => 0,
        };
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// What a [`StoreJob`] produced.
#[derive(Debug)]
pub(crate) enum Stored {
    Done,
    /// Messages that failed with `ContactGone`, oldest first.
    Failed(Vec<MessageId>),
    /// The queued parts' numbers and ids.
    Queued(Vec<(MessageId, WireId)>),
    Fetched(Vec<OutgoingRow>),
    /// Messages whose status changed.
    Changed(Vec<(MessageId, MessageStatus)>),
    /// Per received message, its number, or `None` for a resend.
    Recorded(Vec<Option<MessageId>>),
    History(Vec<Message>),
    Message(Option<Box<Message>>),
}

/// A [`StoreJob`], done (committed) or failed.
#[derive(Debug)]
pub(crate) struct StoreDone {
    pub(crate) job: StoreJob,
    pub(crate) outcome: Result<Stored, StorageError>,
}

// ----- outputs -------------------------------------------------------------

/// What the core wants done, in order.
#[derive(Debug)]
pub(crate) enum Output {
    /// Open connection `conn` to `peer`, the way `route` says.
    Dial {
        conn: ConnId,
        peer: ServiceId,
        route: Route,
    },
    /// Which of our onion services should run: the public one (of every
    /// id) or not, and the private one for these authorised clients (none:
    /// not at all). Said at start and whenever it changes.
    Services {
        public: bool,
        authorized: Vec<ClientAuthPublicKey>,
    },
    /// Give a connection a command.
    Command { conn: ConnId, command: Command },
    /// The messages of `conn`'s [`Report::ChatsReceived`] are stored
    /// (`true`; their acknowledgements may leave) or could not be (`false`;
    /// the connection closes without acknowledging them).
    ChatsStored { conn: ConnId, stored: bool },
    /// Work for the store.
    Store(StoreJob),
    /// Tell the application.
    Notice(Notice),
    /// Answer an API call.
    Reply { call: CallId, response: Response },
}
