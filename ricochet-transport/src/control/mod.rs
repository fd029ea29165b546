//! A system tor, driven through its control port; streams go through its
//! SOCKS port. Either a tor that is already running (TCP or Unix control
//! socket; no auth, cookie, safe-cookie or password), or one this crate
//! starts and owns with a private data directory
//! ([`SystemTor::launch`]), as Ricochet and Ricochet Refresh do.
//!
//! Publishing uses `ADD_ONION` with our own key on a control connection of
//! its own: tor removes the service when that connection closes, which is
//! exactly when the listener is dropped.

mod auth;
mod connection;
mod process;
pub mod reply;
mod socks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ricochet_identity::{
    ClientAuthPublicKey, ClientAuthSecretKey, Generation, IdentityKey, ServiceId,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use zeroize::Zeroizing;

pub use process::TorLaunch;

use self::connection::ControlConnection;
use self::process::TorProcess;
use self::reply::{bootstrap_phase, bootstrap_warning, hs_desc_event, service_rendezvous_circuits};
use crate::{BootstrapStatus, ErrorChain, Listener, ServiceStatus, Transport, TransportError};

/// Where tor's control port is.
///
/// It parses from and prints as the form tor's own `ControlPort` option
/// uses: `127.0.0.1:9051`, `[::1]:9051` or `unix:/run/tor/control`.
///
/// ```
/// use ricochet_transport::control::ControlAddr;
///
/// let tcp: ControlAddr = "127.0.0.1:9051".parse()?;
/// let unix: ControlAddr = "unix:/run/tor/control".parse()?;
/// assert_eq!(unix.to_string(), "unix:/run/tor/control");
/// # let _ = tcp;
/// # Ok::<(), ricochet_transport::control::ControlAddrError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    /// A TCP control port (`ControlPort 9051`).
    Tcp(SocketAddr),
    /// A Unix control socket (`ControlPort unix:/run/tor/control`).
    Unix(PathBuf),
}

impl ControlAddr {
    /// Where a local tor's control port usually is, in the order
    /// [`ControlAddr::find_local`] tries them: the Unix sockets of
    /// Debian's, Fedora's and Arch's tor packages, tor's default TCP port
    /// 9051, and Tor Browser's 9151.
    pub fn usual_local() -> Vec<Self> {
        let mut usual = Vec::new();
        if cfg!(unix) {
            usual.push(Self::Unix(PathBuf::from("/run/tor/control")));
            usual.push(Self::Unix(PathBuf::from("/var/run/tor/control")));
        }
        usual.push(Self::Tcp(SocketAddr::from(([127, 0, 0, 1], 9051))));
        usual.push(Self::Tcp(SocketAddr::from(([127, 0, 0, 1], 9151))));
        usual
    }

    /// Finds the control port of a tor running on this machine: the first
    /// of [`ControlAddr::usual_local`] that answers tor's `PROTOCOLINFO`
    /// within a second. It only looks; whether we may authenticate is
    /// found out when the transport bootstraps.
    ///
    /// Fails with [`crate::ErrorKind::Configuration`] naming every place
    /// tried when none answers.
    pub async fn find_local() -> Result<Self, TransportError> {
        Self::find_first(Self::usual_local()).await
    }

    /// The first of `candidates` where tor answers `PROTOCOLINFO` within a
    /// second ([`ControlAddr::find_local`] with places of your own).
    pub async fn find_first(
        candidates: impl IntoIterator<Item = Self>,
    ) -> Result<Self, TransportError> {
        let candidates: Vec<Self> = candidates.into_iter().collect();
        for candidate in &candidates {
            match ControlConnection::probe(candidate, Duration::from_secs(1)).await {
                Ok(()) => return Ok(candidate.clone()),
                Err(error) => {
                    tracing::debug!(address = %candidate, error = %ErrorChain(&error), "no tor control port here");
                }
            }
        }
        let tried: Vec<String> = candidates.iter().map(ToString::to_string).collect();
        Err(TransportError::config(format!(
            "found no tor control port on this machine (tried {}); is tor running with a ControlPort?",
            tried.join(", ")
        )))
    }
}

