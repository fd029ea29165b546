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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ricochet_identity::{Generation, IdentityKey, ServiceId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zeroize::Zeroizing;

pub use process::TorLaunch;

use self::connection::ControlConnection;
use self::process::TorProcess;
use self::reply::bootstrap_phase;
use crate::{BootstrapStatus, Listener, Transport, TransportError};

/// Where tor's control port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    /// A TCP control port (`ControlPort 9051`).
    Tcp(SocketAddr),
    /// A Unix control socket (`ControlPort unix:/run/tor/control`).
    Unix(PathBuf),
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
        }
    }
}

/// The system-tor transport.
#[derive(Debug)]
pub struct SystemTor {
    config: SystemTorConfig,
    socks: OnceLock<SocketAddr>,
    status: watch::Sender<BootstrapStatus>,
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
        Ok(Self {
            _process: Some(process),
            ..Self::new(config)
        })
    }

    async fn control(&self) -> Result<ControlConnection, TransportError> {
        ControlConnection::open(&self.config.control, &self.config.auth).await
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
        loop {
            let reply = control
                .command_ok(
                    "GETINFO status/bootstrap-phase",
                    "GETINFO status/bootstrap-phase",
                )
                .await?;
            if let Some((percent, phase)) = reply
                .value("status/bootstrap-phase")
                .and_then(|v| bootstrap_phase(&v))
            {
                self.status.send_replace(BootstrapStatus { percent, phase });
                if percent >= 100 {
                    break;
                }
            }
            if started.elapsed() > self.config.bootstrap_timeout {
                return Err(TransportError::TimedOut {
                    what: "tor bootstrap",
                    after: self.config.bootstrap_timeout,
                });
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
                        TransportError::config("tor has no TCP SocksPort; configure one")
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
        let target = (id.onion_hostname(), port);
        let timeout = self.config.connect_timeout;
        let stream = match tokio::time::timeout(
            timeout,
            tokio_socks::tcp::Socks5Stream::connect(socks, target),
        )
        .await
        {
            Err(_) => {
                return Err(TransportError::TimedOut {
                    what: "connecting through tor",
                    after: timeout,
                });
            }
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(socks_error(*id, e)),
        };
        let stream = stream.into_inner();
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn listen(&self, key: &IdentityKey, port: u16) -> Result<OnionListener, TransportError> {
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
        let command = Zeroizing::new(format!(
            "ADD_ONION {} Port={port},127.0.0.1:{local_port}",
            blob.as_str()
        ));
        let reply = control.command(&command).await?;
        if !reply.is_ok() {
            if key.generation() == Generation::V2 {
                return Err(TransportError::UnsupportedGeneration {
                    generation: Generation::V2,
                    backend: "system tor",
                    reason: "this tor no longer hosts v2 onion services (removed in tor 0.4.6)",
                });
            }
            return Err(TransportError::tor(format!(
                "ADD_ONION: {} {}",
                reply.status,
                reply.first_text()
            )));
        }
        let id = key.service_id();
        if reply.value("ServiceID").as_deref() != Some(id.to_string().as_str()) {
            return Err(TransportError::tor(
                "ADD_ONION published a different service id",
            ));
        }
        Ok(OnionListener {
            _control: control,
            local,
            id,
        })
    }
}

/// Maps a SOCKS failure to our kinds. With tor's `ExtendedErrors`, onion
/// failures have codes of their own; without, they are general failures.
fn socks_error(id: ServiceId, error: tokio_socks::Error) -> TransportError {
    use tokio_socks::Error as E;
    match error {
        E::ConnectionRefused => TransportError::Refused {
            id: Box::new(id),
            source: Some(Box::new(error)),
        },
        E::Io(e) => TransportError::io("talking to tor's SOCKS port", e),
        E::TtlExpired => TransportError::TimedOut {
            what: "tor's circuit to the onion service",
            after: Duration::ZERO,
        },
        other => TransportError::Unreachable {
            id: Box::new(id),
            source: Some(Box::new(other)),
        },
    }
}

/// Incoming streams to an onion service published with `ADD_ONION`. Its
/// control connection keeps the service up; dropping the listener closes
/// it, and tor removes the service.
#[derive(Debug)]
pub struct OnionListener {
    _control: ControlConnection,
    local: TcpListener,
    id: ServiceId,
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
    fn password_is_redacted() {
        let auth = ControlAuth::Password(Arc::new(Zeroizing::new("hunter2".into())));
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
