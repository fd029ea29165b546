//! The client's error type.

use std::path::PathBuf;

use ricochet_identity::{Generation, KeyError, RicochetId};
use ricochet_proto::message::NicknameError;
use ricochet_proto::message::contact_request::ContactRequestError;
use ricochet_transport::TransportError;

use crate::import::ImportError;
use crate::model::TransferId;

/// What can go wrong when starting or using a [`crate::Client`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The profile directory could not be created or protected.
    #[error("cannot prepare the profile directory {}", path.display())]
    ProfileDirectory {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The profile database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An identity key could not be made or loaded.
    #[error("the identity key could not be made or loaded")]
    Identity(#[from] KeyError),
    /// The builder was given a key of a generation the profile already has
    /// another key for.
    #[error("the profile already has a different {generation} identity")]
    IdentityMismatch {
        /// The generation of the key.
        generation: Generation,
    },
    /// A Ricochet Refresh profile could not be imported.
    #[error("cannot import the Ricochet Refresh profile")]
    Import(#[from] ImportError),
    /// No transport was configured.
    #[error("no transport: call ClientBuilder::transport before start")]
    NoTransport,
    /// The transport failed to start or to publish our onion service.
    #[error("the transport failed")]
    Transport(#[from] TransportError),
    /// Our onion service went down and will not come back by itself (Tor
    /// exited or the service broke); restart the client.
    #[error("our onion service {id} is down: {reason}")]
    ServiceFailed {
        /// Our id whose service it is.
        id: Box<RicochetId>,
        /// What the transport reported.
        reason: String,
    },
    /// The id is not in the contact list.
    #[error("{id} is not in the contact list")]
    NoSuchContact {
        /// The id.
        id: Box<RicochetId>,
    },
    /// The id is already a contact.
    #[error("{id} is already a contact")]
    AlreadyContact {
        /// The id.
        id: Box<RicochetId>,
    },
    /// The id is one of our own.
    #[error("{id} is our own id")]
    OwnId {
        /// The id.
        id: Box<RicochetId>,
    },
    /// The id is blocked.
    #[error("{id} is blocked; unblock it first")]
    Blocked {
        /// The id.
        id: Box<RicochetId>,
    },
    /// A contact of this generation needs an identity of the same generation.
    #[error(
        "talking to a {generation} contact needs a {generation} identity of our own; \
         enable it with ClientBuilder::v2_identity"
    )]
    NoIdentityFor {
        /// The contact's generation.
        generation: Generation,
    },
    /// There is no pending contact request from this id.
    #[error("there is no contact request from {id}")]
    NoSuchRequest {
        /// The id.
        id: Box<RicochetId>,
    },
    /// The contact request breaks the limits of spec §8.1.
    #[error("invalid contact request")]
    BadContactRequest(#[from] ContactRequestError),
    /// A nickname breaks the rules of spec §8.1.
    #[error("invalid nickname")]
    BadNickname(#[from] NicknameError),
    /// An empty chat message.
    #[error("the message is empty")]
    EmptyMessage,
    /// We can only message contacts and ids we sent a request to.
    #[error("{id} is not a contact (its status is {status})")]
    NotMessageable {
        /// The id.
        id: Box<RicochetId>,
        /// Its status, for people.
        status: &'static str,
    },
    /// File transfer exists only in protocol 3.
    #[error("file transfer needs a protocol 3 (v3) contact; {id} is a v2 contact")]
    FileTransferUnsupported {
        /// The contact.
        id: Box<RicochetId>,
    },
    /// Files go only to contacts that are online now.
    #[error("{id} is offline; files can only be sent to online contacts")]
    ContactOffline {
        /// The contact.
        id: Box<RicochetId>,
    },
    /// A file could not be read or is not sendable.
    #[error("cannot send {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why, for people.
        reason: String,
    },
    /// The destination of a download already exists.
    #[error("{path} already exists; choose another destination")]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// No such file transfer is waiting for this call.
    #[error("file transfer {} is not waiting for this", .0.get())]
    NoSuchTransfer(TransferId),
    /// The client has shut down.
    #[error("the client has shut down")]
    Shutdown,
}

/// An error of the profile database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Another client (in this or another process) has this profile open.
    #[error(
        "the profile database {} is in use by another client; close it before opening the profile again",
        path.display()
    )]
    ProfileInUse {
        /// The database file.
        path: PathBuf,
    },
    /// The profile was last written by a newer version of this software,
    /// whose schema this version does not know.
    #[error(
        "the profile database has schema version {found}, but this version of the software \
         supports at most {supported}; use a newer version to open it"
    )]
    NewerSchema {
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The database holds something that does not parse (a bad id, an
    /// unknown state, an invalid key), or refers to something missing.
    #[error("the profile database holds invalid data: {what}")]
    Corrupt {
        /// What is wrong (never contains key material).
        what: String,
    },
    /// The database file could not be created or its permissions not set.
    #[error("could not access the profile database {}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The disk holding the profile is full: nothing of the failed write
    /// was stored (and nothing of it acknowledged; peers send it again).
    /// The client carries on by itself once there is room again
    /// ([`crate::Event::DiskSpaceFreed`]).
    #[error(transparent)]
    DiskFull(DiskFull),
    /// SQLite reported an error (a damaged file, a failed write, …).
    #[error("the profile database reported an error")]
    Database(#[from] rusqlite::Error),
}

impl StorageError {
    /// The full disk this error reports, if it is one.
    pub fn disk_full(&self) -> Option<&DiskFull> {
        match self {
            Self::DiskFull(full) => Some(full),
            _ => None,
        }
    }
}

/// A write failed because the filesystem had no room: where, and how much.
///
/// Reported by [`StorageError::DiskFull`] (the profile database),
/// [`crate::Event::DiskFull`] (once, until [`crate::Event::DiskSpaceFreed`])
/// and [`crate::TransferFailure::DiskFull`] (a download).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error(
    "the disk holding {} is full ({} more needed{}); free some space",
    path.display(),
    Bytes(*needed),
    available.map(|free| format!(", {} free", Bytes(free))).unwrap_or_default()
)]
pub struct DiskFull {
    /// The file that could not be written (the profile database, or a
    /// download's part file).
    pub path: PathBuf,
    /// The room the write needed, in bytes: for a download what was left
    /// of the file; for the database an estimate of the failed write (at
    /// least this much).
    pub needed: u64,
    /// What the filesystem had left when the write failed, in bytes (if
    /// the platform says).
    pub available: Option<u64>,
}

impl DiskFull {
    /// A full disk at `path` that needed `needed` bytes; how much it has
    /// left is asked of the filesystem (a blocking call).
    pub(crate) fn at(path: PathBuf, needed: u64) -> Self {
        let available = crate::durable::available_space(&path)
            .or_else(|| path.parent().and_then(crate::durable::available_space));
        Self {
            path,
            needed,
            available,
        }
    }

    /// Whether the filesystem has room for what failed now (a blocking
    /// call). Unknown counts as yes: the work is tried again, and fails
    /// again if there is still none.
    pub(crate) fn has_room(&self) -> bool {
        let dir = self.path.parent().unwrap_or(&self.path);
        crate::durable::available_space(dir).is_none_or(|free| free >= self.needed)
    }
}

/// Bytes for people: `812 bytes`, `4.0 KiB`, `1.5 MiB`, `2.3 GiB`.
struct Bytes(u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if self.0 < 1024 {
            return write!(f, "{} bytes", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// Whether an IO error says the filesystem is full (`ENOSPC`, or a quota).
pub(crate) fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
