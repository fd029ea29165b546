//! The manager task: owns the contact book, the profile database and the
//! table of connections; decides which connection a contact keeps (§11.4),
//! when to dial (§11.6), and what each connection does.
//!
//! It never waits on a connection task: it sends commands on unbounded
//! channels and hears reports on one bounded channel, so connections can
//! wait on it (for a message to be stored) without a deadlock.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime};

use ricochet_identity::{Generation, IdentityKey, RicochetId, ServiceId};
use ricochet_proto::SessionConfig;
use ricochet_proto::message::chat::{ChatText, MessageId as WireId};
use ricochet_proto::message::contact_request::{
    ContactRequest as WireContactRequest, ResponseStatus,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::client::{
    Call, Client, Inner, Limits, MessageHandle, PROFILE_DATABASE, ReconnectPolicy, Stats,
    WeakClient,
};
use crate::connection::{
    self, Closure, Command, ConnId, ConnectionContext, Origin, OutgoingChat, ReceivedChat, Report,
    Upload,
};
use crate::error::ClientError;
use crate::event::{
    Answer, Event, Events, IncomingContactRequest, IncomingFile, RequestAnswer, RequestFailure,
};
use crate::model::{
    Contact, ContactRequest, ContactStatus, FailureReason, Message, MessageDirection, MessageId,
    MessageStatus, TransferId,
};
use crate::resend::ResendDetector;
use crate::store::{ContactRow, ContactState, Incoming, Store};
use crate::transport::{BoxStream, DynTransport};

/// §11.4 rule 3: an older connection than this loses to a new one.
const YOUNG_CONNECTION: Duration = Duration::from_secs(30);
/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Reports a connection may queue before it waits for the manager.
const REPORT_QUEUE: usize = 256;
/// Most API calls handled in one turn of the manager's loop (their sends
/// share one transaction); bounded so reports and accepts are not starved.
const CALL_BATCH: usize = 256;

/// How often a contact may close our chat channel on one connection before
/// we close the connection (see `Manager::requeue_sent`).
const MAX_CHAT_CHANNEL_CLOSURES: u32 = 3;

/// A send call: the contact, its texts, and where the handles go.
type SendCall = (
    RicochetId,
    Vec<String>,
    crate::client::Reply<Vec<MessageHandle>>,
);

pub(crate) struct StartConfig {
    pub(crate) profile: PathBuf,
    pub(crate) transport: Arc<dyn DynTransport>,
    pub(crate) limits: Limits,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) v2_identity: bool,
    pub(crate) keys: Vec<IdentityKey>,
    pub(crate) own_nickname: String,
}

