//! Store work that failed, and the full disk: what is tried again, when,
//! and what the application hears (issue 25: a full disk loses nothing and
//! is said once).
//!
//! Work that failed (an acknowledgement to record, an outbox to fill) is
//! tried again [`STORE_RETRY`] later. While the disk is full nothing is
//! tried but a check for room ([`StoreJob::CheckSpace`]) every
//! [`STORE_RETRY`]; once there is room, everything waiting goes at once.

use std::collections::BTreeSet;
use std::mem;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ricochet_identity::ServiceId;

use super::io::StoreJob;
use crate::error::DiskFull;

/// How long failed store work waits before it is tried again, and how
/// often a full disk is checked for room.
pub(crate) const STORE_RETRY: Duration = Duration::from_secs(2);

/// What is due at [`StoreRetry::deadline`].
#[derive(Debug)]
pub(crate) enum Due {
    /// Nothing (yet).
    Nothing,
    /// The disk is full: ask the store whether there is room now.
    CheckSpace(DiskFull),
    /// Try this work again, and fill these contacts' outboxes.
    Retry {
        jobs: Vec<StoreJob>,
        refetch: BTreeSet<ServiceId>,
    },
}

/// Failed store work and the state of the disk.
#[derive(Debug, Default)]
pub(crate) struct StoreRetry {
    jobs: Vec<StoreJob>,
    refetch: BTreeSet<ServiceId>,
    at: Option<Instant>,
    /// The disk is full since this failure (the largest need seen).
    full: Option<DiskFull>,
}

impl StoreRetry {
    /// When [`StoreRetry::due`] has something.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.at
    }

    /// Whether the disk is full (since the last failure for lack of room,
    /// until a check found room).
    #[cfg(test)]
    pub(crate) fn disk_is_full(&self) -> bool {
        self.full.is_some()
    }

    /// `job` failed: tried again later.
    pub(crate) fn job(&mut self, job: StoreJob, now: Instant) {
        self.jobs.push(job);
        self.later(now);
    }

    /// Reading `contact`'s outbox failed: read again later.
    pub(crate) fn refetch(&mut self, contact: ServiceId, now: Instant) {
        self.refetch.insert(contact);
        self.later(now);
    }

    /// A write failed for lack of room. True if the disk was not known to
    /// be full: the application hears of it now, and only now.
    pub(crate) fn disk_full(&mut self, full: &DiskFull, now: Instant) -> bool {
        self.later(now);
        match &mut self.full {
            Some(known) => {
                known.needed = known.needed.max(full.needed);
                known.available = full.available;
                false
            }
            None => {
                self.full = Some(full.clone());
                true
            }
        }
    }

    /// A check found the disk still full.
    pub(crate) fn still_full(&mut self, full: &DiskFull, now: Instant) {
        self.disk_full(full, now);
    }

    /// A check found room: the disk is no longer full, and everything
    /// waiting is due at once. The profile's path, if the disk was full.
    pub(crate) fn space_freed(&mut self, now: Instant) -> Option<PathBuf> {
        let full = self.full.take()?;
        self.at = Some(now);
        Some(full.path)
    }

    /// What is due at `now`.
    pub(crate) fn due(&mut self, now: Instant) -> Due {
        if self.at.is_none_or(|at| at > now) {
            return Due::Nothing;
        }
        self.at = None;
        if let Some(full) = &self.full {
            self.at = Some(now + STORE_RETRY);
            return Due::CheckSpace(full.clone());
        }
        Due::Retry {
            jobs: mem::take(&mut self.jobs),
            refetch: mem::take(&mut self.refetch),
        }
    }

    fn later(&mut self, now: Instant) {
        self.at.get_or_insert(now + STORE_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(needed: u64) -> DiskFull {
        DiskFull {
            path: PathBuf::from("/profile/profile.sqlite3"),
            needed,
            available: Some(0),
        }
    }

    #[test]
    fn a_full_disk_is_said_once_and_checked_until_there_is_room() {
        let start = Instant::now();
        let mut retry = StoreRetry::default();
        let id: ServiceId = "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd"
            .parse()
            .unwrap();
        retry.refetch(id, start);
        assert!(retry.disk_full(&full(100), start), "the first says so");
        assert!(!retry.disk_full(&full(300), start), "the second does not");
        assert!(matches!(retry.due(start), Due::Nothing));
        let at = retry.deadline().unwrap();
        assert_eq!(at, start + STORE_RETRY);
        // While full, only checks, every STORE_RETRY, for the largest need.
        match retry.due(at) {
            Due::CheckSpace(checked) => assert_eq!(checked.needed, 300),
            other => panic!("{other:?}"),
        }
        assert_eq!(retry.deadline(), Some(at + STORE_RETRY));
        retry.still_full(&full(200), at);
        assert!(retry.disk_is_full());
        let later = at + STORE_RETRY;
        assert!(matches!(retry.due(later), Due::CheckSpace(_)));
        // Room: the waiting work is due at once.
        assert_eq!(
            retry.space_freed(later),
            Some(PathBuf::from("/profile/profile.sqlite3"))
        );
        assert!(!retry.disk_is_full());
        match retry.due(later) {
            Due::Retry { refetch, .. } => assert_eq!(refetch.into_iter().collect::<Vec<_>>(), [id]),
            other => panic!("{other:?}"),
        }
        assert_eq!(retry.deadline(), None);
        assert_eq!(retry.space_freed(later), None, "said once");
        // A new full disk is said again.
        assert!(retry.disk_full(&full(100), later));
    }
}
