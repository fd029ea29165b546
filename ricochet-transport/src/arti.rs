//! Embedded arti: Tor in this process, through `arti-client` (feature
//! `arti`). Dials and hosts **v3 onion services only**: arti implements
//! neither v2 client nor v2 service support, so v2 keys and ids give
//! [`TransportError::UnsupportedGeneration`].
//!
//! Everything arti stores lives under the application's profile directory:
//! its state (guards, onion-service state, and the keystore, which keeps a
//! copy of each published v3 identity key) in `<profile>/arti/state`, its
//! directory cache in `<profile>/arti/cache`.
//!
//! A dial that arti starts on a rendezvous circuit which dies under it (the
//! service or a relay closed it a moment before) is made once more, on a new
//! circuit, within the same [`ArtiConfig::connect_timeout`]: the service is
//! up, so the caller should not see that. A stream that was already open
//! when its circuit died ends with an error, as a connection should.
//!
//! Publishing uses arti-client's experimental
//! `TorClient::launch_onion_service_with_hsid`, which is why every arti crate
//! is pinned to exactly one version (`=0.47.0`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ricochet_transport::TransportError> {
//! use ricochet_identity::{Generation, IdentityKey};
//! use ricochet_transport::arti::{ArtiConfig, ArtiTransport};
//! use ricochet_transport::{Listener, RICOCHET_PORT, Transport};
//!
//! let transport = ArtiTransport::new(ArtiConfig::new("/home/me/.local/share/ricochet"))?;
//! transport.bootstrap().await?;
//! let key = IdentityKey::generate(Generation::V3).expect("randomness");
//! let mut listener = transport.listen(&key, RICOCHET_PORT).await?;
//! let incoming = listener.accept().await?;
//! # drop(incoming);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use arti_client::config::{CfgPath, TorClientConfigBuilder};
use arti_client::{BootstrapBehavior, DataStream, HasKind, TorClient, TorClientConfig};
use arti_client::{HsId, IsolationToken, KeystoreSelector, StreamPrefs};
use futures::StreamExt as _;
use ricochet_identity::{ClientAuthPublicKey, ClientAuthSecretKey};
use ricochet_identity::{Generation, IdentityKey, ServiceId, V3IdentityKey};
use safelog::DisplayRedacted as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tor_cell::relaycell::msg::{Connected, End, EndReason};
use tor_hscrypto::pk::{HsClientDescEncKey, HsClientDescEncSecretKey, HsIdKeypair};
use tor_hsservice::config::restricted_discovery::HsClientNickname;
use tor_hsservice::config::{OnionServiceConfig, OnionServiceConfigBuilder};
use tor_hsservice::{HsNickname, RunningOnionService, StreamRequest};
use tor_llcrypto::pk::curve25519;
use tor_llcrypto::pk::ed25519::ExpandedKeypair;
use tor_proto::stream::IncomingStreamRequest;
use tor_rtcompat::PreferredRuntime;
use zeroize::Zeroizing;

use crate::censorship::{NetworkSettingsError, TorNetworkSettings, UpstreamProxy};
use crate::error::BoxError;
use crate::{BootstrapStatus, Listener, OnionFailure, ServiceStatus, Transport, TransportError};

/// The name of this backend in errors.
const BACKEND: &str = "arti";

/// How many accepted streams wait for [`Listener::accept`] before the
/// service stops answering new ones.
const ACCEPT_QUEUE: usize = 16;

/// How long [`Transport::listen`] waits for a previous instance of the same
/// service (e.g. a listener that was just dropped) to release its state.
const RELAUNCH_WAIT: Duration = Duration::from_secs(10);

type Client = TorClient<PreferredRuntime>;

/// How to run the embedded arti. Built with [`ArtiConfig::new`] and the
/// methods below, then given to [`ArtiTransport::new`].
#[derive(Debug, Clone)]
pub struct ArtiConfig {
    profile_dir: PathBuf,
    network_toml: Option<String>,
    network_settings: TorNetworkSettings,
    connect_timeout: Duration,
    bootstrap_stall_timeout: Duration,
}

impl ArtiConfig {
    /// Runs arti with its files under `profile_dir`, the application's
    /// profile directory: state in `<profile>/arti/state` and cache in
    /// `<profile>/arti/cache`, both created with mode 0700 by
    /// [`Transport::bootstrap`].
    ///
    /// Defaults: the public Tor network with arti's own default settings,
    /// and a 120 s connect timeout.
    pub fn new(profile_dir: impl AsRef<Path>) -> Self {
        Self {
            profile_dir: profile_dir.as_ref().to_owned(),
            network_toml: None,
            network_settings: TorNetworkSettings::default(),
            connect_timeout: Duration::from_secs(120),
            bootstrap_stall_timeout: Duration::from_secs(120),
        }
    }

    /// [`Transport::bootstrap`] gives up, with
    /// [`TransportError::BootstrapStalled`], when arti has made no progress
    /// for `timeout` (a bridge or proxy that is down or blocked, a network
    /// that cuts Tor off; arti itself retries for ever). Default: 120 s
    /// (arti names no problem when stuck, so this waits longer than a
    /// launched tor, which fails after 60 s only while it warns).
    pub fn bootstrap_stall_timeout(mut self, timeout: Duration) -> Self {
        self.bootstrap_stall_timeout = timeout;
        self
    }

    /// Reaches the Tor network as `settings` say: through bridges (with
    /// their pluggable transports), an upstream proxy, or only on some
    /// ports (see [`crate::censorship`]). Default: directly.
    ///
    /// [`ArtiTransport::new`] refuses what arti cannot honour: an upstream
    /// proxy together with a pluggable-transport bridge (arti 0.47 does not
    /// hand the proxy to the plugin, whose connections would then go out
    /// directly), and an HTTPS proxy with a user and password (arti 0.47
    /// sends them scrubbed). [`crate::control::TorLaunch`] can do both.
    pub fn network_settings(mut self, settings: TorNetworkSettings) -> Self {
        self.network_settings = settings;
        self
    }

    /// Uses a custom Tor network (a private test network, or special
    /// settings), given as arti's TOML configuration: the text of an
    /// `arti.toml`, as read by `arti_client::config::TorClientConfigBuilder`.
    /// The `[storage]` directories it names are ignored: arti's files always
    /// go under the profile directory. Default: none, i.e. the public Tor
    /// network.
    pub fn custom_network(mut self, arti_toml: impl Into<String>) -> Self {
        self.network_toml = Some(arti_toml.into());
        self
    }