impl std::fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Why a string is not a control-port address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a control-port address: expected an IP address and port \
     (`127.0.0.1:9051`) or `unix:` and a socket path (`unix:/run/tor/control`)"
)]
#[non_exhaustive]
pub struct ControlAddrError {
    /// What was given.
    pub input: String,
}

impl std::str::FromStr for ControlAddr {
    type Err = ControlAddrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        if let Some(path) = trimmed.strip_prefix("unix:") {
            if !path.is_empty() {
                return Ok(Self::Unix(PathBuf::from(path)));
            }
        } else if let Ok(addr) = trimmed.parse() {
            return Ok(Self::Tcp(addr));
        }
        Err(ControlAddrError {
            input: input.to_owned(),
        })
    }
}

/// How to authenticate to the control port.
#[derive(Clone)]
#[non_exhaustive]
pub enum ControlAuth {
    /// Whatever tor offers: no auth, SAFECOOKIE, or COOKIE (read from the
    /// cookie file tor names).
    Auto,
    /// `HashedControlPassword` authentication.
    Password(Arc<Zeroizing<String>>),
}

impl std::fmt::Debug for ControlAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("Auto"),
            Self::Password(_) => f.write_str("Password(<redacted>)"),
        }
    }
}

/// Settings of a [`SystemTor`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SystemTorConfig {
    /// The control port.
    pub control: ControlAddr,
    /// How to authenticate. Default: [`ControlAuth::Auto`].
    pub auth: ControlAuth,
    /// tor's SOCKS port. Default: asked from tor (`net/listeners/socks`).
    pub socks: Option<SocketAddr>,
    /// Longest wait for a stream to an onion service. Default: 120 s.
    pub connect_timeout: Duration,
    /// Longest wait for tor to finish bootstrapping. Default: 300 s.
    pub bootstrap_timeout: Duration,
    /// Bootstrap gives up sooner, with
    /// [`TransportError::BootstrapStalled`], when tor has made no progress
    /// for this long while reporting a problem (a bridge or proxy that is
    /// down or blocked, a network that cuts Tor off). Default: 60 s.
    pub bootstrap_stall_timeout: Duration,
    /// Longest wait to connect to the control port and authenticate
    /// (`PROTOCOLINFO`, `AUTHENTICATE`): what answers on the control
    /// address but is not a working tor fails within it. Default: 10 s.
    pub handshake_timeout: Duration,
}

