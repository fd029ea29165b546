//! The driver: one task that moves things between the application, the
//! client core ([`crate::core`]), the connection tasks and the store
//! thread. It decides nothing; every decision is the core's.
//!
//! Each turn it takes one input (an API call — with every call already
//! waiting —, a connection's report, a new inbound stream, finished store
//! jobs, or the core's deadline), hands it to the core, then carries out
//! the core's outputs: the store jobs of the turn go to the store thread as
//! one batch, so they share one transaction.
//!
//! It never waits on a connection task: it sends commands on unbounded
//! channels and hears reports on one bounded channel, so connections can
//! wait on it (for a message to be stored) without a deadlock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use ricochet_identity::{ClientAuthPublicKey, Generation, IdentityKey, RicochetId};
use ricochet_proto::SessionConfig;
use ricochet_transport::ErrorChain;
use ricochet_transport::ServiceStatus;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::{Limits, PROFILE_DATABASE, ReconnectPolicy};
use crate::connection::{self, ConnectionContext, Origin, Upcall};
use crate::core::io::{
    ApiCall, CallId, Closure, Command, ConnId, Notice, Now, Output, Report, Response, StoreDone,
    StoreJob,
};
use crate::core::private::PrivateConfig;
use crate::core::{Core, CoreConfig};
use crate::erased::{BoxStream, DynListener, DynTransport};
use crate::error::ClientError;
use crate::model::MessageId;
use crate::scrub;
use crate::status_board::StatusBoard;
use crate::store::{self, StoreHandle};

/// The most authorised clients a v3 descriptor reliably holds (arti's
/// recommendation, from the 50 kB descriptor limit; docs/private-mode.md).
const MAX_AUTHORIZED: usize = 160;
/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Reports a connection may queue before it waits for the driver.
const REPORT_QUEUE: usize = 256;
/// Most API calls (or reports) handled in one turn; bounded so that the
/// other inputs are not starved. Their store jobs share one transaction.
const TURN_BATCH: usize = 256;

/// The messages that one send call queued: per text, the numbers of its
/// parts, and the board of their statuses (in the same order, flattened).
pub(crate) type Queued = (Arc<StatusBoard>, Vec<Vec<MessageId>>);

/// What a [`crate::Client`] handle sends to the driver.
#[derive(Debug)]
// Boxing the call would cost an allocation per call for the sake of the
// one shutdown of a client.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Call {
    Api(ApiCall, oneshot::Sender<Reply>),
    Shutdown(oneshot::Sender<()>),
}

/// The answer to a [`Call::Api`].
#[derive(Debug)]
pub(crate) enum Reply {
    Core(Response),
    /// [`Response::Queued`], with the status board of the messages.
    Queued(Result<Queued, ClientError>),
}

/// What a client is started with.
pub(crate) struct StartConfig {
    pub(crate) profile: PathBuf,
    pub(crate) transport: Arc<dyn DynTransport>,
    pub(crate) limits: Limits,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) v2_identity: bool,
    pub(crate) keys: Vec<IdentityKey>,
    pub(crate) own_nickname: String,
    pub(crate) import_refresh: Option<PathBuf>,
}

/// A started client's ends of the driver.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) calls: mpsc::UnboundedSender<Call>,
    pub(crate) notices: mpsc::UnboundedReceiver<Notice>,
    /// Our ids, v3 first.
    pub(crate) ids: Vec<RicochetId>,
    /// The state of our onion services.
    pub(crate) services: Services,
    pub(crate) transfer_ids: Arc<AtomicU64>,
}

/// The state of our onion services.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    /// The public service of each id, v3 first.
    pub(crate) public: Vec<(RicochetId, watch::Receiver<ServiceStatus>)>,
    /// The private service ([`ServiceStatus::Stopped`] while none runs).
    pub(crate) private: watch::Receiver<ServiceStatus>,
}