    /// Gives up a [`Transport::connect`] after `timeout` (descriptor fetch,
    /// introduction and rendezvous together, and the one more try on a new
    /// circuit if the first died under the dial). Default: 120 s, like C
    /// tor's `SocksTimeout`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The profile directory.
    pub fn profile_dir(&self) -> &Path {
        &self.profile_dir
    }

    /// Where arti keeps its state: `<profile>/arti/state`.
    pub fn state_dir(&self) -> PathBuf {
        self.profile_dir.join("arti").join("state")
    }

    /// Where arti keeps its directory cache: `<profile>/arti/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.profile_dir.join("arti").join("cache")
    }

    /// The arti client configuration this describes.
    fn client_config(&self) -> Result<TorClientConfig, TransportError> {
        let mut builder = match &self.network_toml {
            None => TorClientConfigBuilder::default(),
            Some(text) => toml::from_str::<TorClientConfigBuilder>(text).map_err(|e| {
                TransportError::Configuration {
                    reason: "the custom arti network configuration is not valid".to_owned(),
                    source: Some(Box::new(e)),
                }
            })?,
        };
        builder
            .storage()
            .state_dir(CfgPath::new_literal(self.state_dir()))
            .cache_dir(CfgPath::new_literal(self.cache_dir()));
        apply_network_settings(&mut builder, &self.network_settings)?;
        builder.build().map_err(|e| TransportError::Configuration {
            reason: "the arti configuration is not valid".to_owned(),
            source: Some(Box::new(e)),
        })
    }

    /// Creates `<profile>/arti/{state,cache}` (and any missing parent) with
    /// mode 0700, and tightens the mode of the arti directories if they
    /// exist already.
    fn create_dirs(&self) -> Result<(), TransportError> {
        let arti_dir = self.profile_dir.join("arti");
        for dir in [self.state_dir(), self.cache_dir()] {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(&dir)
                .map_err(|e| TransportError::io("creating arti's directories", e))?;
        }
        #[cfg(unix)]
        for dir in [arti_dir, self.state_dir(), self.cache_dir()] {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |e| TransportError::io("restricting arti's directories to their owner", e),
            )?;
        }
        #[cfg(not(unix))]
        let _ = arti_dir;
        Ok(())
    }
}

/// Puts `settings` into arti's configuration, or says why arti cannot
/// honour them. Checks that every plugin binary exists.
fn apply_network_settings(
    builder: &mut TorClientConfigBuilder,
    settings: &TorNetworkSettings,
) -> Result<(), TransportError> {
    use arti_client::config::BridgeConfigBuilder;
    use arti_client::config::pt::TransportConfigBuilder;

    let invalid = |e: NetworkSettingsError| TransportError::Configuration {
        reason: e.to_string(),
        source: Some(Box::new(e)),
    };
    settings.check().map_err(invalid)?;
    let uses_plugins = settings.bridges.iter().any(|b| b.transport().is_some());
    if settings.proxy.is_some() && uses_plugins {
        return Err(TransportError::config(
            "arti cannot send a pluggable transport's connections through an upstream proxy \
             (they would go out directly): use plain bridges with the proxy, or launch C tor \
             (control::TorLaunch), which hands the proxy to the plugin",
        ));
    }
    if let Some(proxy @ UpstreamProxy::Https { .. }) = &settings.proxy
        && proxy.credentials().is_some()
    {
        // tor-chanmgr 0.47 (`transport/proxied.rs`,
        // `build_http_connect_request`) formats the user and password
        // through `safelog::Sensitive`, so the proxy receives
        // "[scrubbed]:[scrubbed]" and answers 407 (seen in
        // `arti_through_an_https_proxy_contacts_only_the_proxy`).
        return Err(TransportError::config(format!(
            "arti 0.47 cannot log in to an HTTPS proxy (it sends the user and password \
             scrubbed, and the proxy refuses them): use https://{} without a user and \
             password, a SOCKS5 proxy, or launch C tor (control::TorLaunch)",
            proxy.addr()
        )));
    }
    let arti_refused = |what: &str, e: &dyn fmt::Display| {
        TransportError::config(format!("arti does not accept {what}: {e}"))
    };
    for bridge in &settings.bridges {
        let line = bridge.to_string();
        let parsed: BridgeConfigBuilder = line
            .parse()
            .map_err(|e| arti_refused(&format!("the bridge line {line:?}"), &e))?;
        builder.bridges().bridges().push(parsed);
    }
    for plugin in &settings.transports {
        let path = plugin.locate().map_err(invalid)?;
        let mut protocols = Vec::new();
        for name in &plugin.transports {
            protocols.push(
                name.parse()
                    .map_err(|e| arti_refused(&format!("the transport name {name:?}"), &e))?,
            );
        }
        let mut transport = TransportConfigBuilder::default();
        transport
            .protocols(protocols)
            .path(CfgPath::new_literal(path))
            .arguments(plugin.args.clone())
            .run_on_startup(false);
        builder.bridges().transports().push(transport);
    }
    if let Some(proxy) = &settings.proxy {
        // arti names an HTTP CONNECT proxy `http://`.
        let url = proxy.to_url_with_password();
        let url = Zeroizing::new(match url.strip_prefix("https://") {
            Some(rest) => format!("http://{rest}"),
            None => url,
        });
        let parsed: tor_chanmgr::ProxyProtocol = url
            .parse()
            .map_err(|e| arti_refused(&format!("the proxy {proxy}"), &e))?;
        builder.channel().outbound_proxy(parsed);
    }
    if let Some(ports) = &settings.reachable_ports {
        for port in ports.iter() {
            let pattern: tor_netdoc::types::policy::AddrPortPattern =
                format!("*:{port}")
                    .parse()
                    .map_err(|e| arti_refused("a reachable port", &e))?;
            builder.path_rules().reachable_addrs().push(pattern);
        }
    }
    Ok(())
}

/// The embedded-arti transport. See the [module docs](self).
///
/// Nothing touches the network or the disk until [`Transport::bootstrap`];
/// until it has succeeded, `connect` and `listen` (of v3 keys and ids) fail
/// with [`TransportError::NotBootstrapped`].
pub struct ArtiTransport {
    config: ArtiConfig,
    client_config: TorClientConfig,
    /// The client, once created (it may still be bootstrapping).
    created: Mutex<Option<Arc<Client>>>,
    /// The client, once bootstrapped.
    ready: OnceLock<Arc<Client>>,
    status: Arc<watch::Sender<BootstrapStatus>>,
    bootstrapped: Arc<AtomicBool>,
    /// Forwards arti's bootstrap events into `status`.
    status_task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The isolation of our dials to each service: dials share a
    /// rendezvous circuit until one fails, and the next gets a token of its
    /// own, so arti builds a fresh circuit instead of handing out the one
    /// the failure may have left behind (see [`Transport::connect`]).
    dial_isolation: std::sync::Mutex<std::collections::HashMap<ServiceId, IsolationToken>>,
}

