//! Type erasure of [`ricochet_transport::Transport`], so that [`crate::Client`]
//! is one type whatever backend the application picks at run time (direct
//! TCP, a system tor, embedded arti, or a wrapper of one of them).
//!
//! It costs one allocation per dial and per accepted stream, which is
//! nothing next to a Tor circuit.

use std::future::Future;
use std::pin::Pin;

use ricochet_identity::{ClientAuthPublicKey, ClientAuthSecretKey, IdentityKey, ServiceId};
use ricochet_transport::{
    BootstrapStatus, Listener, RICOCHET_PORT, ServiceStatus, Transport, TransportError,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// A byte stream to or from a peer.
pub(crate) trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

pub(crate) type BoxStream = Box<dyn PeerStream>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe face of a [`Transport`].
pub(crate) trait DynTransport: Send + Sync {
    fn bootstrap(&self) -> BoxFuture<'_, Result<(), TransportError>>;
    fn bootstrap_status(&self) -> watch::Receiver<BootstrapStatus>;
    fn connect<'a>(&'a self, id: &'a ServiceId)
    -> BoxFuture<'a, Result<BoxStream, TransportError>>;
    fn listen<'a>(
        &'a self,
        key: &'a IdentityKey,
    ) -> BoxFuture<'a, Result<Box<dyn DynListener>, TransportError>>;
    fn listen_private<'a>(
        &'a self,
        key: &'a IdentityKey,
        authorized: &'a [ClientAuthPublicKey],
    ) -> BoxFuture<'a, Result<Box<dyn DynListener>, TransportError>>;
    fn set_client_auth<'a>(
        &'a self,
        id: &'a ServiceId,
        key: Option<&'a ClientAuthSecretKey>,
    ) -> BoxFuture<'a, Result<(), TransportError>>;
}

/// The object-safe face of a [`Listener`].
pub(crate) trait DynListener: Send {
    fn accept(&mut self) -> BoxFuture<'_, Result<BoxStream, TransportError>>;
    fn status(&self) -> watch::Receiver<ServiceStatus>;
    fn set_authorized<'a>(
        &'a mut self,
        authorized: &'a [ClientAuthPublicKey],
    ) -> BoxFuture<'a, Result<(), TransportError>>;
}

impl<T: Transport> DynTransport for T {
    fn bootstrap(&self) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(Transport::bootstrap(self))
    }

    fn bootstrap_status(&self) -> watch::Receiver<BootstrapStatus> {
        Transport::bootstrap_status(self)
    }

    fn connect<'a>(
        &'a self,
        id: &'a ServiceId,
    ) -> BoxFuture<'a, Result<BoxStream, TransportError>> {
        Box::pin(async move {
            let stream = Transport::connect(self, id, RICOCHET_PORT).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }

    fn listen<'a>(
        &'a self,
        key: &'a IdentityKey,
    ) -> BoxFuture<'a, Result<Box<dyn DynListener>, TransportError>> {
        Box::pin(async move {
            let listener = Transport::listen(self, key, RICOCHET_PORT).await?;
            Ok(Box::new(listener) as Box<dyn DynListener>)
        })
    }

    fn listen_private<'a>(
        &'a self,
        key: &'a IdentityKey,
        authorized: &'a [ClientAuthPublicKey],
    ) -> BoxFuture<'a, Result<Box<dyn DynListener>, TransportError>> {
        Box::pin(async move {
            let listener = Transport::listen_private(self, key, RICOCHET_PORT, authorized).await?;
            Ok(Box::new(listener) as Box<dyn DynListener>)
        })
    }

    fn set_client_auth<'a>(
        &'a self,
        id: &'a ServiceId,
        key: Option<&'a ClientAuthSecretKey>,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(Transport::set_client_auth(self, id, key))
    }
}

impl<L: Listener> DynListener for L {
    fn accept(&mut self) -> BoxFuture<'_, Result<BoxStream, TransportError>> {
        Box::pin(async move {
            let stream = Listener::accept(self).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }

    fn status(&self) -> watch::Receiver<ServiceStatus> {
        Listener::status(self)
    }

    fn set_authorized<'a>(
        &'a mut self,
        authorized: &'a [ClientAuthPublicKey],
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(Listener::set_authorized(self, authorized))
    }
}
