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

/// Why Tor could not reach an onion service, when it says: C tor's
/// extended SOCKS replies (`SocksPort … ExtendedErrors`, tor's
/// `socks-extensions.txt`, codes `0xF0`–`0xF7`) and arti's error kinds. The
/// message is a sentence a user can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum OnionFailure {
    /// `0xF0`: no descriptor of the service was found.
    #[error("its onion service is not published (the contact is offline, or started a moment ago)")]
    NotFound,
    /// `0xF1`: the service's descriptor could not be parsed or verified.
    #[error("its onion service published a descriptor that Tor cannot read")]
    DescriptorInvalid,
    /// `0xF2`: every introduction point failed.
    #[error(
        "no introduction point answered (the contact went offline a moment ago, or its Tor \
         cannot reach the network)"
    )]
    IntroductionFailed,
    /// `0xF3`: the rendezvous failed.
    #[error("the rendezvous with its onion service failed; trying again usually works")]
    RendezvousFailed,
    /// `0xF4`: the service is for authorised clients only, and we hold no
    /// key to it.
    #[error(
        "it needs a key: this contact's service is for authorised clients only (private \
         mode), and we hold no key to it"
    )]
    ClientAuthMissing,
    /// `0xF5`: our key to the service is not accepted.
    #[error(
        "our key to its service is not accepted (the contact changed or withdrew it, in \
         private mode)"
    )]
    ClientAuthWrong,
    /// `0xF6`: Tor finds the address invalid.
    #[error("Tor says the onion address is invalid")]
    BadAddress,
    /// `0xF7`: the introduction timed out.
    #[error("the introduction timed out (the contact's Tor is slow, or just went offline)")]
    IntroductionTimedOut,
}

impl OnionFailure {
    /// The failure of a SOCKS reply code of C tor's `ExtendedErrors`, if
    /// it is one of them.
    pub fn from_socks_reply(code: u8) -> Option<Self> {
        Some(match code {
            0xF0 => Self::NotFound,
            0xF1 => Self::DescriptorInvalid,
            0xF2 => Self::IntroductionFailed,
            0xF3 => Self::RendezvousFailed,
            0xF4 => Self::ClientAuthMissing,
            0xF5 => Self::ClientAuthWrong,
            0xF6 => Self::BadAddress,
            0xF7 => Self::IntroductionTimedOut,
            _ => return None,
        })
    }
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// See [`ErrorKind::NotBootstrapped`].
    #[error("not connected to the Tor network yet")]
    NotBootstrapped,
    /// See [`ErrorKind::Unreachable`].
    #[error("{id}.onion is unreachable{}", why.map(|why| format!(": {why}")).unwrap_or_default())]
    Unreachable {
        /// The service we tried to reach (boxed: ids are large, errors
        /// should not be).
        id: Box<ServiceId>,
        /// Why, in Tor's terms, when Tor said.
        why: Option<OnionFailure>,
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

    /// Why Tor could not reach the service, when it said
    /// ([`TransportError::Unreachable`]).
    pub fn onion_failure(&self) -> Option<OnionFailure> {
        match self {
            Self::Unreachable { why, .. } => *why,
            Self::ControlPort { source, .. } => source.onion_failure(),
            _ => None,
        }
    }

    pub(crate) fn unreachable(
        id: ServiceId,
        why: Option<OnionFailure>,
        source: Option<BoxError>,
    ) -> Self {
        Self::Unreachable {
            id: Box::new(id),
            why,
            source,
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