impl fmt::Debug for ArtiTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtiTransport")
            .field("config", &self.config)
            .field("bootstrapped", &self.ready.get().is_some())
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl ArtiTransport {
    /// A transport that runs arti as `config` says. Checks the configuration
    /// (a bad custom network TOML gives [`TransportError::Configuration`]);
    /// does no input/output.
    pub fn new(config: ArtiConfig) -> Result<Self, TransportError> {
        let client_config = config.client_config()?;
        Ok(Self {
            config,
            client_config,
            created: Mutex::new(None),
            ready: OnceLock::new(),
            status: Arc::new(watch::Sender::new(BootstrapStatus::starting())),
            bootstrapped: Arc::new(AtomicBool::new(false)),
            status_task: std::sync::Mutex::new(None),
            dial_isolation: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The configuration this transport was made with.
    pub fn config(&self) -> &ArtiConfig {
        &self.config
    }

    /// The arti client, once bootstrapped (for what this crate does not
    /// wrap; arti's API is not stable, see the crate README).
    pub fn tor_client(&self) -> Option<&Arc<TorClient<PreferredRuntime>>> {
        self.ready.get()
    }

    fn ready_client(&self) -> Result<&Arc<Client>, TransportError> {
        self.ready.get().ok_or(TransportError::NotBootstrapped)
    }

    /// The client, created on first call.
    fn create_client(&self, slot: &mut Option<Arc<Client>>) -> Result<Arc<Client>, TransportError> {
        if let Some(client) = slot {
            return Ok(Arc::clone(client));
        }
        // arti's rustls runtime needs a process-wide crypto provider; if the
        // application installed one already, that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        self.config.create_dirs()?;
        let runtime = PreferredRuntime::current().map_err(|e| TransportError::Configuration {
            reason: "arti needs to run inside a Tokio runtime".to_owned(),
            source: Some(Box::new(e)),
        })?;
        let client = TorClient::with_runtime(runtime)
            .config(self.client_config.clone())
            .bootstrap_behavior(BootstrapBehavior::Manual)
            .create_unbootstrapped()
            .map_err(|e| arti_error("creating the arti client", e))?;

        let mut events = client.bootstrap_events();
        let status = Arc::clone(&self.status);
        let bootstrapped = Arc::clone(&self.bootstrapped);
        let task = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                status.send_modify(|status| {
                    *status = convert_status(&event, bootstrapped.load(Ordering::SeqCst));
                });
            }
        });
        if let Some(old) = self.lock_status_task().replace(task) {
            old.abort();
        }
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// The isolation for a dial to `id`: the one its dials share, or
    /// (`renew`) a new one from now on.
    fn isolation_for(&self, id: &ServiceId, renew: bool) -> IsolationToken {
        // Only ever holds tokens: still consistent after a panic.
        let mut tokens = self
            .dial_isolation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if renew {
            tokens.remove(id);
        }
        *tokens.entry(*id).or_insert_with(IsolationToken::new)
    }

    fn lock_status_task(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        // Only ever holds a JoinHandle: still consistent after a panic.
        self.status_task.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Gives the service a new isolation token when a dial is dropped before it
/// ends (its caller gave up: a timeout of its own, or another connection
/// won). arti goes on with the connection attempt the dial started, and
/// shares it with the next dial under the same token: when that attempt
/// hangs, every later dial hangs on it too. Seen in a pass-rate run of
/// `private_mode_over_system_tor`: a stranger's dial of a service just
/// withdrawn got `INTRODUCE_ACK` success from an introduction point that
/// still had the old circuit, then waited for a rendezvous that never
/// came; the test cut each try after 15 s, and the next three tries
/// started no connection attempt of their own, for 60 s.
struct RenewIfGivenUp<'a> {
    transport: &'a ArtiTransport,
    id: ServiceId,
    /// Cleared once the dial has an outcome.
    armed: bool,
}

impl Drop for RenewIfGivenUp<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.transport.isolation_for(&self.id, true);
        }
    }
}

impl Drop for ArtiTransport {
    fn drop(&mut self) {
        if let Some(task) = self.lock_status_task().take() {
            task.abort();
        }
    }
}

/// Resolves once arti has made no progress for `stall`: with arti's words
/// (why it is blocked, if it says, else where it stands) and how long.
async fn stalled_bootstrap(
    mut events: arti_client::status::BootstrapEvents,
    stall: Duration,
) -> (String, Duration) {
    let mut best = 0.0f32;
    let mut since = tokio::time::Instant::now();
    let mut problem = "no progress".to_owned();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => {
                    if event.as_frac() > best {
                        best = event.as_frac();
                        since = tokio::time::Instant::now();
                    }
                    problem = match event.blocked() {
                        Some(blockage) => blockage.to_string(),
                        None => format!("stuck at {event}"),
                    };
                }
                // No more events: nothing more to judge by.
                None => std::future::pending().await,
            },
            _ = tick.tick() => {}
        }
        if since.elapsed() >= stall {
            return (problem, since.elapsed());
        }
    }
}

/// Our status from arti's. The percentage stays below 100 until
/// [`Transport::bootstrap`] has succeeded, and is 100 from then on (arti
/// keeps its directory fresh by itself); the phase is arti's live
/// description, which says so when arti is stuck.
fn convert_status(
    arti: &arti_client::status::BootstrapStatus,
    bootstrapped: bool,
) -> BootstrapStatus {
    let percent = if bootstrapped {
        100
    } else {
        ((arti.as_frac().clamp(0.0, 1.0) * 100.0).round() as u8).min(99)
    };
    // arti's text starts with its own percentage ("40%: ..."); drop it.
    let text = arti.to_string();
    let phase = match text.split_once("%: ") {
        Some((number, rest)) if number.bytes().all(|b| b.is_ascii_digit()) => rest.to_owned(),
        _ => text,
    };
    BootstrapStatus { percent, phase }
}

impl Transport for ArtiTransport {
    type Stream = ArtiStream;
    type Listener = ArtiListener;