/// New streams from our services: the identity they reached, whether
/// through the public service, and the stream.
type Incoming = mpsc::Sender<(Arc<IdentityKey>, bool, BoxStream)>;

fn now() -> Now {
    Now {
        instant: Instant::now(),
        wall: SystemTime::now(),
    }
}

/// Opens the profile (on the store thread), brings the transport up,
/// publishes, and spawns the driver.
pub(crate) async fn start(config: StartConfig) -> Result<Started, ClientError> {
    let mut generations = vec![Generation::V3];
    if config.v2_identity {
        generations.push(Generation::V2);
    }
    let import = config.import_refresh.map(|path| store::Import {
        path,
        own_nickname: config.own_nickname.clone(),
    });
    let opened = store::open(
        config.profile,
        PROFILE_DATABASE,
        generations,
        config.keys,
        import,
    )
    .await?;
    let identities: Vec<Arc<IdentityKey>> = opened.identities.into_iter().map(Arc::new).collect();

    config.transport.bootstrap().await?;
    info!("connected to the Tor network");
    let (notices_tx, notices_rx) = mpsc::unbounded_channel();
    let (incoming_tx, incoming_rx) = mpsc::channel(16);
    let accepting_requests = opened.private.as_ref().is_none_or(|p| p.accepting_requests);
    // The public services come up here, so that a transport that cannot
    // publish fails the start; later changes run in the background.
    let mut public = Vec::new();
    let mut services = Vec::new();
    for identity in &identities {
        let id = RicochetId::from(identity.service_id());
        let (status_tx, status_rx) = watch::channel(ServiceStatus::Stopped);
        services.push((id, status_rx));
        let hosted = if accepting_requests {
            let listener = config.transport.listen(identity).await?;
            let host = Host {
                label: ServiceLabel::Public(id),
                identity: identity.clone(),
                incoming: incoming_tx.clone(),
                status: status_tx.clone(),
                notices: notices_tx.clone(),
            };
            status_tx.send_replace(ServiceStatus::Publishing);
            Some(host.spawn(Launch::Running(listener)))
        } else {
            None
        };
        public.push(PublicService {
            id,
            identity: identity.clone(),
            status: status_tx,
            hosted,
        });
    }
    let (private_status_tx, private_status_rx) = watch::channel(ServiceStatus::Stopped);
    let v3_identity = identities
        .iter()
        .find(|k| k.generation() == Generation::V3)
        .cloned();
    let (private, private_config) = match (opened.private, v3_identity) {
        (Some(mode), Some(identity)) => {
            let config = PrivateConfig {
                address: mode.service_key.service_id(),
                client_auth_seed: mode.client_auth_seed,
                accepting_requests: mode.accepting_requests,
            };
            let service = PrivateService {
                key: Arc::new(mode.service_key),
                identity,
                status: private_status_tx,
                hosted: None,
                authorized: Vec::new(),
            };
            (Some(service), Some(config))
        }
        _ => (None, None),
    };

    let (calls_tx, calls_rx) = mpsc::unbounded_channel();
    let (reports_tx, reports_rx) = mpsc::channel(REPORT_QUEUE);
    let transfer_ids = Arc::new(AtomicU64::new(1));
    let mut session_config = SessionConfig::default();
    session_config.unknown_purpose_timeout = config.limits.authentication_timeout;
    session_config.max_incoming_transfers = config.limits.max_incoming_transfers;
    // Tell contacts of our private service (docs/private-mode.md); a
    // profile without one does not offer it.
    session_config.private_endpoint = private.is_some();
    let ours = identities
        .iter()
        .map(|k| k.service_id())
        .collect::<Vec<_>>();
    let core = Core::new(
        CoreConfig {
            ours: ours.clone(),
            limits: config.limits.clone(),
            reconnect: config.reconnect,
            own_nickname: config.own_nickname,
            private: private_config,
        },
        opened.snapshot,
        now(),
    );
    let mut driver = Driver {
        core,
        store: Some(opened.store),
        jobs: Vec::new(),
        identities,
        transport: config.transport,
        context: ConnectionContext {
            config: session_config,
            reports: reports_tx,
            transfer_ids: transfer_ids.clone(),
            max_queued_output: config.limits.max_queued_output,
        },
        connections: HashMap::new(),
        awaiting_store: HashMap::new(),
        calls: HashMap::new(),
        next_call: 1,
        boards: HashMap::new(),
        notices: notices_tx,
        incoming: incoming_tx,
        public,
        private,
    };
    // The core's first outputs (which services run) are carried out
    // before the application can ask about them.
    driver.flush();
    tokio::spawn(driver.run(calls_rx, reports_rx, incoming_rx, opened.done));
    Ok(Started {
        calls: calls_tx,
        notices: notices_rx,
        ids: ours.into_iter().map(Into::into).collect(),
        services: Services {
            public: services,
            private: private_status_rx,
        },
        transfer_ids,
    })
}

