//! The one error type of every transport, with a kind to match on.

use std::time::Duration;

use ricochet_identity::{Generation, ServiceId};

/// A boxed error from a backend, kept as a source.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure a [`TransportError`] is, for callers that react to
/// classes of failure (retry later, tell the user, give up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The transport is not connected to the Tor network (yet).
    NotBootstrapped,
    /// The peer's onion service could not be reached (not published, offline).
    Unreachable,
    /// The peer's side refused the connection.
    Refused,
    /// Something took longer than allowed.
    TimedOut,
    /// This backend cannot handle that identity generation (e.g. v2 on arti).
    UnsupportedGeneration,
    /// A local input/output error.
    Io,
    /// The transport's configuration is wrong or incomplete.
    Configuration,
    /// Tor refused a request or answered something we do not understand.
    Tor,
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// See [`ErrorKind::NotBootstrapped`].
    #[error("not connected to the Tor network yet")]
    NotBootstrapped,
    /// See [`ErrorKind::Unreachable`].
    #[error("{id}.onion is unreachable")]
    Unreachable {
        /// The service we tried to reach (boxed: ids are large, errors
        /// should not be).
        id: Box<ServiceId>,
        /// What the backend reported, if anything.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Refused`].
    #[error("{id}.onion refused the connection")]
    Refused {
        /// The service we tried to reach.
        id: Box<ServiceId>,
        /// What the backend reported, if anything.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::TimedOut`].
    #[error("{what} timed out after {after:?}")]
    TimedOut {
        /// What we were waiting for.
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// See [`ErrorKind::UnsupportedGeneration`].
    #[error("the {backend} transport cannot handle {generation} identities: {reason}")]
    UnsupportedGeneration {
        /// The generation asked for.
        generation: Generation,
        /// The backend.
        backend: &'static str,
        /// Why not.
        reason: &'static str,
    },
    /// See [`ErrorKind::Io`].
    #[error("{context} failed")]
    Io {
        /// What we were doing.
        context: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// See [`ErrorKind::Configuration`].
    #[error("transport configuration: {reason}")]
    Configuration {
        /// What is wrong.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// Something failed while talking to tor's control port; the source
    /// says what, and its kind is the kind of this error.
    #[error("talking to tor's control port at {address} failed")]
    ControlPort {
        /// The control port (`127.0.0.1:9051`, `unix:/run/tor/control`).
        address: String,
        /// What failed.
        #[source]
        source: Box<Self>,
    },
    /// Tor could not reach the Tor network: it made no progress for
    /// `after` while reporting `problem`. Kind:
    /// [`ErrorKind::NotBootstrapped`].
    #[error(
        "cannot connect to the Tor network: {problem} (no progress for {after:?}){}",
        advice(entry, problem)
    )]
    BootstrapStalled {
        /// What Tor reported, in its words.
        problem: String,
        /// The bridge or proxy it was trying, as configured, if known.
        entry: Option<String>,
        /// How long it made no progress.
        after: Duration,
    },
    /// See [`ErrorKind::Tor`].
    #[error("tor: {what}")]
    Tor {
        /// What happened.
        what: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

/// What a user can do about a stalled bootstrap through `entry`.
fn advice(entry: &Option<String>, problem: &str) -> String {
    match entry {
        Some(entry) if problem.contains("authentication failed") => {
            format!("; tried {entry}: check its user name and password")
        }
        Some(entry) => {
            format!("; tried {entry}: it may be down or blocked, try another bridge or proxy")
        }
        None => String::new(),
    }
}

impl TransportError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotBootstrapped | Self::BootstrapStalled { .. } => ErrorKind::NotBootstrapped,
            Self::Unreachable { .. } => ErrorKind::Unreachable,
            Self::Refused { .. } => ErrorKind::Refused,
            Self::TimedOut { .. } => ErrorKind::TimedOut,
            Self::UnsupportedGeneration { .. } => ErrorKind::UnsupportedGeneration,
            Self::Io { .. } => ErrorKind::Io,
            Self::Configuration { .. } => ErrorKind::Configuration,
            Self::Tor { .. } => ErrorKind::Tor,
            Self::ControlPort { source, .. } => source.kind(),
        }
    }

    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        Self::Io { context, source }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Configuration {
            reason: reason.into(),
            source: None,
        }
    }

    /// The one check of an authorised set, for `listen_private` (`private`
    /// is true) and `set_authorized` (whether the listener came from
    /// `listen_private`): a service for authorised clients needs at least
    /// one (tor refuses `ADD_ONION` without, arti publishes nothing), and a
    /// service published for everyone stays so.
    pub(crate) fn check_authorized(
        private: bool,
        authorized: &[ricochet_identity::ClientAuthPublicKey],
    ) -> Result<(), Self> {
        if !private {
            return Err(Self::config(
                "this service was published for everyone (listen, not listen_private)",
            ));
        }
        if authorized.is_empty() {
            return Err(Self::config(
                "a service for authorised clients needs at least one client",
            ));
        }
        Ok(())
    }

    pub(crate) fn tor(what: impl Into<String>) -> Self {
        Self::Tor {
            what: what.into(),
            source: None,
        }
    }
}
