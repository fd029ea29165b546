#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

#[cfg(feature = "arti")]
pub mod arti;
pub mod censorship;
#[cfg(feature = "tor-control")]
pub mod control;
mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(feature = "tcp")]
pub mod tcp;

use std::future::Future;

use ricochet_identity::{ClientAuthPublicKey, ClientAuthSecretKey, IdentityKey, ServiceId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

pub use error::{ErrorKind, OnionFailure, TransportError};
pub use ricochet_identity::ErrorChain;

/// The onion-service port every Ricochet client listens on (spec §2).
pub const RICOCHET_PORT: u16 = 9878;

/// How far a transport has come in connecting to the Tor network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapStatus {
    /// 0 to 100.
    pub percent: u8,
    /// What it is doing, for people (e.g. "Loading relay descriptors").
    pub phase: String,
}

impl BootstrapStatus {
    /// Whether the transport is ready to dial and publish.
    pub fn is_ready(&self) -> bool {
        self.percent >= 100
    }

    /// The status of a transport that needs no bootstrapping.
    pub fn ready() -> Self {
        Self {
            percent: 100,
            phase: "done".to_owned(),
        }
    }

    /// The status before anything happened.
    pub fn starting() -> Self {
        Self {
            percent: 0,
            phase: "starting".to_owned(),
        }
    }
}

/// Whether peers can reach one of our onion services.
///
/// "Published" means what Tor means: the service's descriptor has been
/// uploaded to the hidden-service directories, so a peer that dials now
/// finds it. Before that, dialling it fails as if we were offline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceStatus {
    /// Tor is building introduction circuits and uploading the descriptor
    /// (usually seconds; up to a minute or two on a slow network). Peers
    /// that dial now most likely fail.
    Publishing,
    /// The descriptor is uploaded: peers can reach us.
    Published,
    /// Tor reports a problem it is trying to recover from (a failed
    /// upload, lost introduction points); peers may fail to reach us.
    Degraded {
        /// What Tor reported, for people.
        reason: String,
    },
    /// The service is down and will not come back by itself (Tor exited,
    /// the control connection was lost, the service broke).
    Failed {
        /// Why, for people.
        reason: String,
    },
    /// The service is not running because its owner took it down or has
    /// not started it: a listener never reports this, but a client that
    /// chooses which services run does (a public service while contact
    /// requests are off, a private one without authorised clients).
    Stopped,
}

impl ServiceStatus {
    /// Whether peers can reach the service now.
    pub fn is_published(&self) -> bool {
        matches!(self, Self::Published)
    }
}

impl std::fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Publishing => f.write_str("publishing"),
            Self::Published => f.write_str("published"),
            Self::Degraded { reason } => write!(f, "degraded ({reason})"),
            Self::Failed { reason } => write!(f, "failed ({reason})"),
            Self::Stopped => f.write_str("stopped"),
        }
    }
}

/// A way of reaching Ricochet peers: dial their onion services and publish
/// ours.
///
/// Every backend passes the same conformance suite (`tests/conformance.rs`).
pub trait Transport: Send + Sync + 'static {
    /// A connection to or from a peer.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Incoming connections to one published service.
    type Listener: Listener<Stream = Self::Stream>;

    /// Connects to the network; returns once dialling and publishing can
    /// work. Progress is reported through [`Transport::bootstrap_status`].
    fn bootstrap(&self) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// The bootstrap progress, as it changes (a UI can show it).
    fn bootstrap_status(&self) -> watch::Receiver<BootstrapStatus>;

    /// Opens a stream to `port` of the onion service `id`.
    fn connect(
        &self,
        id: &ServiceId,
        port: u16,
    ) -> impl Future<Output = Result<Self::Stream, TransportError>> + Send;

    /// Publishes the onion service of `key` on `port`. The service stays up
    /// until the listener is dropped.
    fn listen(
        &self,
        key: &IdentityKey,
        port: u16,
    ) -> impl Future<Output = Result<Self::Listener, TransportError>> + Send;

    /// Publishes the onion service of `key` on `port` for the clients of
    /// `authorized` only (v3 client authorization; "restricted discovery"
    /// in arti): its descriptor is encrypted to their keys, so to everyone
    /// else it looks offline. `authorized` must not be empty. Change the
    /// set with [`Listener::set_authorized`].
    ///
    /// The default refuses with [`ErrorKind::Configuration`]: a backend
    /// (or wrapper) that supports it says so by overriding it.
    fn listen_private(
        &self,
        key: &IdentityKey,
        port: u16,
        authorized: &[ClientAuthPublicKey],
    ) -> impl Future<Output = Result<Self::Listener, TransportError>> + Send {
        let _ = (key, port, authorized);
        std::future::ready(Err(TransportError::config(
            "this transport cannot publish services for authorised clients only",
        )))
    }

    /// Uses `key` to reach the service `id` from now on (it decrypts the
    /// descriptor of a service published with
    /// [`Transport::listen_private`]); `None` forgets it. The default
    /// refuses, as for `listen_private`.
    fn set_client_auth(
        &self,
        id: &ServiceId,
        key: Option<&ClientAuthSecretKey>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        let _ = (id, key);
        std::future::ready(Err(TransportError::config(
            "this transport cannot use client authorization",
        )))
    }
}

/// Incoming streams to one published onion service; dropping it takes the
/// service down.
pub trait Listener: Send + 'static {
    /// A connection from a peer.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next incoming stream.
    fn accept(&mut self) -> impl Future<Output = Result<Self::Stream, TransportError>> + Send;

    /// The service this listener publishes.
    fn service_id(&self) -> ServiceId;

    /// Whether the service is published, as it changes: it starts as
    /// [`ServiceStatus::Publishing`] and becomes
    /// [`ServiceStatus::Published`] once Tor has uploaded its descriptor.
    fn status(&self) -> watch::Receiver<ServiceStatus>;

    /// Replaces the authorised clients of a service published with
    /// [`Transport::listen_private`] (not empty). It takes effect with
    /// the next descriptor; a client removed may still reach the service
    /// through introduction points it already knows. The status goes back
    /// to publishing until the new descriptor is uploaded. The default
    /// refuses, as `listen_private` does.
    fn set_authorized(
        &mut self,
        authorized: &[ClientAuthPublicKey],
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        let _ = authorized;
        std::future::ready(Err(TransportError::config(
            "this listener does not publish for authorised clients",
        )))
    }
}