    /// Creates arti's directories and the arti client on first call, then
    /// bootstraps it (arti waits and retries by itself; wrap this in a
    /// timeout to give up). Calling it again once bootstrapped returns at
    /// once.
    async fn bootstrap(&self) -> Result<(), TransportError> {
        if self.ready.get().is_some() {
            return Ok(());
        }
        let mut slot = self.created.lock().await;
        if self.ready.get().is_some() {
            return Ok(());
        }
        let client = self.create_client(&mut slot)?;
        let stalled = stalled_bootstrap(
            client.bootstrap_events(),
            self.config.bootstrap_stall_timeout,
        );
        tokio::select! {
            done = client.bootstrap() => done.map_err(|e| arti_error("bootstrapping arti", e))?,
            (problem, after) = stalled => {
                return Err(TransportError::BootstrapStalled {
                    entry: self.config.network_settings.entry_for(None, &problem),
                    problem,
                    after,
                });
            }
        }
        let _ = self.ready.set(Arc::clone(&client));
        self.bootstrapped.store(true, Ordering::SeqCst);
        let now = client.bootstrap_status();
        self.status
            .send_modify(|status| *status = convert_status(&now, true));
        Ok(())
    }

    fn bootstrap_status(&self) -> watch::Receiver<BootstrapStatus> {
        self.status.subscribe()
    }

    async fn connect(&self, id: &ServiceId, port: u16) -> Result<ArtiStream, TransportError> {
        if id.generation() == Generation::V2 {
            return Err(TransportError::UnsupportedGeneration {
                generation: Generation::V2,
                backend: BACKEND,
                reason: "arti cannot reach v2 onion services (it implements only v3)",
            });
        }
        let client = self.ready_client()?;
        let mut given_up = RenewIfGivenUp {
            transport: self,
            id: *id,
            armed: true,
        };
        let timeout = self.config.connect_timeout;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let dial = |isolation: IsolationToken| {
            let mut prefs = StreamPrefs::new();
            prefs.set_isolation(isolation);
            async move {
                tokio::time::timeout_at(
                    deadline,
                    client.connect_with_prefs((id.onion_hostname(), port), &prefs),
                )
                .await
            }
        };
        let mut outcome = dial(self.isolation_for(id, false)).await;
        // arti keeps one rendezvous circuit per service (and isolation) and
        // hands it out while it still looks open; if it dies under our BEGIN
        // (its far end or a relay destroyed it a moment before), the dial
        // fails although the service may be up: one more try, within the
        // same deadline, on a fresh circuit (a new isolation token), since
        // arti may go on handing out the dead one, whose BEGIN then waits
        // for ever (testnet/README.md, "Pass rates of the Tor test
        // binaries").
        if let Ok(Err(e)) = &outcome
            && circuit_died_under_the_dial(e)
        {
            tracing::debug!(%id, error = %crate::ErrorChain(e),
                "the rendezvous circuit died under the dial; dialling again on a fresh one");
            outcome = dial(self.isolation_for(id, true)).await;
        }
        given_up.armed = false;
        let result = match outcome {
            Err(_) => Err(TransportError::TimedOut {
                what: "connecting to the onion service",
                after: timeout,
            }),
            Ok(Ok(stream)) => return Ok(ArtiStream::new(stream)),
            Ok(Err(e)) => Err(connect_error(*id, e, started.elapsed())),
        };
        // A dial that hung or failed inside Tor may leave a circuit behind
        // that would fail the next one the same way: the next dial does not
        // reuse it. (A refusal, or a service that is not there, leaves none.)
        if let Err(error) = &result
            && !matches!(
                error.kind(),
                crate::ErrorKind::Refused | crate::ErrorKind::Unreachable
            )
        {
            self.isolation_for(id, true);
        }
        result
    }

    async fn listen(&self, key: &IdentityKey, port: u16) -> Result<ArtiListener, TransportError> {
        self.publish(key, port, None).await
    }

    async fn listen_private(
        &self,
        key: &IdentityKey,
        port: u16,
        authorized: &[ClientAuthPublicKey],
    ) -> Result<ArtiListener, TransportError> {
        TransportError::check_authorized(true, authorized)?;
        self.publish(key, port, Some(authorized)).await
    }

    /// Kept in arti's keystore (`<profile>/arti/state/keystore/client/…`),
    /// read at every dial.
    async fn set_client_auth(
        &self,
        id: &ServiceId,
        key: Option<&ClientAuthSecretKey>,
    ) -> Result<(), TransportError> {
        let client = self.ready_client()?.clone();
        let hsid: HsId = id
            .onion_hostname()
            .parse()
            .map_err(|_| TransportError::config(format!("{id} is not a v3 onion service")))?;
        let key = key.cloned();
        // The keystore is files: written off the runtime's threads.
        let stored = tokio::task::spawn_blocking(move || {
            client
                .remove_service_discovery_key(KeystoreSelector::Primary, hsid)
                .map_err(|e| arti_error("forgetting a client-authorization key", e))?;
            if let Some(key) = key {
                let secret =
                    HsClientDescEncSecretKey::from(curve25519::StaticSecret::from(*key.as_bytes()));
                client
                    .insert_service_discovery_key(KeystoreSelector::Primary, hsid, secret)
                    .map_err(|e| arti_error("storing a client-authorization key", e))?;
            }
            Ok(())
        })
        .await;
        stored.map_err(|e| TransportError::Tor {
            what: "the keystore task failed".to_owned(),
            source: Some(Box::new(e)),
        })?
    }
}

impl ArtiTransport {
    async fn publish(
        &self,
        key: &IdentityKey,
        port: u16,
        authorized: Option<&[ClientAuthPublicKey]>,
    ) -> Result<ArtiListener, TransportError> {
        let IdentityKey::V3(v3) = key else {
            return Err(TransportError::UnsupportedGeneration {
                generation: Generation::V2,
                backend: BACKEND,
                reason: "arti cannot host v2 onion services (it implements only v3); \
                         use the tor-control backend with a tor that still does",
            });
        };
        let client = self.ready_client()?;
        let id = key.service_id();
        let keystore = self.config.state_dir().join("keystore");
        let config = service_config(&id, authorized)?;
        let (service, rend_requests) = launch(client, v3, &id, &keystore, &config).await?;

        let onion_address = service
            .onion_address()
            .map(|hsid| hsid.display_unredacted().to_string())
            .unwrap_or_default();
        let (sender, incoming) = mpsc::channel(ACCEPT_QUEUE);
        tracing::debug!(%id, port, "arti onion service launched");
        let mut listener = ArtiListener {
            id,
            onion_address,
            incoming,
            status: watch::Sender::new(ServiceStatus::Publishing),
            private: authorized.is_some(),
            running: None,
            relaunch: Relaunch {
                client: Arc::clone(client),
                expanded: Zeroizing::new(*v3.expanded_secret_key()),
                keystore,
                port,
                sender,
            },
        };
        listener.run(service, rend_requests);
        Ok(listener)
    }
}