/// Which of our services a hosted one is, for logs and notices.
#[derive(Debug, Clone, Copy)]
enum ServiceLabel {
    Public(RicochetId),
    Private,
}

/// How a hosted service starts.
enum Launch {
    /// Published already.
    Running(Box<dyn DynListener>),
    /// To publish: the public service of the host's identity.
    Public { transport: Arc<dyn DynTransport> },
    /// To publish: the private service of `key`, for these authorised
    /// clients.
    Private {
        transport: Arc<dyn DynTransport>,
        key: Arc<IdentityKey>,
        authorized: Vec<ClientAuthPublicKey>,
    },
}

/// What a hosted service needs.
struct Host {
    label: ServiceLabel,
    /// The identity peers authenticate with when they reach the service
    /// (our public one, also for the private service: spec §7's proofs
    /// name the public id).
    identity: Arc<IdentityKey>,
    incoming: Incoming,
    status: watch::Sender<ServiceStatus>,
    notices: mpsc::UnboundedSender<Notice>,
}

/// One of our services running in a task of its own: dropping it (its
/// command sender) takes the service down.
struct Hosted {
    /// New authorised sets, for a private service.
    authorized: mpsc::UnboundedSender<Vec<ClientAuthPublicKey>>,
    task: JoinHandle<()>,
}

impl Drop for Hosted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Our public service of one id.
struct PublicService {
    id: RicochetId,
    identity: Arc<IdentityKey>,
    status: watch::Sender<ServiceStatus>,
    hosted: Option<Hosted>,
}

/// Our private service (docs/private-mode.md).
struct PrivateService {
    /// The service's own key (its address).
    key: Arc<IdentityKey>,
    /// Our v3 identity, which its connections authenticate.
    identity: Arc<IdentityKey>,
    status: watch::Sender<ServiceStatus>,
    hosted: Option<Hosted>,
    /// The set the hosted service was last given.
    authorized: Vec<ClientAuthPublicKey>,
}

impl Host {
    fn spawn(self, launch: Launch) -> Hosted {
        let (authorized, commands) = mpsc::unbounded_channel();
        let task = tokio::spawn(self.run(launch, commands));
        Hosted { authorized, task }
    }

