//! Reading a Ricochet Refresh 3.x profile (`ricochet.json`), so that its
//! user keeps their id and contacts ([`crate::ClientBuilder::import_refresh_profile`]).
//!
//! Refresh 3.0.x keeps everything in one JSON file in its profile directory
//! (`~/.config/ricochet-refresh/ricochet.json` on Linux):
//!
//! ```json
//! {
//!     "identity": { "privateKey": "ED25519-V3:<base64 of the 64-byte expanded key>" },
//!     "users": {
//!         "<56-character v3 id>": { "nickname": "alice", "type": "allowed" },
//!         "<id>": { "type": "requesting" }
//!     },
//!     "tor": { … }, "ui": { … }
//! }
//! ```
//!
//! `type` is `allowed` (a contact), `pending` (we asked), `rejected` (it
//! refused us), `requesting` (it asked us) or `blocked`. Refresh keeps no
//! message history and no request messages, so there are none to import.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use ricochet_identity::{Generation, IdentityKey, KeyError, ServiceId, ServiceIdError};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::core::book::unique_nickname;
use crate::core::io::{ContactRow, ContactState};

/// The file name of a Refresh profile inside its directory.
pub(crate) const REFRESH_PROFILE_FILE: &str = "ricochet.json";

/// The lock file a running Refresh holds beside its profile (a `QLockFile`;
/// Qt keeps an `flock` on it while the application runs).
const REFRESH_LOCK_FILE: &str = "ricochet.json.lock";

/// Largest profile file read: a profile with thousands of contacts is a few
/// hundred KiB.
const MAX_PROFILE_LEN: u64 = 16 * 1024 * 1024;

/// Why a Ricochet Refresh profile could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read the Ricochet Refresh profile {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any profile.
    #[error("{} is too large to be a Ricochet Refresh profile", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not JSON, or not shaped like a Refresh profile. (Only
    /// the position is given: the text may hold the identity key.)
    #[error(
        "the Ricochet Refresh profile is not valid JSON of the expected shape \
         (line {line}, column {column})"
    )]
    NotAProfile {
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
    },
    /// A profile of Ricochet or Ricochet Refresh 1.x (v2 onion ids), which
    /// Refresh 3.x does not read either.
    #[error(
        "this is a profile of Ricochet or Ricochet Refresh 1.x (v2 onion ids); \
         only Ricochet Refresh 3.x profiles can be imported"
    )]
    OldFormat,
    /// The profile has no identity key yet.
    #[error(
        "the profile has no identity key (identity.privateKey); \
         Ricochet Refresh writes it the first time it connects to Tor"
    )]
    NoIdentity,
    /// The identity key does not parse.
    #[error("the profile's identity key (identity.privateKey) is not a valid ED25519-V3 key")]
    BadKey(#[source] KeyError),
    /// A contact's id is not a valid v3 id.
    #[error("the contact {id:?} of the profile is not a valid v3 id")]
    BadContactId {
        /// The id as written in the profile.
        id: String,
        /// Why.
        #[source]
        source: ServiceIdError,
    },
    /// A contact of a type Refresh does not write.
    #[error(
        "the contact {id} of the profile has the unknown type {kind:?} \
         (expected allowed, pending, rejected, requesting or blocked)"
    )]
    UnknownType {
        /// The contact.
        id: String,
        /// The type found (empty if there was none).
        kind: String,
    },
    /// Ricochet Refresh is running on this profile: it holds the profile's
    /// lock file. A profile that is being written is not imported.
    #[error(
        "Ricochet Refresh is running on this profile (it holds {}); quit it, then import",
        path.display()
    )]
    RefreshRunning {
        /// Refresh's lock file (`ricochet.json.lock`).
        path: PathBuf,
    },
    /// Our profile already has another identity.
    #[error(
        "the profile already has the identity {ours}; import the Ricochet Refresh profile \
         (identity {theirs}) into a new profile directory"
    )]
    ProfileInUse {
        /// The identity our profile has.
        ours: Box<crate::RicochetId>,
        /// The identity of the Refresh profile.
        theirs: Box<crate::RicochetId>,
    },
}