/// The configuration of the service of `id`, named `ricochet-<id>` in
/// arti's keystore and state; for `authorized` clients only if given
/// ("restricted discovery", each key under the nickname
/// `client-<its base32>`).
fn service_config(
    id: &ServiceId,
    authorized: Option<&[ClientAuthPublicKey]>,
) -> Result<OnionServiceConfig, TransportError> {
    let nickname =
        HsNickname::new(format!("ricochet-{id}")).map_err(|e| TransportError::Configuration {
            reason: format!("cannot name the onion service of {id}"),
            source: Some(Box::new(e)),
        })?;
    let mut builder = OnionServiceConfigBuilder::default();
    builder.nickname(nickname);
    if let Some(keys) = authorized {
        let restricted = builder.restricted_discovery();
        restricted.enabled(true);
        for key in keys {
            let nickname: HsClientNickname =
                format!("client-{key}")
                    .parse()
                    .map_err(|e| TransportError::Configuration {
                        reason: "cannot name an authorised client".to_owned(),
                        source: Some(Box::new(e)),
                    })?;
            let key = HsClientDescEncKey::from(curve25519::PublicKey::from(*key.as_bytes()));
            restricted.static_keys().access().push((nickname, key));
        }
    }
    builder.build().map_err(|e| TransportError::Configuration {
        reason: "the onion service configuration is not valid".to_owned(),
        source: Some(Box::new(e)),
    })
}

/// Feeds arti's status events of the service to a [`StatusMap`], and
/// publishes what it says.
async fn follow_status(
    mut events: tor_hsservice::status::OnionServiceStatusStream,
    status: watch::Sender<ServiceStatus>,
) {
    let mut map = StatusMap::default();
    while let Some(event) = events.next().await {
        let problem = event.current_problem().map(|p| format!("{p:?}"));
        let ours = map.on_state(event.state(), problem);
        status.send_if_modified(|status| {
            let changed = *status != ours;
            *status = ours;
            changed
        });
    }
}

/// Turns arti's states of one launch of an onion service into ours:
/// published once arti says the descriptor is up to date with working
/// introduction points.
///
/// After that, arti says "bootstrapping" (with no problem) whenever its
/// publisher schedules an upload of a new revision of the descriptor: on a
/// new consensus whose directory ring moved, a new introduction point, or
/// while the upload is rate-limited. The last descriptor still serves, so
/// the service stays published (calling it degraded was issue 23's
/// `first_contact_over_arti` flake). Only a problem arti names
/// ("recovering", "degraded unreachable") makes it degraded.
///
/// A new authorised set relaunches the service (see
/// [`ArtiListener::set_authorized`]), with a map of its own: "published"
/// then means the new descriptor is up.
#[derive(Debug, Default)]
struct StatusMap {
    /// Whether arti has reported this launch running at least once.
    published: bool,
}

impl StatusMap {
    /// arti reported `state`, with its current `problem` if any.
    fn on_state(
        &mut self,
        state: tor_hsservice::status::State,
        problem: Option<String>,
    ) -> ServiceStatus {
        use tor_hsservice::status::State;
        let reason = || {
            problem
                .clone()
                .unwrap_or_else(|| "no reason given".to_owned())
        };
        match state {
            State::Running | State::DegradedReachable => {
                self.published = true;
                ServiceStatus::Published
            }
            // arti's first report of a service it is still launching.
            State::Shutdown if !self.published => ServiceStatus::Publishing,
            State::Shutdown => ServiceStatus::Failed {
                reason: "arti shut the onion service down".to_owned(),
            },
            State::Broken => ServiceStatus::Failed { reason: reason() },
            _ if !self.published => ServiceStatus::Publishing,
            // A new revision being uploaded; the last one still serves.
            State::Bootstrapping if problem.is_none() => ServiceStatus::Published,
            _ => ServiceStatus::Degraded { reason: reason() },
        }
    }
}

/// Launches the onion service of `key` (whose id is `id`), named
/// `ricochet-<id>` in arti's keystore and state.
async fn launch(
    client: &Client,
    key: &V3IdentityKey,
    id: &ServiceId,
    keystore: &Path,
    config: &OnionServiceConfig,
) -> Result<(Arc<RunningOnionService>, RendRequests), TransportError> {
    let expanded = Zeroizing::new(*key.expanded_secret_key());
    let keypair = ExpandedKeypair::from_secret_key_bytes(*expanded)
        .ok_or_else(|| TransportError::config("the v3 identity key is not a valid ed25519 key"))?;
    let public = *keypair.public().as_bytes();
    let ServiceId::V3(v3_id) = id else {
        return Err(TransportError::config("a v3 key with a v2 id"));
    };
    if &public != v3_id.public_key_bytes() {
        return Err(TransportError::config(
            "the v3 identity key's expanded secret does not match its public key",
        ));
    }
    let started = Instant::now();
    let launched = loop {
        let keypair = HsIdKeypair::from(
            ExpandedKeypair::from_secret_key_bytes(*expanded).ok_or_else(|| {
                TransportError::config("the v3 identity key is not a valid ed25519 key")
            })?,
        );
        let attempt = match client.launch_onion_service_with_hsid(config.clone(), keypair) {
            // The key is in arti's keystore already (published before, by
            // this process or an earlier one): launch with the stored key,
            // checked against ours below.
            Err(e) if e.kind() == arti_client::ErrorKind::BadApiUsage => client
                .launch_onion_service(config.clone())
                .map(|launched| launched.map(|(service, requests)| (service, boxed(requests)))),
            other => {
                other.map(|launched| launched.map(|(service, requests)| (service, boxed(requests))))
            }
        };
        match attempt {
            // A listener of this service was just dropped and its tasks
            // still hold the service's state: wait for them to go.
            Err(e)
                if e.kind() == arti_client::ErrorKind::LocalResourceAlreadyInUse
                    && started.elapsed() < RELAUNCH_WAIT =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(arti_error("launching the onion service", e)),
            Ok(None) => {
                return Err(TransportError::tor(
                    "arti says the onion service is disabled",
                ));
            }
            Ok(Some(launched)) => break launched,
        }
    };
    match launched.0.onion_address() {
        Some(hsid) if <[u8; 32]>::from(hsid) == public => Ok(launched),
        _ => Err(TransportError::Configuration {
            reason: format!(
                "arti's keystore ({}) holds a different key for the onion service of {id}",
                keystore.display()
            ),
            source: None,
        }),
    }
}

