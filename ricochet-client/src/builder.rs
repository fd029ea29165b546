//! [`ClientBuilder`]: where a client's profile lives, how it reaches Tor,
//! its limits; and starting it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ricochet_identity::{Generation, IdentityKey};
use ricochet_transport::{BootstrapStatus, Transport};
use tokio::sync::watch;

use crate::client::{Client, Inner};
use crate::config::{Limits, ReconnectPolicy};
use crate::driver;
use crate::erased::DynTransport;
use crate::error::ClientError;
use crate::event::Events;

/// Sets up a [`Client`]: where its profile lives, how it reaches Tor, its
/// limits.
///
/// ```no_run
/// # async fn run() -> Result<(), ricochet_client::ClientError> {
/// use ricochet_client::ClientBuilder;
/// use ricochet_client::transport::tcp::{Directory, TcpTransport};
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
    import_refresh: Option<PathBuf>,
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
    pub fn new(profile_dir: impl AsRef<Path>) -> Self {
        Self {
            profile: profile_dir.as_ref().to_owned(),
            transport: None,
            limits: Limits::default(),
            reconnect: ReconnectPolicy::default(),
            v2_identity: false,
            keys: Vec::new(),
            nickname: String::new(),
            import_refresh: None,
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

    /// Takes the identity and contacts of a Ricochet Refresh 3.x profile
    /// (its profile directory, e.g. `~/.config/ricochet-refresh`, or the
    /// `ricochet.json` in it) into this profile when it starts, so that
    /// the user keeps their id and contact list: contacts, requests they
    /// sent (sent again, without a message, as Refresh does), requests
    /// waiting for their answer, and blocked ids. Refresh keeps no message
    /// history, so there is none to take.
    ///
    /// The profile must be new. Starting again with the same import does
    /// nothing more; a profile with another identity fails with
    /// [`crate::ImportError::ProfileInUse`]. The Refresh profile is only
    /// read; do not run both clients with the same identity at once (each
    /// would take the other's connections).
    pub fn import_refresh_profile(mut self, path: impl AsRef<Path>) -> Self {
        self.import_refresh = Some(path.as_ref().to_owned());
        self
    }

    /// Opens the profile, brings the transport up, asks it to publish our
    /// onion service(s), and starts connecting to contacts.
    ///
    /// It returns once the transport has accepted the service, which is
    /// before peers can reach it: Tor still has to build introduction
    /// circuits and upload the service's descriptor (seconds, up to a
    /// minute or two). [`Client::published`] waits for that, and
    /// [`crate::Event::ServiceStatusChanged`] reports it. Dialling out
    /// works at once.
    pub async fn start(self) -> Result<(Client, Events), ClientError> {
        let transport = self.transport.ok_or(ClientError::NoTransport)?;
        ricochet_proto::message::validate_nickname(&self.nickname)?;
        let started = driver::start(driver::StartConfig {
            profile: self.profile,
            transport,
            limits: self.limits,
            reconnect: self.reconnect,
            v2_identity: self.v2_identity,
            keys: self.keys,
            own_nickname: self.nickname,
            import_refresh: self.import_refresh,
        })
        .await?;
        let client = Client {
            inner: Arc::new(Inner {
                calls: started.calls,
                ids: started.ids,
                services: started.services,
                next_transfer: started.transfer_ids,
            }),
        };
        let events = Events {
            receiver: started.notices,
            client: client.downgrade(),
        };
        Ok((client, events))
    }
}