    /// Publishes (if not yet), then hands over incoming streams, applies
    /// new authorised sets and tells how the service fares, until the
    /// [`Hosted`] is dropped.
    async fn run(
        self,
        launch: Launch,
        mut commands: mpsc::UnboundedReceiver<Vec<ClientAuthPublicKey>>,
    ) {
        let launched = match launch {
            Launch::Running(listener) => Ok(listener),
            Launch::Public { transport } => transport.listen(&self.identity).await,
            Launch::Private {
                transport,
                key,
                authorized,
            } => transport.listen_private(&key, &authorized).await,
        };
        let mut listener = match launched {
            Ok(listener) => listener,
            // A transport of the application's that cannot host a service
            // for authorised clients only: contacts reach us publicly.
            Err(error)
                if matches!(self.label, ServiceLabel::Private)
                    && error.kind() == ricochet_transport::ErrorKind::Configuration =>
            {
                warn!(error = %ErrorChain(&error), "no private service: this transport cannot host one");
                self.show(ServiceStatus::Stopped);
                return;
            }
            Err(error) => {
                warn!(error = %ErrorChain(&error), "cannot publish our service");
                self.show(ServiceStatus::Failed {
                    reason: ErrorChain(&error).to_string(),
                });
                return;
            }
        };
        let mut status = listener.status();
        status.mark_changed();
        let mut status_open = true;
        // A peer that reaches us proves the service published, whatever the
        // transport says: arti reports "running" only once its descriptor
        // is on every directory, and a peer may have fetched it from the
        // first (on the test network a contact request came 44 ms before
        // arti's "running"). Until the transport says more than
        // "publishing", its "publishing" is not shown again.
        let mut reached_first = false;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(stream) => {
                        if *self.status.borrow() == ServiceStatus::Publishing {
                            reached_first = true;
                            self.show(ServiceStatus::Published);
                        }
                        let via_public = matches!(self.label, ServiceLabel::Public(_));
                        if self.incoming.send((self.identity.clone(), via_public, stream)).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        warn!(error = %ErrorChain(&error), "accepting a connection failed");
                        // A listener that fails at once would spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                command = commands.recv() => {
                    let Some(authorized) = command else {
                        return;
                    };
                    // A new descriptor is due: "publishing" means it again.
                    reached_first = false;
                    if let Err(error) = listener.set_authorized(&authorized).await {
                        warn!(error = %ErrorChain(&error), "cannot change who may reach our private service");
                    }
                }
                changed = status.changed(), if status_open => {
                    if changed.is_err() {
                        // The transport dropped its side: nothing more to hear.
                        status_open = false;
                        continue;
                    }
                    let now = status.borrow_and_update().clone();
                    if reached_first {
                        match now {
                            // Shown already.
                            ServiceStatus::Publishing => continue,
                            ServiceStatus::Published => {
                                reached_first = false;
                                continue;
                            }
                            _ => reached_first = false,
                        }
                    }
                    self.show(now);
                }
            }
        }
    }

    /// Tells the application and the log how the service fares. The driver
    /// says "publishing" as it launches a service and the transport says it
    /// again as it starts: told once. A "published" again is told: it is a
    /// new descriptor up (the system tor re-adds a service within
    /// milliseconds, so its "publishing" in between may never be seen).
    fn show(&self, now: ServiceStatus) {
        if now == ServiceStatus::Publishing && *self.status.borrow() == now {
            return;
        }
        let notice = match self.label {
            ServiceLabel::Public(id) => {
                match &now {
                    ServiceStatus::Publishing => {
                        info!(id = %scrub::Id(id), "publishing our onion service")
                    }
                    ServiceStatus::Published => {
                        info!(id = %scrub::Id(id), "our onion service is published: contacts can reach us");
                    }
                    other => {
                        warn!(id = %scrub::Id(id), status = %other, "our onion service is not reachable")
                    }
                }
                Notice::ServiceStatusChanged {
                    id,
                    status: now.clone(),
                }
            }
            ServiceLabel::Private => {
                match &now {
                    ServiceStatus::Publishing => info!("publishing our private service"),
                    ServiceStatus::Published => {
                        info!("our private service is published: contacts can reach us through it");
                    }
                    other => warn!(status = %other, "our private service is not reachable"),
                }
                Notice::PrivateServiceStatusChanged {
                    status: now.clone(),
                }
            }
        };
        self.status.send_replace(now);
        let _ = self.notices.send(notice);
    }
}

/// A connection task and its command channel.
struct Task {
    commands: mpsc::UnboundedSender<Command>,
    handle: JoinHandle<()>,
}