/// The rendezvous requests of a running service.
type RendRequests = Pin<Box<dyn futures::Stream<Item = tor_hsservice::RendRequest> + Send>>;

fn boxed(
    requests: impl futures::Stream<Item = tor_hsservice::RendRequest> + Send + 'static,
) -> RendRequests {
    Box::pin(requests)
}

/// Accepts a stream to our port; refuses anything else the way Tor
/// recommends for consistency (an `END` with reason `DONE`).
async fn answer(request: StreamRequest, port: u16, sender: mpsc::Sender<DataStream>) {
    let wanted =
        matches!(request.request(), IncomingStreamRequest::Begin(begin) if begin.port() == port);
    if !wanted {
        tracing::debug!("refusing a stream to another port of our onion service");
        let _ = request.reject(End::new_with_reason(EndReason::DONE)).await;
        return;
    }
    match request.accept(Connected::new_empty()).await {
        // If the listener is gone the stream is dropped, which closes it.
        Ok(stream) => {
            let _ = sender.send(stream).await;
        }
        Err(e) => {
            tracing::debug!(error = %crate::ErrorChain(&e), "could not accept an incoming stream")
        }
    }
}

/// A published onion service: incoming streams to its port. Dropping it
/// takes the service down (arti stops publishing it and closes its
/// introduction points; streams already accepted stay open).
pub struct ArtiListener {
    id: ServiceId,
    onion_address: String,
    incoming: mpsc::Receiver<DataStream>,
    status: watch::Sender<ServiceStatus>,
    /// Published with [`Transport::listen_private`].
    private: bool,
    /// The current launch of the service, if it runs.
    running: Option<Running>,
    relaunch: Relaunch,
}

/// One launch of the service, and the tasks that serve it.
struct Running {
    service: Arc<RunningOnionService>,
    /// Answers its stream requests.
    task: JoinHandle<()>,
    /// Forwards arti's status events into the listener's status.
    status_task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        self.status_task.abort();
    }
}

/// What launching the service again needs.
struct Relaunch {
    client: Arc<Client>,
    /// The identity key's expanded secret (wiped when dropped).
    expanded: Zeroizing<[u8; 64]>,
    keystore: PathBuf,
    port: u16,
    /// Where accepted streams go, whichever launch accepted them.
    sender: mpsc::Sender<DataStream>,
}

impl fmt::Debug for ArtiListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtiListener")
            .field("id", &self.id)
            .field("onion_address", &self.onion_address)
            .finish_non_exhaustive()
    }
}

impl ArtiListener {
    /// The onion address as arti publishes it (`<id>.onion`, in arti's own
    /// encoding; equal to [`ServiceId::onion_hostname`] of our id).
    pub fn onion_address(&self) -> &str {
        &self.onion_address
    }

    /// arti's handle of the running service (e.g. for its status events).
    pub fn running_service(&self) -> Option<&RunningOnionService> {
        self.running.as_ref().map(|running| &*running.service)
    }

    /// Serves the launch `service`: its stream requests into `incoming`,
    /// its status into `status`.
    fn run(&mut self, service: Arc<RunningOnionService>, rend_requests: RendRequests) {
        let (port, sender) = (self.relaunch.port, self.relaunch.sender.clone());
        let task = tokio::spawn(async move {
            tor_hsservice::handle_rend_requests(rend_requests)
                .for_each_concurrent(None, |request| answer(request, port, sender.clone()))
                .await;
        });
        let status_task = tokio::spawn(follow_status(service.status_events(), self.status.clone()));
        self.running = Some(Running {
            service,
            task,
            status_task,
        });
    }
}

impl Listener for ArtiListener {
    type Stream = ArtiStream;

    async fn accept(&mut self) -> Result<ArtiStream, TransportError> {
        self.incoming
            .recv()
            .await
            .map(ArtiStream::new)
            .ok_or_else(|| TransportError::tor("the onion service stopped"))
    }

    fn service_id(&self) -> ServiceId {
        self.id
    }

    fn status(&self) -> watch::Receiver<ServiceStatus> {
        self.status.subscribe()
    }

    /// Launches the service again with the new set: the new descriptor is
    /// up seconds later. (Reconfiguring the running service would wait for
    /// arti's upload rate limit, one upload a minute, which arti 0.47 lifts
    /// only at a later consensus or reupload: up to an hour on the real
    /// network, see testnet/README.md.) Streams already accepted stay
    /// open; a dial that arrives during the relaunch fails, and is tried
    /// again as any failed dial.
    async fn set_authorized(
        &mut self,
        authorized: &[ClientAuthPublicKey],
    ) -> Result<(), TransportError> {
        TransportError::check_authorized(self.private, authorized)?;
        let config = service_config(&self.id, Some(authorized))?;
        self.running = None;
        self.status.send_replace(ServiceStatus::Publishing);
        after_the_last_descriptors_second().await;
        let relaunch = &self.relaunch;
        let launched = match V3IdentityKey::from_expanded(&relaunch.expanded) {
            Ok(key) => {
                launch(
                    &relaunch.client,
                    &key,
                    &self.id,
                    &relaunch.keystore,
                    &config,
                )
                .await
            }
            Err(e) => Err(TransportError::Configuration {
                reason: "the identity key no longer loads".to_owned(),
                source: Some(Box::new(e)),
            }),
        };
        match launched {
            Ok((service, rend_requests)) => {
                tracing::debug!(id = %self.id, "arti onion service relaunched for a new authorised set");
                self.run(service, rend_requests);
                Ok(())
            }
            Err(e) => {
                self.status.send_replace(ServiceStatus::Failed {
                    reason: format!("relaunching for a new authorised set: {e}"),
                });
                Err(e)
            }
        }
    }
}

