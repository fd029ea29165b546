//! Direct TCP: no Tor at all. A [`Directory`] maps service ids to socket
//! addresses, so peers find each other on loopback or a LAN. For tests, LAN
//! demos and protocol-1 peers; it offers no anonymity.
//!
//! Directory file format, one entry per line (`#` starts a comment):
//!
//! ```text
//! # id                                                                 address
//! ricochet:25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid   127.0.0.1:9878
//! mi5b77eu3d4o3tk6                                                     192.168.1.20:9878
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ricochet_identity::{ClientAuthPublicKey, ClientAuthSecretKey, IdentityKey, ServiceId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::{BootstrapStatus, Listener, OnionFailure, ServiceStatus, Transport, TransportError};

/// Where each service id can be reached. Cheap to clone; clones share the
/// same map, so transports made from one directory see each other's
/// listeners. There is no global state: two directories never interact.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    entries: Arc<RwLock<HashMap<ServiceId, SocketAddr>>>,
    /// Services published for authorised clients only: the public halves
    /// of their keys. Only a transport holding one of the secret halves
    /// finds such a service (what Tor's client authorization does).
    restricted: Arc<RwLock<HashMap<ServiceId, HashSet<ClientAuthPublicKey>>>>,
}

/// A line of a directory file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("directory line {line}: {reason}")]
pub struct DirectoryError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the directory file format (see the module docs).
    pub fn parse(text: &str) -> Result<Self, DirectoryError> {
        let directory = Self::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let error = |reason: String| DirectoryError {
                line: index + 1,
                reason,
            };
            let mut fields = line.split_whitespace();
            let (Some(id), Some(addr), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(error("expected `<id> <address:port>`".to_owned()));
            };
            let id: ServiceId = id.parse().map_err(|e| error(format!("{e}")))?;
            let addr: SocketAddr = addr
                .parse()
                .map_err(|e| error(format!("bad address {addr:?}: {e}")))?;
            directory.insert(id, addr);
        }
        Ok(directory)
    }

    /// Reads a directory file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TransportError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| TransportError::io("reading the peers directory", e))?;
        Self::parse(&text).map_err(|e| TransportError::Configuration {
            reason: format!("{}: {e}", path.display()),
            source: None,
        })
    }

    /// Adds or replaces the address of `id`.
    pub fn insert(&self, id: ServiceId, addr: SocketAddr) {
        self.write().insert(id, addr);
    }

    /// The address of `id`, if known.
    pub fn get(&self, id: &ServiceId) -> Option<SocketAddr> {
        self.read().get(id).copied()
    }

    fn remove_if(&self, id: &ServiceId, addr: SocketAddr) {
        let mut entries = self.write();
        if entries.get(id) == Some(&addr) {
            entries.remove(id);
            self.restrict(id, None);
        }
    }

    /// Makes `id` findable only with one of `authorized` (`None`: by
    /// anyone).
    fn restrict(&self, id: &ServiceId, authorized: Option<&[ClientAuthPublicKey]>) {
        let mut restricted = self.restricted.write().unwrap_or_else(|e| e.into_inner());
        match authorized {
            Some(keys) => {
                restricted.insert(*id, keys.iter().copied().collect());
            }
            None => {
                restricted.remove(id);
            }
        }
    }

    /// Whether a client holding `key` (or none) finds `id`.
    fn findable(&self, id: &ServiceId, key: Option<&ClientAuthPublicKey>) -> bool {
        let restricted = self.restricted.read().unwrap_or_else(|e| e.into_inner());
        match restricted.get(id) {
            None => true,
            Some(authorized) => key.is_some_and(|key| authorized.contains(key)),
        }
    }

    // A poisoned lock only means another thread panicked mid-insert; the map
    // itself is still consistent, so keep using it.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ServiceId, SocketAddr>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ServiceId, SocketAddr>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The direct TCP transport.
#[derive(Debug, Clone)]
pub struct TcpTransport {
    directory: Directory,
    listen_addr: Option<SocketAddr>,
    connect_timeout: Duration,
    /// How long a new service says "publishing" (see
    /// [`TcpTransport::publish_delay`]).
    publish_delay: Option<Duration>,
    status: watch::Sender<BootstrapStatus>,
    /// Our client-authorization keys (public halves), by service.
    client_auth: Arc<RwLock<HashMap<ServiceId, ClientAuthPublicKey>>>,
}

impl TcpTransport {
    /// A transport that dials the addresses in `directory` and listens on
    /// the address the directory gives for our own id (or, if none, on an
    /// unused port of 127.0.0.1, which it then records in the directory).
    pub fn new(directory: Directory) -> Self {
        Self {
            directory,
            listen_addr: None,
            connect_timeout: Duration::from_secs(30),
            publish_delay: None,
            status: watch::Sender::new(BootstrapStatus::ready()),
            client_auth: Arc::default(),
        }
    }

    /// Listens on `addr` instead. Default: the directory's address for our
    /// id, else `127.0.0.1:0`.
    pub fn listen_on(mut self, addr: SocketAddr) -> Self {
        self.listen_addr = Some(addr);
        self
    }