struct Driver {
    core: Core,
    /// `None` once shutdown has let the store thread go.
    store: Option<StoreHandle>,
    /// The store jobs of this turn.
    jobs: Vec<StoreJob>,
    /// Our identities, v3 first.
    identities: Vec<Arc<IdentityKey>>,
    transport: Arc<dyn DynTransport>,
    context: ConnectionContext,
    connections: HashMap<ConnId, Task>,
    /// Connections waiting for their received messages to be stored.
    awaiting_store: HashMap<ConnId, oneshot::Sender<bool>>,
    /// API calls waiting for the core's answer.
    calls: HashMap<CallId, oneshot::Sender<Reply>>,
    next_call: CallId,
    /// The status board of each message sent in this run and its place on
    /// it, until final or until nobody holds the board.
    boards: HashMap<MessageId, (Weak<StatusBoard>, usize)>,
    notices: mpsc::UnboundedSender<Notice>,
    incoming: Incoming,
    /// Our public services, one per identity.
    public: Vec<PublicService>,
    /// Our private service, for a profile with a v3 identity.
    private: Option<PrivateService>,
}

impl Driver {
    async fn run(
        mut self,
        mut calls: mpsc::UnboundedReceiver<Call>,
        mut reports: mpsc::Receiver<Upcall>,
        mut incoming: mpsc::Receiver<(Arc<IdentityKey>, bool, BoxStream)>,
        mut store_done: mpsc::UnboundedReceiver<Vec<StoreDone>>,
    ) {
        let mut shutdown_reply = None;
        loop {
            let deadline = self.core.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                call = calls.recv() => {
                    // Every call already waiting is handled in this turn, so
                    // that sends from several tasks share one transaction.
                    let mut next = call;
                    if next.is_none() {
                        break;
                    }
                    let mut handled = 0;
                    while let Some(call) = next.take() {
                        match call {
                            Call::Api(request, reply) => self.call(request, reply),
                            Call::Shutdown(reply) => {
                                shutdown_reply = Some(reply);
                                break;
                            }
                        }
                        handled += 1;
                        if handled < TURN_BATCH {
                            next = calls.try_recv().ok();
                        }
                    }
                    if shutdown_reply.is_some() {
                        break;
                    }
                }
                Some(upcall) = reports.recv() => {
                    self.upcall(upcall);
                    for _ in 1..TURN_BATCH {
                        match reports.try_recv() {
                            Ok(upcall) => self.upcall(upcall),
                            Err(_) => break,
                        }
                    }
                }
                Some((identity, via_public, stream)) = incoming.recv() => {
                    self.accept(identity, via_public, stream);
                }
                done = store_done.recv() => match done {
                    Some(done) => self.store_done(done),
                    None => {
                        // The store thread ended by itself (it panicked):
                        // without its profile the client cannot go on.
                        let error = ClientError::Storage(store::gone());
                        warn!(error = %ErrorChain(&error), "shutting down");
                        self.notice(Notice::Error { contact: None, error });
                        break;
                    }
                },
                () = sleep => self.core.handle_timeout(now()),
            }
            self.flush();
        }
        self.shutdown(&mut reports, &mut store_done).await;
        drop(self);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Closes every connection (waiting [`SHUTDOWN_GRACE`] for them), lets
    /// the store finish its work, and closes the database.
    async fn shutdown(
        &mut self,
        reports: &mut mpsc::Receiver<Upcall>,
        store_done: &mut mpsc::UnboundedReceiver<Vec<StoreDone>>,
    ) {
        self.stop_services();
        self.core.shutdown();
        self.flush();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !self.core.is_idle() {
            tokio::select! {
                Some(upcall) = reports.recv() => self.upcall(upcall),
                Some(done) = store_done.recv() => self.store_done(done),
                () = tokio::time::sleep_until(deadline) => break,
            }
            self.flush();
        }
        for (_, task) in self.connections.drain() {
            task.handle.abort();
        }
        // The thread finishes what it has, closes the database, and hangs up.
        self.store = None;
        while let Some(done) = store_done.recv().await {
            self.store_done(done);
            self.flush();
        }
    }