/// Waits until the wall clock is in a later second than any descriptor the
/// service just stopped can have built.
///
/// A descriptor's revision counter is its time within the shared-random
/// period in whole seconds (rend-spec, "encrypted time in period";
/// tor-hsservice 0.47 `generate_revision_counter`), and a directory keeps
/// only a descriptor with a higher counter than the one it has: C tor
/// answers "400 Invalid HS descriptor. Rejected.". A service relaunched
/// within the second in which the old one built its last descriptor gets
/// the same counter for that time period, is refused on every retry of
/// that upload, and stays "publishing" until arti builds a new descriptor
/// (pass-rate run of `private_services_between_arti_and_c_tor`: more than
/// 150 s). Stopping the old service is not instant either (its publisher
/// sees the signal a moment later), hence the margin.
async fn after_the_last_descriptors_second() {
    const MARGIN: Duration = Duration::from_millis(250);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let next_second = Duration::from_secs((now + MARGIN).as_secs() + 1);
    tokio::time::sleep(next_second.saturating_sub(now)).await;
}

/// A stream to or from an onion service, through arti.
///
/// It behaves like a socket where arti's `DataStream` does not:
///
/// * Writes are sent without an explicit `flush` (arti buffers up to a
///   cell until flushed); a flush that cannot complete at once is finished
///   by the next write or read.
/// * Tor has no half-close: `shutdown` flushes and closes the whole stream
///   (arti sends `END`), after which reads give end-of-file.
/// * The peer closing the stream normally (`END` with reason `DONE`, as C
///   tor sends, or `MISC`, as arti sends) reads as end-of-file rather than
///   an error, and end-of-file stays end-of-file.
#[derive(Debug)]
pub struct ArtiStream {
    inner: DataStream,
    /// Bytes were written but not flushed yet.
    unflushed: bool,
    /// A write waited for a flush that a read may finish: wake it then.
    write_waker: Option<Waker>,
    shut_down: bool,
    eof: bool,
}

impl ArtiStream {
    fn new(inner: DataStream) -> Self {
        Self {
            inner,
            unflushed: false,
            write_waker: None,
            shut_down: false,
            eof: false,
        }
    }

    /// The arti stream inside.
    pub fn get_ref(&self) -> &DataStream {
        &self.inner
    }

    /// The arti stream inside (its writes then need explicit flushes).
    pub fn into_inner(self) -> DataStream {
        self.inner
    }

    /// Drives a pending flush; `Ready` once nothing is left unflushed.
    fn poll_pending_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        let result = ready!(Pin::new(&mut self.inner).poll_flush(cx));
        self.unflushed = false;
        if let Some(waker) = self.write_waker.take() {
            waker.wake();
        }
        Poll::Ready(result)
    }
}

/// Whether a read error is the peer closing the stream normally.
fn is_normal_close(error: &io::Error) -> bool {
    let reason = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<tor_proto::Error>())
        .and_then(|inner| match inner {
            tor_proto::Error::EndReceived(reason) => Some(*reason),
            _ => None,
        });
    matches!(reason, Some(EndReason::DONE | EndReason::MISC))
}