/// Opens the profile, brings the transport up, publishes, and spawns the
/// manager.
pub(crate) async fn start(config: StartConfig) -> Result<(Client, Events), ClientError> {
    create_profile_dir(&config.profile)?;
    let store = Store::open(&config.profile.join(PROFILE_DATABASE))?;
    let mut identities = Vec::new();
    let mut generations = vec![Generation::V3];
    if config.v2_identity {
        generations.push(Generation::V2);
    }
    let mut keys = config.keys;
    for generation in generations {
        let given = keys
            .iter()
            .position(|k| k.generation() == generation)
            .map(|index| keys.swap_remove(index));
        let key = match store.identity(generation)? {
            Some(stored) => {
                if let Some(given) = given
                    && given.service_id() != stored.service_id()
                {
                    return Err(ClientError::IdentityMismatch { generation });
                }
                stored
            }
            None => {
                let key = match given {
                    Some(given) => given,
                    None => IdentityKey::generate(generation)?,
                };
                store.insert_identity(&key)?;
                key
            }
        };
        identities.push(Arc::new(key));
    }

    config.transport.bootstrap().await?;
    let (incoming_tx, incoming_rx) = mpsc::channel(16);
    let mut listeners = Vec::new();
    for identity in &identities {
        let mut listener = config.transport.listen(identity).await?;
        let identity = identity.clone();
        let incoming = incoming_tx.clone();
        listeners.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        if incoming.send((identity.clone(), stream)).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        warn!(%error, "accepting a connection failed");
                        // A listener that fails at once would spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    drop(incoming_tx);

    let (calls_tx, calls_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (reports_tx, reports_rx) = mpsc::channel(REPORT_QUEUE);
    let next_transfer = Arc::new(AtomicU64::new(1));
    let ids: Vec<RicochetId> = identities.iter().map(|k| k.service_id().into()).collect();
    let client = Client {
        inner: Arc::new(Inner {
            calls: calls_tx,
            ids: ids.clone(),
            next_transfer: next_transfer.clone(),
        }),
    };
    let mut session_config = SessionConfig::default();
    session_config.unknown_purpose_timeout = config.limits.authentication_timeout;
    session_config.max_incoming_transfers = config.limits.max_incoming_transfers;
    let max_queued_output = config.limits.max_queued_output;
    let mut manager = Manager {
        weak: client.downgrade(),
        store,
        identities,
        transport: config.transport,
        limits: config.limits,
        reconnect: config.reconnect,
        context: ConnectionContext {
            config: session_config,
            reports: reports_tx,
            transfer_ids: next_transfer,
            max_queued_output,
        },
        events: events_tx,
        contacts: HashMap::new(),
        blocked: HashSet::new(),
        conns: HashMap::new(),
        next_conn: 1,
        transfers: HashMap::new(),
        watches: HashMap::new(),
        listeners,
        own_nickname: config.own_nickname,
    };
    manager.load()?;
    tokio::spawn(manager.run(calls_rx, reports_rx, incoming_rx));
    Ok((
        client,
        Events {
            receiver: events_rx,
        },
    ))
}

fn create_profile_dir(path: &std::path::Path) -> Result<(), ClientError> {
    let error = |source| ClientError::ProfileDirectory {
        path: path.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(error)
}

/// How far a connection has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Dialling, or waiting for the introduction.
    Connecting,
    /// Version agreed; authentication runs (§11.4 rule 5 "Authenticating").
    Authenticating,
    /// Authenticated (as a contact or not).
    Authenticated,
    /// Carries chat for a contact.
    Contact,
}

struct Conn {
    outbound: bool,
    created: Instant,
    stage: Stage,
    peer: Option<ServiceId>,
    commands: mpsc::UnboundedSender<Command>,
    /// Server: a contact request from the peer is pending on it.
    carries_request: bool,
    /// Client: our contact request went out on it.
    request_sent: bool,
    /// Client: the peer answered it with Pending.
    request_pending: bool,
    /// Client: our request got a final answer (no reconnect for it).
    request_answered: bool,
    /// How often the peer closed (or refused) our chat channel on it.
    chat_channel_closures: u32,
    /// Which messages the peer sends on it are resends (§9.2).
    resends: ResendDetector,
    task: JoinHandle<()>,
}

impl Conn {
    fn send(&self, command: Command) {
        // A closed channel means the task is ending; its Closed report follows.
        let _ = self.commands.send(command);
    }
}

/// What the manager knows about a contact (or an id we asked).
struct Entry {
    row: ContactRow,
    /// The connection that carries its chat.
    active: Option<ConnId>,
    /// Our dial in progress.
    dialing: Option<ConnId>,
    /// Failed dials in a row.
    failures: u32,
    /// Protocol errors in a row.
    protocol_errors: u32,
    /// Attempts of our contact request ended without any answer, in a row.
    unanswered_requests: u32,
    /// When to dial next; `None` when not scheduled.
    next_dial: Option<Instant>,
    /// Messages sent on the active connection and not yet acknowledged, by
    /// the id they went out with. "Sent" lives only here: in the database
    /// they stay queued until acknowledged, since after a lost connection or
    /// a restart they go out again anyway, and one status write less per
    /// message is a large share of the send path.
    in_flight: HashMap<WireId, MessageId>,
    /// The newest message taken off the queue for the active connection;
    /// the next ones to send are the queued messages after it (the queue is
    /// in id order, and messages are taken in that order).
    sent_up_to: Option<MessageId>,
}

impl Entry {
    fn new(row: ContactRow) -> Self {
        Self {
            row,
            active: None,
            dialing: None,
            failures: 0,
            protocol_errors: 0,
            unanswered_requests: 0,
            next_dial: None,
            in_flight: HashMap::new(),
            sent_up_to: None,
        }
    }
}

struct Manager {
    weak: WeakClient,
    store: Store,
    /// Our identities, v3 first.
    identities: Vec<Arc<IdentityKey>>,
    transport: Arc<dyn DynTransport>,
    limits: Limits,
    reconnect: ReconnectPolicy,
    context: ConnectionContext,
    events: mpsc::UnboundedSender<Event>,
    contacts: HashMap<ServiceId, Entry>,
    blocked: HashSet<ServiceId>,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    /// Live transfers: their connection and contact.
    transfers: HashMap<TransferId, (ConnId, ServiceId)>,
    /// Status watchers of messages sent in this run, until final.
    watches: HashMap<MessageId, watch::Sender<MessageStatus>>,
    listeners: Vec<JoinHandle<()>>,
    /// The nickname our requests suggest for us (§8.1).
    own_nickname: String,
}

impl Manager {
    /// Reads the contact book; messages that were on the wire when the last
    /// run ended go back to the queue (they are resent with the same ids).
    fn load(&mut self) -> Result<(), ClientError> {
        self.blocked = self.store.blocked()?.into_iter().collect();
        let now = Instant::now();
        for row in self.store.contacts()? {
            // Profiles written before "sent" moved out of the database.
            let sent: Vec<MessageId> = self
                .store
                .unfinished_outgoing(&row.id)?
                .into_iter()
                .filter(|m| m.status == MessageStatus::Sent)
                .map(|m| m.id)
                .collect();
            self.store.set_status(&sent, &MessageStatus::Queued)?;
            let id = row.id;
            self.contacts.insert(id, Entry::new(row));
            self.schedule(&id, now);
        }
        Ok(())
    }

    async fn run(
        mut self,
        mut calls: mpsc::UnboundedReceiver<Call>,
        mut reports: mpsc::Receiver<(ConnId, Report)>,
        mut incoming: mpsc::Receiver<(Arc<IdentityKey>, BoxStream)>,
    ) {
        let mut shutdown_reply = None;
        loop {
            let next_dial = self.contacts.values().filter_map(|e| e.next_dial).min();
            let sleep = async {
                match next_dial {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                call = calls.recv() => match call {
                    Some(call) => {
                        // Group commit: every call already waiting is handled
                        // now, so that sends from several tasks share one
                        // database transaction.
                        let mut batch = vec![call];
                        while batch.len() < CALL_BATCH {
                            match calls.try_recv() {
                                Ok(call) => batch.push(call),
                                Err(_) => break,
                            }
                        }
                        if let Some(reply) = self.handle_calls(batch) {
                            shutdown_reply = Some(reply);
                            break;
                        }
                    }
                    None => break,
                },
                Some((conn, report)) = reports.recv() => self.handle_report(conn, report),
                Some((identity, stream)) = incoming.recv() => self.accept(identity, stream),
                () = sleep => self.dial_due(),
            }
        }
        self.shutdown(&mut reports).await;
        drop(self);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    async fn shutdown(&mut self, reports: &mut mpsc::Receiver<(ConnId, Report)>) {
        for listener in &self.listeners {
            listener.abort();
        }
        for conn in self.conns.values() {
            conn.send(Command::Close);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !self.conns.is_empty() {
            match tokio::time::timeout_at(deadline, reports.recv()).await {
                Ok(Some((conn, report))) => self.handle_report(conn, report),
                Ok(None) | Err(_) => break,
            }
        }
        for (_, conn) in self.conns.drain() {
            conn.task.abort();
        }
    }

    fn emit(&self, event: Event) {
        // Nobody listening is fine: the application dropped its Events.
        let _ = self.events.send(event);
    }

    fn emit_error(&self, contact: Option<ServiceId>, error: ClientError) {
        warn!(%error, "background error");
        self.emit(Event::Error {
            contact: contact.map(RicochetId::from),
            error: Arc::new(error),
        });
    }

    // ---- identities and statuses ----

    fn identity_for(&self, generation: Generation) -> Option<&Arc<IdentityKey>> {
        self.identities
            .iter()
            .find(|k| k.generation() == generation)
    }

    fn is_own(&self, id: &ServiceId) -> bool {
        self.identities.iter().any(|k| &k.service_id() == id)
    }

    fn status_of(&self, id: &ServiceId) -> Option<ContactStatus> {
        let entry = self.contacts.get(id)?;
        Some(if self.blocked.contains(id) {
            ContactStatus::Blocked
        } else {
            match entry.row.state {
                ContactState::Contact if entry.active.is_some() => ContactStatus::Online,
                ContactState::Contact => ContactStatus::Offline,
                ContactState::RequestPending => ContactStatus::RequestPending,
                ContactState::Rejected => ContactStatus::Rejected,
                ContactState::RequestFailed => ContactStatus::RequestFailed,
            }
        })
    }

    fn emit_status(&self, id: &ServiceId) {
        if let Some(status) = self.status_of(id) {
            self.emit(Event::ContactStatusChanged {
                contact: (*id).into(),
                status,
            });
        }
    }

    fn set_state(&mut self, id: &ServiceId, state: ContactState) {
        let Some(entry) = self.contacts.get_mut(id) else {
            return;
        };
        if entry.row.state == state {
            return;
        }
        entry.row.state = state;
        if let Err(error) = self.store.set_contact_state(id, state) {
            self.emit_error(Some(*id), error.into());
        }
        if matches!(state, ContactState::Rejected | ContactState::RequestFailed) {
            self.fail_unfinished(id);
        }
        self.emit_status(id);
    }

    /// Messages not yet acknowledged by a contact that rejected, removed or
    /// was blocked by us will not be delivered.
    fn fail_unfinished(&mut self, id: &ServiceId) {
        match self.store.fail_unfinished(id) {
            Ok(failed) => {
                for message in failed {
                    self.message_status_changed(
                        id,
                        message,
                        MessageStatus::Failed(FailureReason::ContactGone),
                    );
                }
            }
            Err(error) => self.emit_error(Some(*id), error.into()),
        }
    }

    fn message_status_changed(
        &mut self,
        contact: &ServiceId,
        id: MessageId,
        status: MessageStatus,
    ) {
        if let Some(watch) = self.watches.get(&id) {
            watch.send_replace(status.clone());
            if status.is_final() {
                self.watches.remove(&id);
            }
        }
        self.emit(Event::MessageStatusChanged {
            contact: (*contact).into(),
            message: id,
            status,
        });
    }

    // ---- dialling ----

    /// Whether we should keep a connection to `id` (§11.6: while it is a
    /// contact or our request is pending).
    fn wants_connection(&self, id: &ServiceId) -> bool {
        let Some(entry) = self.contacts.get(id) else {
            return false;
        };
        matches!(
            entry.row.state,
            ContactState::Contact | ContactState::RequestPending
        ) && !self.blocked.contains(id)
            && entry.protocol_errors < self.reconnect.max_protocol_errors
            && self.identity_for(id.generation()).is_some()
            && !self.is_own(id)
    }

    fn schedule(&mut self, id: &ServiceId, at: Instant) {
        let wanted = self.wants_connection(id);
        if let Some(entry) = self.contacts.get_mut(id) {
            entry.next_dial =
                (wanted && entry.active.is_none() && entry.dialing.is_none()).then_some(at);
        }
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        let due: Vec<ServiceId> = self
            .contacts
            .iter()
            .filter(|(_, e)| e.next_dial.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(entry) = self.contacts.get_mut(&id) {
                entry.next_dial = None;
            }
            self.dial(id);
        }
    }

    fn dial(&mut self, peer: ServiceId) {
        if !self.wants_connection(&peer) {
            return;
        }
        let Some(entry) = self.contacts.get(&peer) else {
            return;
        };
        if entry.active.is_some() || entry.dialing.is_some() {
            return;
        }
        let Some(identity) = self.identity_for(peer.generation()).cloned() else {
            return;
        };
        debug!(%peer, "dialling");
        let origin = Origin::Dial {
            transport: self.transport.clone(),
            peer,
        };
        let conn = self.spawn(identity, origin, true, Some(peer));
        if let Some(entry) = self.contacts.get_mut(&peer) {
            entry.dialing = Some(conn);
        }
    }

    fn spawn(
        &mut self,
        identity: Arc<IdentityKey>,
        origin: Origin,
        outbound: bool,
        peer: Option<ServiceId>,
    ) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(connection::run(
            id,
            identity,
            origin,
            self.context.clone(),
            receiver,
        ));
        self.conns.insert(
            id,
            Conn {
                outbound,
                created: Instant::now(),
                stage: Stage::Connecting,
                peer,
                commands,
                carries_request: false,
                request_sent: false,
                request_pending: false,
                request_answered: false,
                chat_channel_closures: 0,
                resends: ResendDetector::new(),
                task,
            },
        );
        id
    }

    fn accept(&mut self, identity: Arc<IdentityKey>, stream: BoxStream) {
        // Inbound connections without a purpose yet (§11.3): neither a
        // contact's nor carrying a request.
        let unauthenticated = self
            .conns
            .values()
            .filter(|c| !c.outbound && c.stage != Stage::Contact && !c.carries_request)
            .count();
        if unauthenticated >= self.limits.max_unauthenticated_connections {
            debug!(
                unauthenticated,
                "too many unauthenticated connections; dropping a new one"
            );
            return;
        }
        self.spawn(identity, Origin::Accepted(stream), false, None);
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.send(Command::Close);
        }
    }

    // ---- reports from connections ----

    fn handle_report(&mut self, conn: ConnId, report: Report) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match report {
            Report::Negotiated => self.set_stage(conn, Stage::Authenticating),
            Report::PeerProved { peer } => self.peer_proved(conn, peer),
            Report::Authenticated {
                peer,
                known_contact,
            } => self.authenticated(conn, peer, known_contact),
            Report::ContactRequestReceived { nickname, message } => {
                self.request_received(conn, nickname, message);
            }
            Report::ContactRequestAnswered { status, malformed } => {
                self.request_answered(conn, status, malformed);
            }
            Report::BecameContact => self.became_contact(conn),
            Report::ChatsReceived { messages, stored } => {
                let ok = self.chats_received(conn, &messages);
                let _ = stored.send(ok);
            }
            Report::ChatsAcknowledged(acks) => self.chats_acknowledged(conn, &acks),
            Report::ChatChannelClosed => self.requeue_sent(conn),
            Report::FileOffered {
                transfer,
                name,
                size,
            } => self.file_offered(conn, transfer, name, size),
            Report::FileProgress {
                transfer,
                direction,
                bytes,
                total,
            } => {
                if let Some(&(_, contact)) = self.transfers.get(&transfer) {
                    self.emit(Event::FileProgress {
                        transfer,
                        contact: contact.into(),
                        direction,
                        bytes,
                        total,
                    });
                }
            }
            Report::FileEnded {
                transfer,
                direction,
                outcome,
            } => {
                if let Some((_, contact)) = self.transfers.remove(&transfer) {
                    self.emit(Event::FileTransferFinished {
                        transfer,
                        contact: contact.into(),
                        direction,
                        outcome,
                    });
                }
            }
            Report::Closed(closure) => self.closed(conn, closure),
        }
    }

    fn set_stage(&mut self, conn: ConnId, stage: Stage) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stage = c.stage.max(stage);
        }
    }

    fn peer_of(&self, conn: ConnId) -> Option<ServiceId> {
        self.conns.get(&conn).and_then(|c| c.peer)
    }

    /// Server side: the client proved its id; is it a known contact?
    fn peer_proved(&mut self, conn: ConnId, peer: ServiceId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(peer);
        }
        if self.is_own(&peer) {
            if let Some(c) = self.conns.get(&conn) {
                c.send(Command::RefusePeer);
            }
            return;
        }
        // A blocked peer is told it is not a contact; its request will be
        // rejected (§8.2), which stops its retries.
        let state = self.contacts.get(&peer).map(|e| e.row.state);
        let known = !self.blocked.contains(&peer)
            && match state {
                Some(ContactState::Contact) => true,
                Some(ContactState::RequestPending) => {
                    // §8.3 implicit accept: the requested contact connects
                    // to us as to a contact.
                    self.request_accepted(&peer);
                    true
                }
                _ => false,
            };
        if let Some(c) = self.conns.get(&conn) {
            c.send(Command::AcceptPeer {
                known_contact: known,
            });
        }
    }

    /// Our outgoing request to `peer` counts as accepted.
    fn request_accepted(&mut self, peer: &ServiceId) {
        let was_pending = self
            .contacts
            .get(peer)
            .is_some_and(|e| e.row.state != ContactState::Contact);
        if was_pending {
            self.set_state(peer, ContactState::Contact);
            self.emit(Event::ContactRequestAnswered {
                contact: (*peer).into(),
                answer: RequestAnswer::Accepted,
            });
        }
        // Its own request to us, if any, is answered by the same token.
        match self.store.remove_incoming_request(peer) {
            Ok(true) => {
                for conn in self.connections_of(peer) {
                    if let Some(c) = self.conns.get(&conn)
                        && c.carries_request
                    {
                        c.send(Command::AcceptContactRequest);
                    }
                }
            }
            Ok(false) => {}
            Err(error) => self.emit_error(Some(*peer), error.into()),
        }
    }

    /// Authentication finished (both roles).
    fn authenticated(&mut self, conn: ConnId, peer: ServiceId, known: bool) {
        self.set_stage(conn, Stage::Authenticated);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.peer = Some(peer);
        if !c.outbound {
            return;
        }
        let state = self.contacts.get(&peer).map(|e| e.row.state);
        match (known, state) {
            (true, Some(_)) => {
                // §11.4: known while our request is pending: implicitly accepted.
                self.request_accepted(&peer);
            }
            (false, Some(ContactState::RequestPending)) => {
                let request = self.contacts.get(&peer).map(|e| WireContactRequest {
                    nickname: e.row.request_nickname.clone(),
                    message_text: e.row.request_message.clone(),
                });
                if let (Some(request), Some(c)) = (request, self.conns.get_mut(&conn)) {
                    c.send(Command::SendContactRequest(request));
                    c.request_sent = true;
                }
            }
            (false, Some(ContactState::Contact)) => {
                // §11.4: not known and no request of ours: it removed us.
                info!(%peer, "the contact removed us");
                self.set_state(&peer, ContactState::Rejected);
                self.emit(Event::ContactRemovedUs {
                    contact: peer.into(),
                });
                self.close(conn);
            }
            _ => self.close(conn),
        }
    }

    /// Server side: the peer asks to become our contact.
    fn request_received(&mut self, conn: ConnId, nickname: String, message: String) {
        let Some(peer) = self.peer_of(conn) else {
            return;
        };
        if self.blocked.contains(&peer) {
            if let Some(c) = self.conns.get(&conn) {
                c.send(Command::RejectContactRequest);
            }
            return;
        }
        let (repeat, waiting) = match self.store.incoming_request_status(&peer) {
            Ok(status) => status,
            Err(error) => {
                self.emit_error(Some(peer), error.into());
                self.close(conn);
                return;
            }
        };
        if !repeat && waiting >= self.limits.max_pending_requests {
            debug!(%peer, "too many pending contact requests; dropping one");
            self.close(conn);
            return;
        }
        let request = ContactRequest {
            from: peer.into(),
            nickname,
            message,
            received_at: SystemTime::now(),
        };
        if let Err(error) = self.store.upsert_incoming_request(&request) {
            self.emit_error(Some(peer), error.into());
            self.close(conn);
            return;
        }
        // §8.2: a repeat request replaces the older connection.
        let older: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, c)| **id != conn && c.carries_request && c.peer == Some(peer))
            .map(|(id, _)| *id)
            .collect();
        for old in older {
            self.close(old);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.carries_request = true;
            c.stage = Stage::Authenticated;
        }
        self.emit(Event::ContactRequestReceived(IncomingContactRequest {
            request,
            client: self.weak.clone(),
        }));
    }

    /// Client side: the answer to our request.
    fn request_answered(&mut self, conn: ConnId, status: ResponseStatus, malformed: bool) {
        let Some(peer) = self.peer_of(conn) else {
            return;
        };
        if let Some(entry) = self.contacts.get_mut(&peer) {
            entry.unanswered_requests = 0;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            match status {
                ResponseStatus::Pending => c.request_pending = true,
                _ => c.request_answered = true,
            }
        }
        let answer = match status {
            ResponseStatus::Pending => RequestAnswer::Pending,
            ResponseStatus::Accepted => return self.request_accepted(&peer),
            ResponseStatus::Rejected => {
                self.set_state(&peer, ContactState::Rejected);
                RequestAnswer::Rejected
            }
            _ => {
                let reason = if malformed {
                    RequestFailure::BadAnswer
                } else {
                    RequestFailure::RefusedByPeer
                };
                return self.request_failed(&peer, reason);
            }
        };
        self.emit(Event::ContactRequestAnswered {
            contact: peer.into(),
            answer,
        });
    }

    /// Our request to `peer` ends as failed: it is not sent again.
    fn request_failed(&mut self, peer: &ServiceId, reason: RequestFailure) {
        info!(%peer, %reason, "our contact request failed");
        self.set_state(peer, ContactState::RequestFailed);
        self.emit(Event::ContactRequestFailed {
            contact: (*peer).into(),
            reason,
        });
    }

    /// The connection now carries chat: decide whether the contact keeps it
    /// (§11.4).
    fn became_contact(&mut self, conn: ConnId) {
        let Some(peer) = self.peer_of(conn) else {
            return;
        };
        let is_contact = self
            .contacts
            .get(&peer)
            .is_some_and(|e| e.row.state == ContactState::Contact);
        if !is_contact || self.blocked.contains(&peer) {
            self.close(conn);
            return;
        }
        self.set_stage(conn, Stage::Contact);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.carries_request = false;
        }
        let Some(new) = self.conns.get(&conn) else {
            return;
        };
        let (new_outbound, new_created) = (new.outbound, new.created);
        let prefer_outbound = self.prefer_outbound(&peer);
        let (dialing, active) = match self.contacts.get(&peer) {
            Some(entry) => (entry.dialing, entry.active),
            None => return,
        };
        if let Some(entry) = self.contacts.get_mut(&peer)
            && entry.dialing == Some(conn)
        {
            entry.dialing = None;
        }
        // Rule 5: our pending dial against a new inbound connection.
        if !new_outbound && let Some(pending) = dialing.filter(|&d| d != conn) {
            // Our dial competes only while it is authenticating; one that
            // authenticated as "not a contact" only carries our request.
            let authenticating =
                self.conns.get(&pending).map(|c| c.stage) == Some(Stage::Authenticating);
            let inbound_wins = !authenticating || !prefer_outbound;
            if inbound_wins {
                debug!(%peer, "inbound connection wins over our dial (rule 5)");
                if let Some(entry) = self.contacts.get_mut(&peer) {
                    entry.dialing = None;
                }
                self.close(pending);
            } else {
                debug!(%peer, "our dial wins over an inbound connection (rule 5)");
                self.close(conn);
                return;
            }
        }
        // Rules 1–4 against the connection the contact has.
        if let Some(old) = active.filter(|&a| a != conn) {
            let keep_new = match self.conns.get(&old) {
                None => true,
                Some(old) => new_connection_wins(
                    old.outbound,
                    new_created.duration_since(old.created),
                    new_outbound,
                    prefer_outbound,
                ),
            };
            if !keep_new {
                debug!(%peer, "keeping the existing connection (§11.4)");
                self.close(conn);
                return;
            }
            debug!(%peer, "a new connection replaces the old one (§11.4)");
            self.detach(&peer, old);
            self.close(old);
        }
        if let Some(entry) = self.contacts.get_mut(&peer) {
            entry.active = Some(conn);
            entry.failures = 0;
            entry.protocol_errors = 0;
            entry.next_dial = None;
        }
        self.emit_status(&peer);
        self.send_queued(&peer);
    }

    /// §11.4 rule 4: keep the outbound connection if the contact's hostname
    /// sorts before ours.
    fn prefer_outbound(&self, peer: &ServiceId) -> bool {
        match self.identity_for(peer.generation()) {
            Some(ours) => peer.onion_hostname() < ours.service_id().onion_hostname(),
            None => false,
        }
    }

    /// The contact's active connection `old` stops carrying chat: what was
    /// sent on it and not acknowledged goes back to the queue.
    fn detach(&mut self, peer: &ServiceId, old: ConnId) {
        if let Some(entry) = self.contacts.get_mut(peer)
            && entry.active == Some(old)
        {
            entry.active = None;
            self.requeue(peer);
        }
    }

    /// Our chat channel on `conn` closed while the connection lives on:
    /// what it carried goes back to the queue, ahead of later messages, and
    /// goes out again on a new channel (§9.2 resend with the same ids). A
    /// peer that keeps closing our channel gets its connection closed after
    /// [`MAX_CHAT_CHANNEL_CLOSURES`], so that refusing cannot make a loop;
    /// the reconnect policy then spaces out the next attempts.
    fn requeue_sent(&mut self, conn: ConnId) {
        let Some(peer) = self.peer_of(conn) else {
            return;
        };
        if self.contacts.get(&peer).and_then(|e| e.active) != Some(conn) {
            return;
        }
        self.requeue(&peer);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.chat_channel_closures += 1;
        if c.chat_channel_closures > MAX_CHAT_CHANNEL_CLOSURES {
            debug!(
                connection = conn,
                "the contact keeps closing our chat channel; closing"
            );
            c.send(Command::Close);
        } else {
            self.send_queued(&peer);
        }
    }

    fn requeue(&mut self, peer: &ServiceId) {
        let Some(entry) = self.contacts.get_mut(peer) else {
            return;
        };
        entry.sent_up_to = None;
        let mut sent: Vec<MessageId> = entry.in_flight.drain().map(|(_, id)| id).collect();
        sent.sort_unstable();
        for id in sent {
            self.message_status_changed(peer, id, MessageStatus::Queued);
        }
    }

    /// Sends the oldest queued messages of `peer` on its active connection,
    /// as many as its window of unacknowledged messages has room for
    /// ([`Limits::max_unacknowledged_messages`]). Bounding what is in flight
    /// bounds what a cut connection makes us send again, and what waits in
    /// a connection's buffers.
    fn send_queued(&mut self, peer: &ServiceId) {
        let Some(entry) = self.contacts.get(peer) else {
            return;
        };
        let Some(conn) = entry.active.and_then(|conn| self.conns.get(&conn)) else {
            return;
        };
        let room = self
            .limits
            .max_unacknowledged_messages
            .saturating_sub(entry.in_flight.len());
        if room == 0 {
            return;
        }
        let rows = match self.store.queued_outgoing(peer, entry.sent_up_to, room) {
            Ok(rows) => rows,
            Err(error) => return self.emit_error(Some(*peer), error.into()),
        };
        let Some(last) = rows.last().map(|row| row.id) else {
            return;
        };
        // With their age as `time_delta` (§9.2).
        let now = SystemTime::now();
        let mut batch = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            // Stored texts were checked when queued.
            let Ok(text) = ChatText::new(row.text) else {
                continue;
            };
            let age = now.duration_since(row.time).unwrap_or_default().as_secs();
            batch.push(OutgoingChat {
                wire_id: row.wire_id,
                text,
                time_delta: -i64::try_from(age).unwrap_or(i64::MAX),
            });
            ids.push((row.wire_id, row.id));
        }
        conn.send(Command::SendChat(batch));
        if let Some(entry) = self.contacts.get_mut(peer) {
            entry.sent_up_to = Some(last);
            entry.in_flight.extend(ids.iter().copied());
        }
        for (_, id) in ids {
            self.message_status_changed(peer, id, MessageStatus::Sent);
        }
    }

    fn chats_received(&mut self, conn: ConnId, messages: &[ReceivedChat]) -> bool {
        let Some(peer) = self.peer_of(conn) else {
            return false;
        };
        let now = SystemTime::now();
        let incoming: Vec<Incoming<'_>> = messages
            .iter()
            .map(|m| Incoming {
                wire_id: m.wire_id,
                text: &m.text,
                // §9.2: written `time_delta` (≤ 0) seconds before now.
                time: now
                    .checked_sub(Duration::from_secs(m.time_delta.unsigned_abs()))
                    .unwrap_or(SystemTime::UNIX_EPOCH),
                first_on_channel: m.first_on_channel,
            })
            .collect();
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let ids = match self
            .store
            .record_incoming_batch(&peer, &incoming, &mut c.resends)
        {
            Ok(ids) => ids,
            Err(error) => {
                self.emit_error(Some(peer), error.into());
                return false;
            }
        };
        for (message, id) in incoming.iter().zip(ids) {
            match id {
                Some(id) => self.emit(Event::MessageReceived(Message {
                    id,
                    contact: peer.into(),
                    direction: MessageDirection::Incoming,
                    text: message.text.to_owned(),
                    time: message.time,
                    status: MessageStatus::Acknowledged,
                })),
                None => debug!(
                    %peer,
                    wire_id = ?message.wire_id,
                    "resent message dropped (acknowledged again, §9.2)"
                ),
            }
        }
        true
    }

    fn chats_acknowledged(&mut self, conn: ConnId, acks: &[(WireId, bool)]) {
        let Some(peer) = self.peer_of(conn) else {
            return;
        };
        let acks: Vec<(WireId, bool, Option<MessageId>)> = match self.contacts.get_mut(&peer) {
            Some(entry) => acks
                .iter()
                .map(|&(wire_id, accepted)| (wire_id, accepted, entry.in_flight.remove(&wire_id)))
                .collect(),
            None => return,
        };
        match self.store.acknowledge_batch(&peer, &acks) {
            Ok(changed) => {
                for (id, status) in changed {
                    self.message_status_changed(&peer, id, status);
                }
                self.send_queued(&peer);
            }
            Err(error) => self.emit_error(Some(peer), error.into()),
        }
    }

    fn file_offered(&mut self, conn: ConnId, transfer: TransferId, name: String, size: u64) {
        let Some(peer) = self.peer_of(conn) else {
            return;
        };
        self.transfers.insert(transfer, (conn, peer));
        self.emit(Event::FileOffered(IncomingFile {
            transfer,
            contact: peer.into(),
            name,
            size,
            client: self.weak.clone(),
        }));
    }

    fn closed(&mut self, conn: ConnId, closure: Closure) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match &closure {
            Closure::DialFailed(error) => debug!(conn, %error, "dial failed"),
            Closure::Stream(Some(error)) => debug!(conn, %error, "connection failed"),
            other => debug!(conn, ?other, "connection closed"),
        }
        let Some(peer) = c.peer else {
            return;
        };
        let now = Instant::now();
        let Some(entry) = self.contacts.get_mut(&peer) else {
            return;
        };
        let was_active = entry.active == Some(conn);
        let was_dialing = entry.dialing == Some(conn);
        // Our request went out and the peer ended it without any answer
        // (it closed the request channel or the connection).
        let request_unanswered = c.request_sent
            && !c.request_pending
            && !c.request_answered
            && !matches!(closure, Closure::Shutdown)
            && entry.row.state == ContactState::RequestPending;
        if was_dialing {
            entry.dialing = None;
        }
        if was_active {
            entry.active = None;
        }
        if request_unanswered {
            entry.unanswered_requests += 1;
            if entry.unanswered_requests >= self.reconnect.max_unanswered_requests {
                let attempts = entry.unanswered_requests;
                self.request_failed(&peer, RequestFailure::NoAnswer { attempts });
                return;
            }
        }
        let delay = if was_active {
            Some(self.reconnect.after_disconnect)
        } else if was_dialing {
            match closure {
                Closure::DialFailed(_) | Closure::Stream(_) => {
                    entry.failures += 1;
                    Some(self.reconnect.after_failures(entry.failures))
                }
                Closure::Session(ricochet_proto::CloseReason::Protocol(_))
                    if c.stage < Stage::Authenticated =>
                {
                    entry.protocol_errors += 1;
                    Some(self.reconnect.after_protocol_error)
                }
                Closure::Shutdown => None,
                _ if c.request_answered => None,
                _ => Some(self.reconnect.after_failures(entry.failures.max(1))),
            }
        } else {
            None
        };
        if was_active {
            self.requeue(&peer);
            self.emit_status(&peer);
        }
        let has_connection = self
            .contacts
            .get(&peer)
            .is_some_and(|e| e.active.is_some() || e.dialing.is_some());
        if let Some(delay) = delay
            && !has_connection
        {
            self.schedule(&peer, now + delay);
        }
    }

    // ---- calls from the application ----

    /// Handles calls in order, sends in consecutive calls together.
    /// Returns the reply of a shutdown call; the calls after it are dropped
    /// (their callers see [`ClientError::Shutdown`]).
    fn handle_calls(&mut self, batch: Vec<Call>) -> Option<oneshot::Sender<()>> {
        let mut sends = Vec::new();
        for call in batch {
            match call {
                Call::SendMessages { id, texts, reply } => sends.push((id, texts, reply)),
                Call::Shutdown(reply) => {
                    self.send_messages(std::mem::take(&mut sends));
                    return Some(reply);
                }
                call => {
                    self.send_messages(std::mem::take(&mut sends));
                    self.handle_call(call);
                }
            }
        }
        self.send_messages(sends);
        None
    }

    fn handle_call(&mut self, call: Call) {
        match call {
            Call::Contacts(reply) => {
                let _ = reply.send(self.contact_list());
            }
            Call::ContactRequests(reply) => {
                let _ = reply.send(self.store.incoming_requests().map_err(Into::into));
            }
            Call::Blocked(reply) => {
                let _ = reply.send(Ok(self.blocked.iter().map(|&id| id.into()).collect()));
            }
            Call::SendContactRequest {
                id,
                nickname,
                message,
                reply,
            } => {
                let _ = reply.send(self.send_contact_request(*id.service_id(), nickname, message));
            }
            Call::AnswerContactRequest { id, answer, reply } => {
                let _ = reply.send(self.answer_contact_request(*id.service_id(), answer));
            }
            Call::RemoveContact { id, reply } => {
                let _ = reply.send(self.remove_contact(*id.service_id()));
            }
            Call::Rename {
                id,
                nickname,
                reply,
            } => {
                let _ = reply.send(self.rename(*id.service_id(), &nickname));
            }
            Call::Block { id, reply } => {
                let _ = reply.send(self.block(*id.service_id()));
            }
            Call::Unblock { id, reply } => {
                let _ = reply.send(self.unblock(*id.service_id()));
            }
            Call::SendMessages { id, texts, reply } => {
                self.send_messages(vec![(id, texts, reply)]);
            }
            Call::Shutdown(reply) => {
                // Only reached through `handle_calls`, which stops first.
                let _ = reply.send(());
            }
            Call::History {
                id,
                before,
                limit,
                reply,
            } => {
                let history =
                    self.store
                        .history(id.service_id(), before, limit)
                        .map(|mut messages| {
                            for message in &mut messages {
                                self.overlay_sent(message);
                            }
                            messages
                        });
                let _ = reply.send(history.map_err(Into::into));
            }
            Call::SendFile { id, upload, reply } => {
                let _ = reply.send(self.send_file(*id.service_id(), upload));
            }
            Call::AnswerFile {
                transfer,
                destination,
                reply,
            } => {
                let _ = reply.send(
                    self.route_transfer(transfer, |transfer| Command::AnswerFile {
                        transfer,
                        destination,
                    }),
                );
            }
            Call::CancelFile { transfer, reply } => {
                let _ = reply.send(
                    self.route_transfer(transfer, |transfer| Command::CancelFile { transfer }),
                );
            }
            Call::Message { id, reply } => {
                let message = self.store.message(id).map(|mut message| {
                    if let Some(message) = &mut message {
                        self.overlay_sent(message);
                    }
                    message
                });
                let _ = reply.send(message.map_err(Into::into));
            }
            Call::Stats(reply) => {
                let _ = reply.send(Stats {
                    connections: self.conns.len(),
                    contact_connections: self
                        .conns
                        .values()
                        .filter(|c| c.stage == Stage::Contact)
                        .count(),
                });
            }
        }
    }

    /// A stored message that is on the wire right now is
    /// [`MessageStatus::Sent`] (the database says queued).
    fn overlay_sent(&self, message: &mut Message) {
        if message.status == MessageStatus::Queued
            && let Some(entry) = self.contacts.get(message.contact.service_id())
            && entry.in_flight.values().any(|id| *id == message.id)
        {
            message.status = MessageStatus::Sent;
        }
    }

    fn contact_list(&self) -> Vec<Contact> {
        let mut list: Vec<Contact> = self
            .contacts
            .iter()
            .filter_map(|(id, entry)| {
                Some(Contact {
                    id: (*id).into(),
                    nickname: entry.row.nickname.clone(),
                    status: self.status_of(id)?,
                })
            })
            .collect();
        list.sort_by(|a, b| a.nickname.cmp(&b.nickname).then(a.id.cmp(&b.id)));
        list
    }

    fn check_peer(&self, id: ServiceId) -> Result<(), ClientError> {
        if self.is_own(&id) {
            return Err(ClientError::OwnId {
                id: Box::new(id.into()),
            });
        }
        if self.identity_for(id.generation()).is_none() {
            return Err(ClientError::NoIdentityFor {
                generation: id.generation(),
            });
        }
        Ok(())
    }

    fn send_contact_request(
        &mut self,
        id: ServiceId,
        nickname: String,
        message: String,
    ) -> Result<(), ClientError> {
        self.check_peer(id)?;
        if self.blocked.contains(&id) {
            return Err(ClientError::Blocked {
                id: Box::new(id.into()),
            });
        }
        if let Some(entry) = self.contacts.get(&id)
            && entry.row.state == ContactState::Contact
        {
            return Err(ClientError::AlreadyContact {
                id: Box::new(id.into()),
            });
        }
        // A request from it is waiting: asking it back is accepting it.
        if self.store.incoming_request_status(&id)?.0 {
            return self.answer_contact_request(id, Answer::Accept(nickname));
        }
        let row = ContactRow {
            id,
            nickname: self.unique_nickname(&nickname, &id),
            state: ContactState::RequestPending,
            // What the request carries: our own suggested nickname.
            request_nickname: self.own_nickname.clone(),
            request_message: message,
        };
        self.store.add_contact(&row)?;
        let entry = self.contacts.entry(id).or_insert(Entry::new(row.clone()));
        entry.row = row;
        entry.failures = 0;
        entry.protocol_errors = 0;
        self.emit_status(&id);
        self.schedule(&id, Instant::now());
        Ok(())
    }

    fn answer_contact_request(&mut self, id: ServiceId, answer: Answer) -> Result<(), ClientError> {
        let (pending, _) = self.store.incoming_request_status(&id)?;
        if !pending {
            return Err(ClientError::NoSuchRequest {
                id: Box::new(id.into()),
            });
        }
        let conn = self
            .conns
            .iter()
            .find(|(_, c)| c.carries_request && c.peer == Some(id))
            .map(|(conn, _)| *conn);
        match answer {
            Answer::Accept(nickname) => {
                let row = ContactRow {
                    id,
                    nickname: self.unique_nickname(&nickname, &id),
                    state: ContactState::Contact,
                    request_nickname: String::new(),
                    request_message: String::new(),
                };
                self.store.add_contact(&row)?;
                self.store.remove_incoming_request(&id)?;
                self.contacts.insert(id, Entry::new(row));
                self.emit_status(&id);
                match conn.and_then(|conn| self.conns.get(&conn)) {
                    // §8.2 step 8: the same connection then carries chat.
                    Some(c) => c.send(Command::AcceptContactRequest),
                    // It went away: dial it; it will see us as accepting.
                    None => self.schedule(&id, Instant::now()),
                }
            }
            Answer::Reject => {
                self.store.remove_incoming_request(&id)?;
                self.store.block(&id)?;
                self.blocked.insert(id);
                if let Some(c) = conn.and_then(|conn| self.conns.get(&conn)) {
                    c.send(Command::RejectContactRequest);
                }
            }
        }
        Ok(())
    }

    /// `wanted`, or `wanted (2)`, `wanted (3)`… so that no two contacts
    /// share a nickname (§8.1).
    fn unique_nickname(&self, wanted: &str, id: &ServiceId) -> String {
        let wanted = if wanted.trim().is_empty() {
            // The start of the id: enough to tell contacts apart.
            id.to_string().chars().take(16).collect()
        } else {
            wanted.trim().to_owned()
        };
        let taken = |name: &str| {
            self.contacts
                .iter()
                .any(|(other, e)| other != id && e.row.nickname == name)
        };
        if !taken(&wanted) {
            return wanted;
        }
        (2..)
            .map(|n| format!("{wanted} ({n})"))
            .find(|name| !taken(name))
            .unwrap_or(wanted)
    }

    fn connections_of(&self, id: &ServiceId) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.peer.as_ref() == Some(id))
            .map(|(conn, _)| *conn)
            .collect()
    }

    fn remove_contact(&mut self, id: ServiceId) -> Result<(), ClientError> {
        if !self.contacts.contains_key(&id) {
            return Err(ClientError::NoSuchContact {
                id: Box::new(id.into()),
            });
        }
        let failed = self.store.remove_contact(&id)?;
        self.contacts.remove(&id);
        for conn in self.connections_of(&id) {
            self.close(conn);
        }
        for message in failed {
            self.message_status_changed(
                &id,
                message,
                MessageStatus::Failed(FailureReason::ContactGone),
            );
        }
        Ok(())
    }

    fn rename(&mut self, id: ServiceId, nickname: &str) -> Result<(), ClientError> {
        if !self.contacts.contains_key(&id) {
            return Err(ClientError::NoSuchContact {
                id: Box::new(id.into()),
            });
        }
        let nickname = self.unique_nickname(nickname, &id);
        self.store.set_nickname(&id, &nickname)?;
        if let Some(entry) = self.contacts.get_mut(&id) {
            entry.row.nickname = nickname;
        }
        Ok(())
    }

    fn block(&mut self, id: ServiceId) -> Result<(), ClientError> {
        if self.is_own(&id) {
            return Err(ClientError::OwnId {
                id: Box::new(id.into()),
            });
        }
        self.store.block(&id)?;
        self.blocked.insert(id);
        self.store.remove_incoming_request(&id)?;
        for conn in self.connections_of(&id) {
            match self.conns.get(&conn) {
                Some(c) if c.carries_request => c.send(Command::RejectContactRequest),
                _ => self.close(conn),
            }
        }
        if let Some(entry) = self.contacts.get_mut(&id) {
            entry.next_dial = None;
        }
        self.fail_unfinished(&id);
        self.emit_status(&id);
        Ok(())
    }

    fn unblock(&mut self, id: ServiceId) -> Result<(), ClientError> {
        self.store.unblock(&id)?;
        self.blocked.remove(&id);
        self.emit_status(&id);
        self.schedule(&id, Instant::now());
        Ok(())
    }

    /// Why `id` cannot be sent messages, if it cannot.
    fn check_messageable(&self, id: &ServiceId) -> Result<(), ClientError> {
        let Some(entry) = self.contacts.get(id) else {
            return Err(ClientError::NoSuchContact {
                id: Box::new((*id).into()),
            });
        };
        if matches!(
            entry.row.state,
            ContactState::Contact | ContactState::RequestPending
        ) && !self.blocked.contains(id)
        {
            return Ok(());
        }
        let status = match self.status_of(id) {
            Some(ContactStatus::Blocked) => "blocked",
            Some(ContactStatus::Rejected) => "rejected",
            _ => "request failed",
        };
        Err(ClientError::NotMessageable {
            id: Box::new((*id).into()),
            status,
        })
    }

    /// Queues the texts of several send calls in one transaction, answers
    /// each call with one handle per text, then sends what the contacts'
    /// windows have room for.
    fn send_messages(&mut self, sends: Vec<SendCall>) {
        if sends.is_empty() {
            return;
        }
        // Check every call and split its texts into parts (§9.2); a call
        // with a problem is answered at once and stores nothing.
        let mut valid = Vec::with_capacity(sends.len());
        for (id, texts, reply) in sends {
            let contact = *id.service_id();
            if let Err(error) = self.check_messageable(&contact) {
                let _ = reply.send(Err(error));
                continue;
            }
            let parts: Vec<Vec<String>> = texts
                .iter()
                .map(|text| {
                    ChatText::split(text)
                        .into_iter()
                        .map(ChatText::into_string)
                        .collect()
                })
                .collect();
            if parts.iter().any(Vec::is_empty) {
                let _ = reply.send(Err(ClientError::EmptyMessage));
                continue;
            }
            valid.push((contact, parts, reply));
        }
        let batches: Vec<(ServiceId, Vec<String>)> = valid
            .iter()
            .map(|(contact, parts, _)| (*contact, parts.concat()))
            .collect();
        let stored = match self.store.queue_messages(&batches, SystemTime::now()) {
            Ok(stored) => stored,
            Err(error) if valid.len() == 1 => {
                if let Some((_, _, reply)) = valid.pop() {
                    let _ = reply.send(Err(error.into()));
                }
                return;
            }
            Err(_) => {
                // Let each call fail or succeed on its own.
                for (contact, parts, reply) in valid {
                    let texts = parts.into_iter().map(|p| p.concat()).collect();
                    self.send_messages(vec![(contact.into(), texts, reply)]);
                }
                return;
            }
        };
        let mut contacts = Vec::new();
        for ((contact, parts, reply), numbered) in valid.into_iter().zip(stored) {
            let mut numbered = numbered.into_iter();
            let mut handles = Vec::with_capacity(parts.len());
            for text_parts in &parts {
                let mut handle = MessageHandle {
                    contact: contact.into(),
                    parts: Vec::with_capacity(text_parts.len()),
                };
                for (message, _) in numbered.by_ref().take(text_parts.len()) {
                    let (sender, receiver) = watch::channel(MessageStatus::Queued);
                    self.watches.insert(message, sender);
                    handle.parts.push((message, receiver));
                    self.emit(Event::MessageStatusChanged {
                        contact: contact.into(),
                        message,
                        status: MessageStatus::Queued,
                    });
                }
                handles.push(handle);
            }
            let _ = reply.send(Ok(handles));
            if !contacts.contains(&contact) {
                contacts.push(contact);
            }
        }
        for contact in contacts {
            self.send_queued(&contact);
        }
    }

    fn send_file(&mut self, id: ServiceId, upload: Upload) -> Result<(), ClientError> {
        if id.generation() != Generation::V3 {
            return Err(ClientError::FileTransferUnsupported {
                id: Box::new(id.into()),
            });
        }
        let Some(entry) = self.contacts.get(&id) else {
            return Err(ClientError::NoSuchContact {
                id: Box::new(id.into()),
            });
        };
        let Some(conn) = entry.active.and_then(|conn| self.conns.get(&conn)) else {
            return Err(ClientError::ContactOffline {
                id: Box::new(id.into()),
            });
        };
        let transfer = upload.transfer;
        conn.send(Command::OfferFile(upload));
        if let Some(active) = entry.active {
            self.transfers.insert(transfer, (active, id));
        }
        Ok(())
    }

    fn route_transfer(
        &mut self,
        transfer: TransferId,
        command: impl FnOnce(TransferId) -> Command,
    ) -> Result<(), ClientError> {
        let Some(c) = self
            .transfers
            .get(&transfer)
            .and_then(|(conn, _)| self.conns.get(conn))
        else {
            return Err(ClientError::NoSuchTransfer(transfer));
        };
        c.send(command(transfer));
        Ok(())
    }
}