    /// Gives up dialling after `timeout`. Default: 30 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Reports each new service [`ServiceStatus::Publishing`] for `delay`
    /// before [`ServiceStatus::Published`], as a Tor backend does while it
    /// uploads the descriptor (the service takes connections at once), so
    /// that tests of the layers above see the same sequence. Default: at
    /// once `Published`.
    pub fn publish_delay(mut self, delay: Duration) -> Self {
        self.publish_delay = Some(delay);
        self
    }

    /// The directory this transport uses.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }
}

impl Transport for TcpTransport {
    type Stream = TcpStream;
    type Listener = TcpServiceListener;

    async fn bootstrap(&self) -> Result<(), TransportError> {
        Ok(())
    }

    fn bootstrap_status(&self) -> watch::Receiver<BootstrapStatus> {
        self.status.subscribe()
    }

    /// Dials the directory's address for `id`; `port` is not used, since
    /// the directory gives the whole address.
    async fn connect(&self, id: &ServiceId, _port: u16) -> Result<TcpStream, TransportError> {
        let key = self
            .client_auth
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied();
        // A service we are not authorised for cannot be reached, and says
        // why as C tor's extended SOCKS replies do.
        let addr = match self.directory.get(id) {
            None => Err(OnionFailure::NotFound),
            Some(addr) if self.directory.findable(id, key.as_ref()) => Ok(addr),
            Some(_) if key.is_some() => Err(OnionFailure::ClientAuthWrong),
            Some(_) => Err(OnionFailure::ClientAuthMissing),
        }
        .map_err(|why| TransportError::unreachable(*id, Some(why), None))?;
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => Err(TransportError::TimedOut {
                what: "TCP connect",
                after: self.connect_timeout,
            }),
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(TransportError::Refused {
                    id: Box::new(*id),
                    source: Some(Box::new(e)),
                })
            }
            Ok(Err(e)) => Err(TransportError::unreachable(*id, None, Some(Box::new(e)))),
        }
    }

    async fn listen(
        &self,
        key: &IdentityKey,
        port: u16,
    ) -> Result<TcpServiceListener, TransportError> {
        self.bind(key, port, None).await
    }

    async fn listen_private(
        &self,
        key: &IdentityKey,
        port: u16,
        authorized: &[ClientAuthPublicKey],
    ) -> Result<TcpServiceListener, TransportError> {
        TransportError::check_authorized(true, authorized)?;
        self.bind(key, port, Some(authorized)).await
    }

    async fn set_client_auth(
        &self,
        id: &ServiceId,
        key: Option<&ClientAuthSecretKey>,
    ) -> Result<(), TransportError> {
        let mut client_auth = self.client_auth.write().unwrap_or_else(|e| e.into_inner());
        match key {
            Some(key) => client_auth.insert(*id, key.public_key()),
            None => client_auth.remove(id),
        };
        Ok(())
    }
}

impl TcpTransport {
    async fn bind(
        &self,
        key: &IdentityKey,
        _port: u16,
        authorized: Option<&[ClientAuthPublicKey]>,
    ) -> Result<TcpServiceListener, TransportError> {
        let id = key.service_id();
        let addr = self
            .listen_addr
            .or_else(|| self.directory.get(&id))
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| TransportError::io("binding the listening socket", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| TransportError::io("reading the listening address", e))?;
        self.directory.restrict(&id, authorized);
        self.directory.insert(id, local);
        let status = match self.publish_delay {
            None => watch::Sender::new(ServiceStatus::Published),
            Some(delay) => {
                let status = watch::Sender::new(ServiceStatus::Publishing);
                let later = status.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    later.send_replace(ServiceStatus::Published);
                });
                status
            }
        };
        Ok(TcpServiceListener {
            listener,
            id,
            local,
            directory: self.directory.clone(),
            status,
            private: authorized.is_some(),
        })
    }
}

/// Incoming TCP connections for one service id. Dropping it closes the
/// socket and removes the id from the directory.
#[derive(Debug)]
pub struct TcpServiceListener {
    listener: TcpListener,
    id: ServiceId,
    local: SocketAddr,
    directory: Directory,
    /// Always [`ServiceStatus::Published`]: the socket is bound.
    status: watch::Sender<ServiceStatus>,
    /// Published with [`Transport::listen_private`].
    private: bool,
}

impl TcpServiceListener {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Listener for TcpServiceListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> Result<TcpStream, TransportError> {
        let (stream, _) = self
            .listener
            .accept()
            .await
            .map_err(|e| TransportError::io("accepting a connection", e))?;
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
        self.directory.restrict(&self.id, Some(authorized));
        Ok(())
    }
}

impl Drop for TcpServiceListener {
    fn drop(&mut self) {
        self.directory.remove_if(&self.id, self.local);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn directory_file() {
        let text = "# peers\nricochet:mi5b77eu3d4o3tk6 127.0.0.1:9000\n\n25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid [::1]:9001 # v3\n";
        let directory = Directory::parse(text).unwrap();
        let v2: ServiceId = "mi5b77eu3d4o3tk6".parse().unwrap();
        assert_eq!(directory.get(&v2), Some("127.0.0.1:9000".parse().unwrap()));
        let err = Directory::parse("ricochet:nope 1.2.3.4:5").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(Directory::parse("mi5b77eu3d4o3tk6 not-an-address").is_err());
        assert!(Directory::parse("mi5b77eu3d4o3tk6 127.0.0.1:1 extra").is_err());
    }
}