impl AsyncRead for ArtiStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.eof {
            return Poll::Ready(Ok(()));
        }
        // Data written before waiting for an answer must go out. An error
        // shows in the next write; a pending flush wakes this task.
        if !this.shut_down {
            let _ = this.poll_pending_flush(cx);
        }
        let before = buf.filled().len();
        match ready!(Pin::new(&mut this.inner).poll_read(cx, buf)) {
            Ok(()) => {
                if buf.filled().len() == before && buf.remaining() > 0 {
                    this.eof = true;
                }
                Poll::Ready(Ok(()))
            }
            Err(e) if this.shut_down || is_normal_close(&e) => {
                this.eof = true;
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for ArtiStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.unflushed {
            match this.poll_pending_flush(cx) {
                Poll::Pending => {
                    this.write_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(result) => result?,
            }
        }
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if written > 0 {
            this.unflushed = true;
            // Send it now if we can; if not, the next write or read will.
            if let Poll::Ready(Err(e)) = this.poll_pending_flush(cx) {
                tracing::debug!(error = %e, "flushing an arti stream failed");
            }
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.unflushed = true;
        this.poll_pending_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.shut_down {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
        this.unflushed = false;
        this.shut_down = true;
        Poll::Ready(Ok(()))
    }
}

/// An arti error of some operation other than dialling.
fn arti_error(what: &str, error: arti_client::Error) -> TransportError {
    use arti_client::ErrorKind as K;
    match error.kind() {
        K::InvalidConfig | K::InvalidConfigTransition | K::FsPermissions | K::NoHomeDirectory => {
            TransportError::Configuration {
                reason: what.to_owned(),
                source: Some(Box::new(error)),
            }
        }
        _ => TransportError::Tor {
            what: what.to_owned(),
            source: Some(Box::new(error)),
        },
    }
}

/// Whether a dial failed because the circuit it was given closed before
/// the service could answer: arti's stream ended without an `END`
/// (`NotConnected`) or the circuit was gone when the `BEGIN` was to be sent
/// (`CircuitClosed`). Not a verdict on the service; the dial is worth
/// another try on a new circuit.
fn circuit_died_under_the_dial(error: &arti_client::Error) -> bool {
    if error.kind() == arti_client::ErrorKind::CircuitCollapse {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(proto) = cause.downcast_ref::<tor_proto::Error>() {
            return matches!(
                proto,
                tor_proto::Error::NotConnected | tor_proto::Error::CircuitClosed
            );
        }
        source = cause.source();
    }
    false
}

/// The error of dialling `id`, by arti's error kind.
fn connect_error(id: ServiceId, error: arti_client::Error, after: Duration) -> TransportError {
    use arti_client::ErrorKind as K;
    let kind = error.kind();
    tracing::debug!(%id, %kind, error = %crate::ErrorChain(&error), "arti could not connect");
    let source: Option<BoxError> = Some(Box::new(error.clone()));
    match kind {
        // No descriptor, descriptor fetch failed, no introduction point
        // answered, or a descriptor we may not read (a service for
        // authorised clients): to us the service is not published.
        K::OnionServiceMissingClientAuth => {
            TransportError::unreachable(id, Some(OnionFailure::ClientAuthMissing), source)
        }
        K::OnionServiceWrongClientAuth => {
            TransportError::unreachable(id, Some(OnionFailure::ClientAuthWrong), source)
        }
        K::OnionServiceNotFound => {
            TransportError::unreachable(id, Some(OnionFailure::NotFound), source)
        }
        // A descriptor, but no introduction point took us in.
        K::OnionServiceNotRunning => {
            TransportError::unreachable(id, Some(OnionFailure::IntroductionFailed), source)
        }
        K::OnionServiceProtocolViolation => {
            TransportError::unreachable(id, Some(OnionFailure::DescriptorInvalid), source)
        }
        K::OnionServiceConnectionFailed | K::TorDirectoryError | K::RemoteHostNotFound => {
            TransportError::unreachable(id, None, source)
        }
        // We reached the service and it did not take the stream.
        K::RemoteConnectionRefused
        | K::RemoteStreamClosed
        | K::RemoteStreamReset
        | K::RemoteStreamError => TransportError::Refused {
            id: Box::new(id),
            source,
        },
        K::TorNetworkTimeout | K::RemoteNetworkTimeout | K::ExitTimeout => {
            TransportError::TimedOut {
                what: "reaching the onion service (a Tor network timeout)",
                after,
            }
        }
        K::BootstrapRequired => TransportError::NotBootstrapped,
        _ => TransportError::Tor {
            what: format!("connecting to {id}.onion: {error}"),
            source,
        },
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn storage_follows_the_profile() {
        let config = ArtiConfig::new("/p").custom_network(
            "[storage]\nstate_dir = \"/elsewhere/state\"\ncache_dir = \"/elsewhere/cache\"\n",
        );
        assert_eq!(config.state_dir(), Path::new("/p/arti/state"));
        assert_eq!(config.cache_dir(), Path::new("/p/arti/cache"));
        let built = config.client_config().unwrap();
        let debug = format!("{built:?}");
        assert!(debug.contains("/p/arti/state"), "{debug}");
        assert!(!debug.contains("/elsewhere"), "{debug}");
    }

    /// arti's states as a service goes through them, and ours.
    #[test]
    fn a_republished_descriptor_keeps_the_service_published() {
        use tor_hsservice::status::State;
        let mut map = StatusMap::default();
        let publishing = ServiceStatus::Publishing;
        assert_eq!(map.on_state(State::Shutdown, None), publishing);
        assert_eq!(map.on_state(State::Bootstrapping, None), publishing);
        assert_eq!(
            map.on_state(State::Recovering, Some("Ipt".into())),
            publishing
        );
        assert_eq!(map.on_state(State::Running, None), ServiceStatus::Published);
        // A new revision scheduled (a new consensus, a rate-limited upload).
        assert_eq!(
            map.on_state(State::Bootstrapping, None),
            ServiceStatus::Published
        );
        // A problem arti names makes it degraded, with arti's words.
        assert_eq!(
            map.on_state(State::Recovering, Some("Ipt([…])".to_owned())),
            ServiceStatus::Degraded {
                reason: "Ipt([…])".to_owned()
            }
        );
        assert_eq!(
            map.on_state(State::DegradedUnreachable, None),
            ServiceStatus::Degraded {
                reason: "no reason given".to_owned()
            }
        );
        assert_eq!(
            map.on_state(State::DegradedReachable, None),
            ServiceStatus::Published
        );
        assert_eq!(
            map.on_state(State::Broken, Some("Runtime".into())),
            ServiceStatus::Failed {
                reason: "Runtime".to_owned()
            }
        );
        assert_eq!(
            map.on_state(State::Shutdown, None),
            ServiceStatus::Failed {
                reason: "arti shut the onion service down".to_owned()
            }
        );
    }

    #[test]
    fn network_settings_reach_arti_or_are_refused() {
        use crate::censorship::{BridgeLine, TransportPlugin, UpstreamProxy};
        let obfs4 = BridgeLine::parse(
            "obfs4 192.0.2.55:443 316E643333645F6D79216558614D3931657A5F5F \
             cert=YXJlIGZyZXF1ZW50bHkgZnVsbCBvZiBsaXR0bGUgbWVzc2FnZXMgeW91IGNhbiBmaW5kLg iat-mode=0",
        )
        .unwrap();
        // A plugin binary that exists everywhere the tests run.
        let plugin = TransportPlugin::new(["obfs4"], "sh");
        let proxy: UpstreamProxy = "socks5://u:secret@127.0.0.1:1080".parse().unwrap();
        let settings = TorNetworkSettings::default()
            .with_bridges([obfs4.clone()])
            .with_transport(plugin.clone())
            .with_reachable_ports("443".parse().unwrap());
        let built = ArtiConfig::new("/p")
            .network_settings(settings.clone())
            .client_config()
            .unwrap();
        let debug = format!("{built:?}");
        assert!(debug.contains("192.0.2.55:443"), "{debug}");
        assert!(debug.contains("/sh"), "{debug}");

        let kind = |settings: TorNetworkSettings| {
            ArtiTransport::new(ArtiConfig::new("/p").network_settings(settings))
                .map(|_| ())
                .unwrap_err()
        };
        // Without its plugin, the bridge would be dialled undisguised.
        let error = kind(TorNetworkSettings::default().with_bridges([obfs4.clone()]));
        assert_eq!(error.kind(), crate::ErrorKind::Configuration);
        assert!(error.to_string().contains("no plugin binary"), "{error}");
        // arti would not send the plugin's connections through the proxy.
        let error = kind(settings.clone().with_proxy(proxy.clone()));
        assert!(error.to_string().contains("TorLaunch"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
        // A missing plugin binary is named.
        let error = kind(
            TorNetworkSettings::default()
                .with_bridges([obfs4])
                .with_transport(TransportPlugin::new(["obfs4"], "/nonexistent/obfs4proxy")),
        );
        assert!(
            error.to_string().contains("/nonexistent/obfs4proxy"),
            "{error}"
        );

        // An HTTPS proxy's login would reach it scrubbed.
        let error = kind(
            TorNetworkSettings::default()
                .with_proxy("https://u:secret@127.0.0.1:3128".parse().unwrap()),
        );
        assert_eq!(error.kind(), crate::ErrorKind::Configuration);
        assert!(error.to_string().contains("TorLaunch"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
        // A proxy alone, and HTTPS without a login, are arti's too.
        for url in [
            "socks5://u:secret@127.0.0.1:1080",
            "https://127.0.0.1:3128",
            "socks4://127.0.0.1:1080",
        ] {
            let settings = TorNetworkSettings::default().with_proxy(url.parse().unwrap());
            let built = ArtiConfig::new("/p")
                .network_settings(settings)
                .client_config()
                .unwrap();
            assert!(format!("{built:?}").contains("127.0.0.1"), "{url}");
        }
    }

    #[test]
    fn bad_toml_is_a_configuration_error() {
        let error =
            ArtiTransport::new(ArtiConfig::new("/p").custom_network("[storage\n")).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::Configuration);
    }
}