/// §11.4 rules 2–4 (rule 1, a dead old connection, is the caller's):
/// whether a new contact connection replaces the old one.
///
/// `prefer_outbound` is `peer hostname < our hostname`; with it, both peers
/// keep the connection whose listener has the smaller hostname, the rule of
/// the released clients (not the upstream comment's).
fn new_connection_wins(
    old_outbound: bool,
    old_age: Duration,
    new_outbound: bool,
    prefer_outbound: bool,
) -> bool {
    if old_outbound == new_outbound || old_age > YOUNG_CONNECTION {
        return true;
    }
    new_outbound == prefer_outbound
}

impl Drop for Manager {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_direction_or_old_connections_lose_to_new_ones() {
        for prefer_outbound in [false, true] {
            for direction in [false, true] {
                assert!(new_connection_wins(
                    direction,
                    Duration::ZERO,
                    direction,
                    prefer_outbound
                ));
                assert!(new_connection_wins(
                    direction,
                    Duration::from_secs(31),
                    !direction,
                    prefer_outbound
                ));
            }
        }
    }

    /// The worked example of §11.4: both peers keep the connection whose
    /// server (listener) has the smaller hostname, whatever the order.
    #[test]
    fn both_peers_keep_the_connection_to_the_smaller_hostname() {
        let young = Duration::from_secs(1);
        // "a" < "b". Connection X: a dials b (server b). Connection Y: b
        // dials a (server a). Both must keep Y.
        // At a: prefer_outbound = ("b" < "a") = false. X is outbound.
        let a_keeps_new_y = new_connection_wins(true, young, false, false);
        let a_keeps_new_x = new_connection_wins(false, young, true, false);
        // At b: prefer_outbound = ("a" < "b") = true. Y is outbound.
        let b_keeps_new_y = new_connection_wins(false, young, true, true);
        let b_keeps_new_x = new_connection_wins(true, young, false, true);
        assert!(a_keeps_new_y && !a_keeps_new_x);
        assert!(b_keeps_new_y && !b_keeps_new_x);
    }

    #[test]
    fn reconnect_delays_follow_ricochet_1() {
        let policy = ReconnectPolicy::default();
        let delays: Vec<u64> = (1..=8)
            .map(|n| policy.after_failures(n).as_secs())
            .collect();
        assert_eq!(delays, [30, 30, 30, 30, 120, 120, 900, 900]);
    }
}