    fn call(&mut self, request: ApiCall, reply: oneshot::Sender<Reply>) {
        let call = self.next_call;
        self.next_call += 1;
        self.calls.insert(call, reply);
        self.core.handle_call(now(), call, request);
    }

    fn upcall(&mut self, upcall: Upcall) {
        let Upcall {
            conn,
            report,
            stored,
        } = upcall;
        if let Some(stored) = stored {
            self.awaiting_store.insert(conn, stored);
        }
        let closed = matches!(report, Report::Closed(_));
        self.core.handle_report(now(), conn, report);
        if closed {
            self.connections.remove(&conn);
            self.awaiting_store.remove(&conn);
        }
    }

    fn accept(&mut self, identity: Arc<IdentityKey>, via_public: bool, stream: BoxStream) {
        if let Some(conn) = self.core.handle_incoming(now(), via_public) {
            self.spawn(conn, identity, Origin::Accepted(stream));
        }
    }

    fn store_done(&mut self, done: Vec<StoreDone>) {
        let now = now();
        for done in done {
            self.core.handle_store_done(now, done);
        }
    }

    fn spawn(&mut self, conn: ConnId, identity: Arc<IdentityKey>, origin: Origin) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let handle = tokio::spawn(connection::run(
            conn,
            identity,
            origin,
            self.context.clone(),
            receiver,
        ));
        self.connections.insert(conn, Task { commands, handle });
    }

    /// Carries out what the core wants, then sends the turn's store jobs.
    fn flush(&mut self) {
        loop {
            while let Some(output) = self.core.poll_output() {
                self.output(output);
            }
            if self.jobs.is_empty() {
                return;
            }
            let jobs = std::mem::take(&mut self.jobs);
            let refused = match &self.store {
                Some(store) => store.submit(jobs).err(),
                None => Some(jobs),
            };
            let Some(refused) = refused else {
                return;
            };
            // The store is gone: the jobs fail, and the core hears so (a
            // connection waiting for its messages to be stored closes
            // without acknowledging them).
            let now = now();
            for job in refused {
                let outcome = Err(store::gone());
                self.core.handle_store_done(now, StoreDone { job, outcome });
            }
        }
    }

    fn output(&mut self, output: Output) {
        match output {
            Output::Services { public, authorized } => self.services(public, authorized),
            Output::Dial { conn, peer, route } => {
                let identity = self
                    .identities
                    .iter()
                    .find(|k| k.generation() == peer.generation())
                    .cloned();
                match identity {
                    Some(identity) => {
                        let origin = Origin::Dial {
                            transport: self.transport.clone(),
                            peer,
                            route,
                        };
                        self.spawn(conn, identity, origin);
                    }
                    // The core dials only ids it has an identity for.
                    None => {
                        warn!(peer = %scrub::Id(peer), "no identity to dial with");
                        let closed = Report::Closed(Closure::Stream(None));
                        self.core.handle_report(now(), conn, closed);
                    }
                }
            }
            Output::Command { conn, command } => {
                if let Some(task) = self.connections.get(&conn) {
                    // A closed channel means the task is ending; its Closed
                    // report follows.
                    let _ = task.commands.send(command);
                }
            }
            Output::ChatsStored { conn, stored } => {
                if let Some(waiting) = self.awaiting_store.remove(&conn) {
                    let _ = waiting.send(stored);
                }
            }
            Output::Store(job) => self.jobs.push(job),
            Output::Notice(notice) => self.notice(notice),
            Output::Reply { call, response } => self.reply(call, response),
        }
    }

    /// Runs the services the core wants: the public ones or not, and the
    /// private one for `authorized` (not at all if it is empty).
    fn services(&mut self, public: bool, authorized: Vec<ClientAuthPublicKey>) {
        for service in &mut self.public {
            match (public, service.hosted.is_some()) {
                (true, false) => {
                    let host = Host {
                        label: ServiceLabel::Public(service.id),
                        identity: service.identity.clone(),
                        incoming: self.incoming.clone(),
                        status: service.status.clone(),
                        notices: self.notices.clone(),
                    };
                    host.show(ServiceStatus::Publishing);
                    service.hosted = Some(host.spawn(Launch::Public {
                        transport: self.transport.clone(),
                    }));
                }
                (false, true) => {
                    service.hosted = None;
                    info!(id = %scrub::Id(service.id), "our public service is down: not accepting contact requests");
                    service.status.send_replace(ServiceStatus::Stopped);
                    let _ = self.notices.send(Notice::ServiceStatusChanged {
                        id: service.id,
                        status: ServiceStatus::Stopped,
                    });
                }
                _ => {}
            }
        }
        let Some(private) = &mut self.private else {
            return;
        };
        if authorized.len() > MAX_AUTHORIZED && private.authorized.len() <= MAX_AUTHORIZED {
            warn!(
                clients = authorized.len(),
                "more private contacts than an onion service descriptor reliably holds \
                 ({MAX_AUTHORIZED}); some may fail to reach our private service"
            );
        }
        if authorized.is_empty() {
            if private.hosted.take().is_some() {
                info!("our private service is down: no contact holds a key to it");
                private.status.send_replace(ServiceStatus::Stopped);
                let _ = self.notices.send(Notice::PrivateServiceStatusChanged {
                    status: ServiceStatus::Stopped,
                });
            }
            private.authorized = authorized;
            return;
        }
        match &private.hosted {
            Some(hosted) if private.authorized != authorized => {
                debug!(
                    clients = authorized.len(),
                    "new authorised set for our private service"
                );
                let _ = hosted.authorized.send(authorized.clone());
            }
            Some(_) => {}
            None => {
                let host = Host {
                    label: ServiceLabel::Private,
                    identity: private.identity.clone(),
                    incoming: self.incoming.clone(),
                    status: private.status.clone(),
                    notices: self.notices.clone(),
                };
                host.show(ServiceStatus::Publishing);
                private.hosted = Some(host.spawn(Launch::Private {
                    transport: self.transport.clone(),
                    key: private.key.clone(),
                    authorized: authorized.clone(),
                }));
            }
        }
        private.authorized = authorized;
    }

    /// Takes every service of ours down.
    fn stop_services(&mut self) {
        for service in &mut self.public {
            service.hosted = None;
        }
        if let Some(private) = &mut self.private {
            private.hosted = None;
        }
    }

    fn notice(&mut self, notice: Notice) {
        if let Notice::MessageStatusChanged {
            message, status, ..
        } = &notice
            && let Some((board, index)) = self.boards.get(message)
        {
            // A bot drops its handles: then there is nobody to tell.
            let board = board.upgrade();
            if let Some(board) = &board {
                board.set(*index, status.clone());
            }
            if board.is_none() || status.is_final() {
                self.boards.remove(message);
            }
        }
        // Nobody listening is fine: the application dropped its Events.
        let _ = self.notices.send(notice);
    }

    fn reply(&mut self, call: CallId, response: Response) {
        let Some(reply) = self.calls.remove(&call) else {
            return;
        };
        let reply_value = match response {
            Response::Queued(queued) => Reply::Queued(queued.map(|texts| {
                let board = Arc::new(StatusBoard::new(texts.iter().map(Vec::len).sum()));
                let weak = Arc::downgrade(&board);
                for (index, &message) in texts.iter().flatten().enumerate() {
                    self.boards.insert(message, (weak.clone(), index));
                }
                (board, texts)
            })),
            other => Reply::Core(other),
        };
        let _ = reply.send(reply_value);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop_services();
        // Handles waiting for their messages stop waiting.
        for (board, _) in self.boards.values() {
            if let Some(board) = board.upgrade() {
                board.client_gone();
            }
        }
    }
}