/// What a Refresh profile holds that we keep.
#[derive(Debug)]
pub(crate) struct RefreshProfile {
    pub(crate) identity: IdentityKey,
    /// Contacts, our pending and rejected requests.
    pub(crate) contacts: Vec<ContactRow>,
    /// Requests waiting for our answer.
    pub(crate) requests: Vec<ServiceId>,
    pub(crate) blocked: Vec<ServiceId>,
}

#[derive(Deserialize)]
struct File {
    identity: Option<Identity>,
    users: Option<std::collections::BTreeMap<String, User>>,
    /// Ricochet 1.x kept contacts here.
    contacts: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "privateKey")]
    private_key: Option<Secret>,
    /// Ricochet 1.x kept its RSA key here.
    #[serde(rename = "serviceKey")]
    service_key: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct User {
    nickname: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A string that is wiped when dropped.
struct Secret(Zeroizing<String>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(Zeroizing::new(text)))
    }
}

impl RefreshProfile {
    /// Reads the profile at `path`: Refresh's profile directory, or its
    /// `ricochet.json`. Blocking: call it on a thread of its own.
    pub(crate) fn read(path: &Path, own_nickname: &str) -> Result<Self, ImportError> {
        let file = if path.is_dir() {
            path.join(REFRESH_PROFILE_FILE)
        } else {
            path.to_owned()
        };
        let read_error = |source| ImportError::Read {
            path: file.clone(),
            source,
        };
        let lock = file.with_file_name(REFRESH_LOCK_FILE);
        if refresh_holds(&lock) {
            return Err(ImportError::RefreshRunning { path: lock });
        }
        // Bounded by what is read, not by what the file says it holds; the
        // buffer is sized once, so that no copy of the key is left behind
        // by a reallocation.
        let opened = std::fs::File::open(&file).map_err(read_error)?;
        let hint = opened
            .metadata()
            .map_or(0, |m| m.len())
            .min(MAX_PROFILE_LEN)
            + 1;
        let mut text = Zeroizing::new(String::with_capacity(usize::try_from(hint).unwrap_or(0)));
        opened
            .take(MAX_PROFILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_PROFILE_LEN {
            return Err(ImportError::TooLarge { path: file });
        }
        Self::parse(&text, own_nickname)
    }

    /// Parses the text of a `ricochet.json`. Our pending requests will go
    /// out with `own_nickname` (and, like Refresh's, no message).
    pub(crate) fn parse(text: &str, own_nickname: &str) -> Result<Self, ImportError> {
        let file: File = serde_json::from_str(text).map_err(|e| ImportError::NotAProfile {
            line: e.line(),
            column: e.column(),
        })?;
        // Refresh writes an empty key until it has one.
        let key = file
            .identity
            .as_ref()
            .and_then(|i| i.private_key.as_ref())
            .filter(|Secret(blob)| !blob.trim().is_empty());
        let Some(Secret(blob)) = key else {
            let old = file.contacts.is_some()
                || file
                    .identity
                    .as_ref()
                    .is_some_and(|i| i.service_key.is_some());
            return Err(if old {
                ImportError::OldFormat
            } else {
                ImportError::NoIdentity
            });
        };
        let identity = IdentityKey::from_tor_key_blob(blob).map_err(ImportError::BadKey)?;
        if identity.generation() != Generation::V3 {
            return Err(ImportError::BadKey(KeyError::UnrecognizedFormat));
        }
        let mut profile = Self {
            identity,
            contacts: Vec::new(),
            requests: Vec::new(),
            blocked: Vec::new(),
        };
        let mut rows = Vec::new();
        for (text_id, user) in file.users.unwrap_or_default() {
            let id = ServiceId::from_canonical(&text_id).map_err(|source| {
                ImportError::BadContactId {
                    id: text_id.clone(),
                    source,
                }
            })?;
            if id == profile.identity.service_id() {
                tracing::warn!("the Refresh profile lists its own id as a contact; skipped");
                continue;
            }
            if id.generation() != Generation::V3 {
                return Err(ImportError::BadContactId {
                    id: text_id,
                    source: ServiceIdError::WrongGeneration {
                        expected: Generation::V3,
                        found: id.generation(),
                    },
                });
            }
            let state = match user.kind.as_deref() {
                Some("allowed") => ContactState::Contact,
                Some("pending") => ContactState::RequestPending,
                Some("rejected") => ContactState::Rejected,
                Some("requesting") => {
                    profile.requests.push(id);
                    continue;
                }
                Some("blocked") => {
                    profile.blocked.push(id);
                    continue;
                }
                other => {
                    return Err(ImportError::UnknownType {
                        id: text_id,
                        kind: other.unwrap_or_default().to_owned(),
                    });
                }
            };
            rows.push((state, id, user.nickname.unwrap_or_default()));
        }
        // Nicknames are unique here, not in Refresh: contacts keep theirs
        // first, then our requests, then those who refused us.
        rows.sort_by_key(|(state, id, _)| {
            let rank = match state {
                ContactState::Contact => 0,
                ContactState::RequestPending => 1,
                _ => 2,
            };
            (rank, id.onion_hostname())
        });
        let mut names = HashSet::new();
        for (state, id, wanted) in rows {
            let nickname = unique_nickname(&wanted, &id, |name| names.contains(name));
            names.insert(nickname.clone());
            let pending = state == ContactState::RequestPending;
            profile.contacts.push(ContactRow {
                id,
                nickname,
                state,
                request_nickname: if pending {
                    own_nickname.to_owned()
                } else {
                    String::new()
                },
                request_message: String::new(),
                unanswered_requests: 0,
            });
        }
        Ok(profile)
    }
}

/// Whether a running Refresh holds the lock file at `path`: someone holds
/// an `flock` on it. A lock file that nobody holds is stale (Refresh
/// exited without removing it).
#[cfg(unix)]
fn refresh_holds(path: &Path) -> bool {
    use rustix::fs::{FlockOperation, flock};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // Closing the file releases our lock, if we got it.
    flock(&file, FlockOperation::NonBlockingLockShared)
        .is_err_and(|error| error == rustix::io::Errno::WOULDBLOCK)
}

/// Elsewhere Qt locks differently; a lock file that is there counts.
#[cfg(not(unix))]
fn refresh_holds(path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod test {
    use super::*;

    #[test]
    fn errors_never_show_the_key() {
        let text = r#"{"identity": {"privateKey": "ED25519-V3:c2VjcmV0"}, "users": 7}"#;
        let error = RefreshProfile::parse(text, "").unwrap_err();
        assert!(matches!(error, ImportError::NotAProfile { .. }), "{error}");
        assert!(!format!("{error:?}").contains("c2VjcmV0"));
        let text = r#"{"identity": {"privateKey": "ED25519-V3:c2VjcmV0"}}"#;
        let error = RefreshProfile::parse(text, "").unwrap_err();
        assert!(matches!(error, ImportError::BadKey(_)), "{error}");
        assert!(!format!("{error:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn our_own_id_among_the_contacts_is_skipped() {
        let key = IdentityKey::generate(Generation::V3).unwrap();
        let own = key.service_id().onion_hostname();
        let own = own.trim_end_matches(".onion");
        let other = IdentityKey::generate(Generation::V3).unwrap().service_id();
        let other = other.onion_hostname();
        let other = other.trim_end_matches(".onion");
        let text = serde_json::json!({
            "identity": {"privateKey": key.to_tor_key_blob().unwrap().as_str()},
            "users": {
                own: {"nickname": "me", "type": "allowed"},
                other: {"nickname": "friend", "type": "allowed"},
            },
        })
        .to_string();
        let profile = RefreshProfile::parse(&text, "").unwrap();
        let ids: Vec<String> = profile.contacts.iter().map(|c| c.id.to_string()).collect();
        assert_eq!(ids, [other.to_owned()]);
    }

    #[test]
    fn old_and_empty_profiles_are_told_apart() {
        let old = r#"{"identity": {"serviceKey": "MIIC"}, "contacts": {"1": {}}}"#;
        assert!(matches!(
            RefreshProfile::parse(old, ""),
            Err(ImportError::OldFormat)
        ));
        assert!(matches!(
            RefreshProfile::parse(r#"{"ui": {}}"#, ""),
            Err(ImportError::NoIdentity)
        ));
        // Refresh writes an empty key until it has one.
        assert!(matches!(
            RefreshProfile::parse(r#"{"identity": {"privateKey": ""}}"#, ""),
            Err(ImportError::NoIdentity)
        ));
    }
}