impl SystemTorConfig {
    /// Defaults for the control port at `control`.
    pub fn new(control: ControlAddr) -> Self {
        Self {
            control,
            auth: ControlAuth::Auto,
            socks: None,
            connect_timeout: Duration::from_secs(120),
            bootstrap_timeout: Duration::from_secs(300),
            bootstrap_stall_timeout: Duration::from_secs(60),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

/// See [`SystemTorConfig::handshake_timeout`].
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The system-tor transport.
#[derive(Debug)]
pub struct SystemTor {
    config: SystemTorConfig,
    socks: OnceLock<SocketAddr>,
    status: watch::Sender<BootstrapStatus>,
    /// How a launched tor enters the network (its bridges and proxy), to
    /// name them when bootstrap stalls.
    network: crate::censorship::TorNetworkSettings,
    /// The tor process we started, if any; it exits when this is dropped.
    _process: Option<TorProcess>,
}

impl SystemTor {
    /// A transport for a tor that is already running.
    pub fn new(config: SystemTorConfig) -> Self {
        Self {
            config,
            socks: OnceLock::new(),
            status: watch::Sender::new(BootstrapStatus::starting()),
            network: crate::censorship::TorNetworkSettings::default(),
            _process: None,
        }
    }

    /// Starts a tor process of our own (see [`TorLaunch`]) and returns a
    /// transport that owns it: the process exits when the transport is
    /// dropped (or when this process dies).
    pub async fn launch(launch: TorLaunch) -> Result<Self, TransportError> {
        let (process, control) = TorProcess::start(&launch).await?;
        let mut config = SystemTorConfig::new(control);
        config.bootstrap_timeout = launch.bootstrap_timeout;
        config.bootstrap_stall_timeout = launch.bootstrap_stall_timeout;
        Ok(Self {
            _process: Some(process),
            network: launch.network,
            ..Self::new(config)
        })
    }

    /// How this tor reaches the Tor network, as its owner configured it
    /// (`GETCONF`): a running system tor takes no [`TorNetworkSettings`]
    /// from us, so an application can show whether it goes through bridges
    /// or a proxy, and point the user to tor's own configuration.
    ///
    /// [`TorNetworkSettings`]: crate::censorship::TorNetworkSettings
    pub async fn network_report(&self) -> Result<NetworkReport, TransportError> {
        let mut control = self.control().await?;
        let reply = control
            .command_ok(
                "GETCONF",
                "GETCONF UseBridges Bridge ClientTransportPlugin Socks4Proxy Socks5Proxy \
                 HTTPSProxy ReachableAddresses",
            )
            .await?;
        Ok(NetworkReport::from_getconf(&reply))
    }

    async fn control(&self) -> Result<ControlConnection, TransportError> {
        ControlConnection::open(
            &self.config.control,
            &self.config.auth,
            self.config.handshake_timeout,
        )
        .await
    }
}

fn first_socks_listener(value: &str) -> Option<SocketAddr> {
    value
        .split_whitespace()
        .map(|item| item.trim_matches('"'))
        .find_map(|item| item.parse().ok())
}

impl Transport for SystemTor {
    type Stream = TcpStream;
    type Listener = OnionListener;

    async fn bootstrap(&self) -> Result<(), TransportError> {
        let mut control = self.control().await?;
        let started = Instant::now();
        // The highest percentage so far, and since when.
        let mut progress = (0u8, started);
        // What tor last warned about, and where, since `noticed`.
        let mut problem: Option<(String, Option<String>)> = None;
        let mut noticed = started;
        control
            .command_ok("SETEVENTS WARN", "SETEVENTS WARN")
            .await?;
        loop {
            let reply = control
                .command_ok(
                    "GETINFO status/bootstrap-phase",
                    "GETINFO status/bootstrap-phase",
                )
                .await?;
            let value = reply.value("status/bootstrap-phase").unwrap_or_default();
            if let Some((percent, phase)) = bootstrap_phase(&value) {
                self.status.send_replace(BootstrapStatus { percent, phase });
                if percent >= 100 {
                    break;
                }
                if percent > progress.0 {
                    progress = (percent, Instant::now());
                }
            }
            // tor's warnings since the last progress: in the phase (a
            // relay or bridge it cannot reach), or only in its log (a
            // pluggable transport that cannot reach its bridge: the phase
            // stays "Connected to pluggable transport").
            if let Some(warning) = bootstrap_warning(&value).filter(|w| w.recommended) {
                problem = Some((warning.warning, warning.host));
            }
            for event in control.take_events() {
                if let Some(text) = event.first_text().strip_prefix("WARN ") {
                    problem = Some((text.to_owned(), None));
                }
            }
            if progress.1 > noticed {
                // Progress since the last warning: forget it.
                noticed = progress.1;
                problem = None;
            }
            let stalled = progress.1.elapsed();
            if let Some((text, host)) = &problem
                && stalled >= self.config.bootstrap_stall_timeout
            {
                return Err(TransportError::BootstrapStalled {
                    problem: text.clone(),
                    entry: self.network.entry_for(host.as_deref(), text),
                    after: stalled,
                });
            }
            if started.elapsed() > self.config.bootstrap_timeout {
                return Err(control.error(TransportError::TimedOut {
                    what: "tor bootstrap",
                    after: self.config.bootstrap_timeout,
                }));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let socks = match self.config.socks {
            Some(socks) => socks,
            None => {
                let reply = control
                    .command_ok("GETINFO net/listeners/socks", "GETINFO net/listeners/socks")
                    .await?;
                reply
                    .value("net/listeners/socks")
                    .and_then(|v| first_socks_listener(&v))
                    .ok_or_else(|| {
                        control.error(TransportError::config(
                            "tor has no TCP SocksPort; configure one",
                        ))
                    })?
            }
        };
        let _ = self.socks.set(socks);
        Ok(())
    }

    fn bootstrap_status(&self) -> watch::Receiver<BootstrapStatus> {
        self.status.subscribe()
    }

    async fn connect(&self, id: &ServiceId, port: u16) -> Result<TcpStream, TransportError> {
        let socks = *self.socks.get().ok_or(TransportError::NotBootstrapped)?;
        let timeout = self.config.connect_timeout;
        let stream = match tokio::time::timeout(timeout, socks::connect(socks, id, port)).await {
            Err(_) => {
                return Err(TransportError::TimedOut {
                    what: "connecting through tor",
                    after: timeout,
                });
            }
            Ok(result) => result?,
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn listen(&self, key: &IdentityKey, port: u16) -> Result<OnionListener, TransportError> {
        self.publish(key, port, None).await
    }

    async fn listen_private(
        &self,
        key: &IdentityKey,
        port: u16,
        authorized: &[ClientAuthPublicKey],
    ) -> Result<OnionListener, TransportError> {
        TransportError::check_authorized(true, authorized)?;
        self.publish(key, port, Some(authorized.to_vec())).await
    }

    /// `ONION_CLIENT_AUTH_ADD` / `_REMOVE` (control-spec §3.30, §3.31).
    /// Kept in tor's memory: a tor restart or `SIGNAL NEWNYM` forgets it.
    async fn set_client_auth(
        &self,
        id: &ServiceId,
        key: Option<&ClientAuthSecretKey>,
    ) -> Result<(), TransportError> {
        let mut control = self.control().await?;
        match key {
            Some(key) => {
                let line = Zeroizing::new(format!(
                    "ONION_CLIENT_AUTH_ADD {id} {}",
                    key.to_control_port_form().as_str()
                ));
                control
                    .command_ok("ONION_CLIENT_AUTH_ADD", &line)
                    .await
                    .map(drop)
            }
            None => {
                let reply = control
                    .command(&format!("ONION_CLIENT_AUTH_REMOVE {id}"))
                    .await?;
                // 251: there was none.
                if reply.is_ok() {
                    Ok(())
                } else {
                    Err(control.error(TransportError::tor(format!(
                        "ONION_CLIENT_AUTH_REMOVE: {} {}",
                        reply.status,
                        reply.first_text()
                    ))))
                }
            }
        }
    }
}

/// How a running tor reaches the Tor network ([`SystemTor::network_report`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkReport {
    /// Whether tor enters the network through bridges (`UseBridges 1` with
    /// at least one `Bridge` line).
    pub uses_bridges: bool,
    /// Its bridge lines (`Bridge`), as configured.
    pub bridges: Vec<String>,
    /// The transports its plugins provide (`ClientTransportPlugin`).
    pub transports: Vec<String>,
    /// Its upstream proxy, as `socks4://…`, `socks5://…` or `https://…`
    /// (the address only: tor does not show credentials).
    pub proxy: Option<String>,
    /// Its `ReachableAddresses`, if set.
    pub reachable_addresses: Option<String>,
}

impl NetworkReport {
    /// Reads the answer to `GETCONF UseBridges Bridge ClientTransportPlugin
    /// Socks4Proxy Socks5Proxy HTTPSProxy ReachableAddresses`: one
    /// `key=value` line per value, a bare `key` for an unset option.
    fn from_getconf(reply: &reply::Reply) -> Self {
        let mut report = Self::default();
        let mut use_bridges = false;
        for line in &reply.lines {
            let Some((key, value)) = line.text.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').to_owned();
            if value.is_empty() {
                continue;
            }
            match key {
                "UseBridges" => use_bridges = value == "1",
                "Bridge" => report.bridges.push(value),
                "ClientTransportPlugin" => {
                    if let Some(names) = value.split_whitespace().next() {
                        report
                            .transports
                            .extend(names.split(',').map(str::to_owned));
                    }
                }
                "Socks4Proxy" => report.proxy = Some(format!("socks4://{value}")),
                "Socks5Proxy" => report.proxy = Some(format!("socks5://{value}")),
                "HTTPSProxy" => report.proxy = Some(format!("https://{value}")),
                "ReachableAddresses" => report.reachable_addresses = Some(value),
                _ => {}
            }
        }
        report.uses_bridges = use_bridges && !report.bridges.is_empty();
        report
    }
}

/// An onion service as tor hosts it: what `ADD_ONION` needs again when
/// the authorised clients change.
struct Hosted {
    id: ServiceId,
    /// The key blob (secret; wiped when dropped).
    blob: Zeroizing<String>,
    generation: Generation,
    port: u16,
    local_port: u16,
}

impl Hosted {
    /// `ADD_ONION` for everyone (`None`) or for the clients of
    /// `authorized` (`Flags=V3Auth`, one `ClientAuthV3=` each; tor needs
    /// the flag and at least one client).
    async fn add(
        &self,
        control: &mut ControlConnection,
        authorized: Option<&[ClientAuthPublicKey]>,
    ) -> Result<(), TransportError> {
        let mut command = Zeroizing::new(format!(
            "ADD_ONION {} Port={},127.0.0.1:{}",
            self.blob.as_str(),
            self.port,
            self.local_port
        ));
        if let Some(keys) = authorized {
            command.push_str(" Flags=V3Auth");
            for key in keys {
                command.push_str(&format!(" ClientAuthV3={key}"));
            }
        }
        let reply = control.command(&command).await?;
        if !reply.is_ok() {
            if self.generation == Generation::V2 {
                return Err(TransportError::UnsupportedGeneration {
                    generation: Generation::V2,
                    backend: "system tor",
                    reason: "this tor no longer hosts v2 onion services (removed in tor 0.4.6)",
                });
            }
            return Err(control.error(TransportError::tor(format!(
                "ADD_ONION: {} {}",
                reply.status,
                reply.first_text()
            ))));
        }
        if reply.value("ServiceID").as_deref() != Some(self.id.to_string().as_str()) {
            return Err(control.error(TransportError::tor(
                "ADD_ONION published a different service id",
            )));
        }
        Ok(())
    }
}

impl SystemTor {
    async fn publish(
        &self,
        key: &IdentityKey,
        port: u16,
        authorized: Option<Vec<ClientAuthPublicKey>>,
    ) -> Result<OnionListener, TransportError> {
        let mut control = self.control().await?;
        let local = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| TransportError::io("binding the onion service's local port", e))?;
        let local_port = local
            .local_addr()
            .map_err(|e| TransportError::io("reading the local port", e))?
            .port();
        let blob = key.to_tor_key_blob().map_err(|e| TransportError::Tor {
            what: "encoding our key for ADD_ONION".to_owned(),
            source: Some(Box::new(e)),
        })?;
        let hosted = Hosted {
            id: key.service_id(),
            blob,
            generation: key.generation(),
            port,
            local_port,
        };
        // Asked before ADD_ONION, so that no upload of ours goes unseen.
        control
            .command_ok("SETEVENTS HS_DESC", "SETEVENTS HS_DESC")
            .await?;
        hosted.add(&mut control, authorized.as_deref()).await?;
        let id = hosted.id;
        let status = watch::Sender::new(ServiceStatus::Publishing);
        let (stop, stopped) = oneshot::channel();
        let (changes, changes_rx) = mpsc::unbounded_channel();
        tokio::spawn(follow_descriptor(
            control,
            hosted,
            status.clone(),
            changes_rx,
            stopped,
        ));
        tracing::debug!(%id, "onion service added; waiting for its descriptor upload");
        Ok(OnionListener {
            local,
            id,
            status,
            private: authorized.is_some(),
            changes,
            _stop: stop,
        })
    }
}

/// A new authorised set for the service, and where to say how it went.
type Change = (
    Vec<ClientAuthPublicKey>,
    oneshot::Sender<Result<(), TransportError>>,
);

/// Owns the control connection that keeps the service up, and turns tor's
/// `HS_DESC` events for it into `status` until `stop` fires (the listener
/// is dropped): then the connection closes and tor removes the service. A
/// new authorised set re-adds the service (`DEL_ONION`, then `ADD_ONION`
/// with the same key): tor cannot change it in place.
async fn follow_descriptor(
    mut control: ControlConnection,
    hosted: Hosted,
    status: watch::Sender<ServiceStatus>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    mut stop: oneshot::Receiver<()>,
) {
    let id = hosted.id;
    let address = id.to_string();
    loop {
        let event = tokio::select! {
            _ = &mut stop => {
                withdraw(&mut control, &address).await;
                return;
            }
            Some((authorized, done)) = changes.recv() => {
                let result = async {
                    control
                        .command_ok("DEL_ONION", &format!("DEL_ONION {address}"))
                        .await?;
                    status.send_replace(ServiceStatus::Publishing);
                    hosted.add(&mut control, Some(&authorized)).await
                }
                .await;
                let _ = done.send(result);
                continue;
            }
            event = control.next_event() => event,
        };
        match event {
            Ok(reply) => {
                let Some(event) = hs_desc_event(&reply) else {
                    continue;
                };
                if event.address != address {
                    continue;
                }
                match event.action.as_str() {
                    "UPLOADED" => {
                        status.send_if_modified(|status| {
                            let changed = !status.is_published();
                            *status = ServiceStatus::Published;
                            changed
                        });
                    }
                    // One directory of several refused or timed out; tor
                    // goes on with the others and retries.
                    "FAILED" => tracing::debug!(
                        %id,
                        reason = event.reason.as_deref().unwrap_or("none given"),
                        "a descriptor upload failed"
                    ),
                    _ => {}
                }
            }
            Err(error) => {
                status.send_replace(ServiceStatus::Failed {
                    reason: ErrorChain(&error).to_string(),
                });
                // The service went with the connection; keep the status
                // until the listener goes.
                let _ = stop.await;
                return;
            }
        }
    }
}

/// Takes the service down now: `DEL_ONION`, then closes its rendezvous
/// circuits. Tor keeps those after `DEL_ONION` "for existing connections
/// to finish", and a client that holds one gets a stream refused on it (an
/// `END` cell) instead of the failure of a service that is not there: it
/// could tell a withdrawn service (a client that stopped accepting contact
/// requests) from one whose owner is offline. Best effort, bounded: the
/// connection closes right after, which removes the service anyway.
async fn withdraw(control: &mut ControlConnection, address: &str) {
    let work = async {
        control
            .command_ok("DEL_ONION", &format!("DEL_ONION {address}"))
            .await?;
        let reply = control
            .command_ok("GETINFO circuit-status", "GETINFO circuit-status")
            .await?;
        let status = reply.value("circuit-status").unwrap_or_default();
        for circuit in service_rendezvous_circuits(&status, address) {
            // A circuit that closed meanwhile is an error we do not mind.
            let _ = control.command(&format!("CLOSECIRCUIT {circuit}")).await;
        }
        Ok::<(), TransportError>(())
    };
    match tokio::time::timeout(WITHDRAW_TIMEOUT, work).await {
        Ok(Ok(())) => tracing::debug!(service = %address, "onion service withdrawn"),
        Ok(Err(error)) => {
            tracing::debug!(service = %address, error = %ErrorChain(&error), "withdrawing the onion service failed");
        }
        Err(_) => tracing::debug!(service = %address, "withdrawing the onion service timed out"),
    }
}

/// How long [`withdraw`] may take.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Incoming streams to an onion service published with `ADD_ONION`. Its
/// control connection keeps the service up; dropping the listener closes
/// it, and tor removes the service.
#[derive(Debug)]
pub struct OnionListener {
    local: TcpListener,
    id: ServiceId,
    status: watch::Sender<ServiceStatus>,
    /// Published with [`Transport::listen_private`].
    private: bool,
    /// New authorised sets, to the task that owns the service.
    changes: mpsc::UnboundedSender<Change>,
    /// Dropped with the listener: ends the task that owns the control
    /// connection, so tor removes the service.
    _stop: oneshot::Sender<()>,
}

impl Listener for OnionListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> Result<TcpStream, TransportError> {
        let (stream, _) = self
            .local
            .accept()
            .await
            .map_err(|e| TransportError::io("accepting a stream from tor", e))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn service_id(&self) -> ServiceId {
        self.id
    }

    fn status(&self) -> watch::Receiver<ServiceStatus> {
        self.status.subscribe()
    }

    async fn set_authorized(
        &mut self,
        authorized: &[ClientAuthPublicKey],
    ) -> Result<(), TransportError> {
        TransportError::check_authorized(self.private, authorized)?;
        let (done, result) = oneshot::channel();
        let gone = || TransportError::tor("the control connection of the service is gone");
        self.changes
            .send((authorized.to_vec(), done))
            .map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn socks_listener_values() {
        assert_eq!(
            first_socks_listener("\"unix:/run/tor/socks\" \"127.0.0.1:9050\""),
            Some("127.0.0.1:9050".parse().unwrap())
        );
        assert_eq!(first_socks_listener(""), None);
    }

    #[test]
    fn control_addresses() {
        for text in ["127.0.0.1:9051", "[::1]:9051", "unix:/run/tor/control"] {
            let addr: ControlAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        assert_eq!(
            " unix:/var/run/tor/control "
                .parse::<ControlAddr>()
                .unwrap(),
            ControlAddr::Unix(PathBuf::from("/var/run/tor/control"))
        );
        for bad in ["", "9051", "localhost:9051", "unix:", "127.0.0.1"] {
            let error = bad.parse::<ControlAddr>().unwrap_err();
            assert!(
                error.to_string().contains("unix:/run/tor/control"),
                "{error}"
            );
        }
    }

    #[test]
    fn network_report_reads_getconf() {
        let mut parser = reply::ReplyParser::new();
        parser.push(
            b"250-UseBridges=1\r\n250-Bridge=obfs4 192.0.2.1:443 cert=x iat-mode=0\r\n\
              250-Bridge=192.0.2.2:9001\r\n\
              250-ClientTransportPlugin=obfs4,meek_lite exec /usr/bin/obfs4proxy\r\n\
              250-Socks4Proxy\r\n250-Socks5Proxy=127.0.0.1:1080\r\n250-HTTPSProxy\r\n\
              250 ReachableAddresses\r\n",
        );
        let report = NetworkReport::from_getconf(&parser.next_reply().unwrap().unwrap());
        assert_eq!(
            report,
            NetworkReport {
                uses_bridges: true,
                bridges: vec![
                    "obfs4 192.0.2.1:443 cert=x iat-mode=0".into(),
                    "192.0.2.2:9001".into()
                ],
                transports: vec!["obfs4".into(), "meek_lite".into()],
                proxy: Some("socks5://127.0.0.1:1080".into()),
                reachable_addresses: None,
            }
        );
        parser.push(b"250-UseBridges=0\r\n250 Bridge\r\n");
        let direct = NetworkReport::from_getconf(&parser.next_reply().unwrap().unwrap());
        assert_eq!(direct, NetworkReport::default());
    }

    #[test]
    fn password_is_redacted() {
        let auth = ControlAuth::Password(Arc::new(Zeroizing::new("hunter2".into())));
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
