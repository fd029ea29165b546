//! The profile database: identity keys, contacts, blocked ids, contact
//! requests and message history, in one SQLite file.
//!
//! The file is created with mode 0600 and held with an exclusive lock for
//! as long as the [`Store`] lives, so a second client opening the same
//! profile fails at once with [`StorageError::ProfileInUse`]. The journal is
//! a write-ahead log, synced at the commit of every transaction whose effect
//! leaves the process or reaches the application (`synchronous=FULL`): an
//! acknowledgement to a peer, a reply that says stored or queued, a request
//! or answer that goes out, a new identity. Only the record of a peer's
//! acknowledgements of our messages commits unsynced (`NORMAL`): a power cut
//! that loses it makes the messages go out again, and the peer drops them
//! as resends (see [`StoreJob::must_be_stable`]).
//!
//! Ids are stored as canonical bare service ids, times as milliseconds since
//! the Unix epoch.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use ricochet_identity::{Generation, IdentityKey, RicochetId, ServiceId};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use zeroize::Zeroizing;

mod thread;

pub(crate) use thread::{Import, StoreHandle, gone, open};

use ricochet_proto::message::private_endpoint::PrivateEndpoint;

use crate::core::io::{
    ContactRow, ContactState, OutgoingRow, Snapshot, StoreDone, StoreJob, Stored,
};
use crate::error::{DiskFull, StorageError};
use crate::import::RefreshProfile;
use crate::model::{
    ContactRequest, FailureReason, Message, MessageDirection, MessageId, MessageStatus,
};
use crate::resend::{RESEND_WINDOW, ResendDetector};

/// The schema, one SQL batch per version. Batch `i` takes the database from
/// `user_version = i` to `i + 1`. Never edit a batch once released: append.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE identities (
        generation TEXT PRIMARY KEY CHECK (generation IN ('v2', 'v3')),
        key TEXT NOT NULL
    );
    CREATE TABLE contacts (
        id TEXT PRIMARY KEY,
        nickname TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('contact', 'request_pending', 'rejected', 'request_failed')),
        request_nickname TEXT NOT NULL DEFAULT '',
        request_message TEXT NOT NULL DEFAULT '',
        next_wire_id INTEGER NOT NULL,
        added_at INTEGER NOT NULL
    );
    CREATE TABLE blocked (
        id TEXT PRIMARY KEY,
        blocked_at INTEGER NOT NULL
    );
    CREATE TABLE incoming_requests (
        id TEXT PRIMARY KEY,
        nickname TEXT NOT NULL,
        message TEXT NOT NULL,
        received_at INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        contact TEXT NOT NULL,
        direction INTEGER NOT NULL CHECK (direction IN (0, 1)),
        wire_id INTEGER,
        text TEXT NOT NULL,
        time INTEGER NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('queued', 'sent', 'acknowledged', 'refused', 'gone'))
    );
    CREATE INDEX messages_by_contact ON messages (contact, direction, id);",
    // 2: duplicate detection looks up a contact's incoming message ids
    // across the whole history, not a window: after a connection is cut, a
    // sender may resend more unacknowledged messages than any window holds.
    // The queue: outgoing messages not yet acknowledged, in order.
    "CREATE INDEX messages_by_wire_id ON messages (contact, direction, wire_id);
    CREATE INDEX messages_unfinished ON messages (contact, direction, id)
        WHERE status IN ('queued', 'sent');",
    // 3: private mode (docs/private-mode.md). `private_mode` has one row:
    // the key of our contacts-only onion service, the secret our per-contact
    // client-authorization keys are made from, and whether we accept
    // contact requests (whether the public service is published).
    // `contact_endpoints`: what each contact told us of its own private
    // service.
    "CREATE TABLE private_mode (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        service_key TEXT NOT NULL,
        client_auth_seed TEXT NOT NULL,
        accepting_requests INTEGER NOT NULL DEFAULT 1 CHECK (accepting_requests IN (0, 1))
    );
    CREATE TABLE contact_endpoints (
        contact TEXT PRIMARY KEY,
        private_address TEXT NOT NULL,
        client_auth_key TEXT NOT NULL,
        accepts_requests INTEGER NOT NULL CHECK (accepts_requests IN (0, 1))
    );",
    // 4: messages shaped for append (BENCHMARKS.md, issue 16). Each row
    // names its peer by a small number from `peers` instead of the
    // 56-character id, its status is a number (`STATUS_*`), and two
    // indexes remain: by peer and direction (history, the resend window,
    // whose lookups now scan at most the window instead of needing an
    // index by message id), and the queue (outgoing messages not yet
    // acknowledged). A peer's number never changes and is never reused: it
    // outlives the contact, like the history. Message numbers are never
    // reused either: messages are never deleted, so the largest number
    // plus one (what SQLite gives without AUTOINCREMENT) is always new.
    "CREATE TABLE peers (
        key INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE
    );
    INSERT INTO peers (id) SELECT contact FROM messages GROUP BY contact ORDER BY min(id);
    CREATE TABLE messages_v4 (
        id INTEGER PRIMARY KEY,
        peer INTEGER NOT NULL,
        direction INTEGER NOT NULL CHECK (direction IN (0, 1)),
        wire_id INTEGER,
        text TEXT NOT NULL,
        time INTEGER NOT NULL,
        status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 4)
    );
    INSERT INTO messages_v4 (id, peer, direction, wire_id, text, time, status)
        SELECT m.id, p.key, m.direction, m.wire_id, m.text, m.time,
            CASE m.status
                WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'acknowledged' THEN 2
                WHEN 'refused' THEN 3 ELSE 4
            END
        FROM messages m JOIN peers p ON p.id = m.contact ORDER BY m.id;
    DROP TABLE messages;
    ALTER TABLE messages_v4 RENAME TO messages;
    CREATE INDEX messages_by_peer ON messages (peer, direction, id);
    CREATE INDEX messages_queue ON messages (peer, id) WHERE direction = 0 AND status <= 1;",
    // 5: the unanswered tries of a pending request outlive a restart.
    "ALTER TABLE contacts ADD COLUMN unanswered_requests INTEGER NOT NULL DEFAULT 0;",
];

/// `messages.direction` of a message we sent.
const OUTGOING: i64 = 0;
/// `messages.direction` of a message the contact sent.
const INCOMING: i64 = 1;

/// `messages.status`: waiting to go out. The queue is every outgoing
/// message with a status of at most [`STATUS_SENT`] (the `messages_queue`
/// index, whose condition queries must repeat word for word).
const STATUS_QUEUED: i64 = 0;
/// `messages.status`: on the wire, not acknowledged yet. No longer written
/// ("sent" is kept in memory); older profiles may hold it.
const STATUS_SENT: i64 = 1;
/// `messages.status`: acknowledged (outgoing), or received (incoming).
const STATUS_ACKNOWLEDGED: i64 = 2;
/// `messages.status`: the peer refused it.
const STATUS_REFUSED: i64 = 3;
/// `messages.status`: the contact was removed or blocked before it went.
const STATUS_GONE: i64 = 4;

const fn state_name(state: ContactState) -> &'static str {
    match state {
        ContactState::Contact => "contact",
        ContactState::RequestPending => "request_pending",
        ContactState::Rejected => "rejected",
        ContactState::RequestFailed => "request_failed",
    }
}

fn parse_state(text: &str) -> Result<ContactState, StorageError> {
    match text {
        "contact" => Ok(ContactState::Contact),
        "request_pending" => Ok(ContactState::RequestPending),
        "rejected" => Ok(ContactState::Rejected),
        "request_failed" => Ok(ContactState::RequestFailed),
        other => Err(corrupt(format!("unknown contact state {other:?}"))),
    }
}

/// Our private-mode secrets and setting (docs/private-mode.md).
pub(crate) struct PrivateMode {
    /// The key of our contacts-only onion service.
    pub(crate) service_key: IdentityKey,
    /// What our client-authorization key for each contact is made from.
    pub(crate) client_auth_seed: Zeroizing<[u8; 32]>,
    /// Whether our public service is published.
    pub(crate) accepting_requests: bool,
}

impl fmt::Debug for PrivateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateMode")
            .field("address", &self.service_key.service_id())
            .field("accepting_requests", &self.accepting_requests)
            .finish_non_exhaustive()
    }
}

const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt { what: what.into() }
}

/// A received chat message to store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    /// Its id on the wire, if the sender set one.
    pub(crate) wire_id: Option<u32>,
    /// The text.
    pub(crate) text: &'a str,
    /// When the sender says it was written.
    pub(crate) time: SystemTime,
    /// Whether it is the first message of the sender's chat channel.
    pub(crate) first_on_channel: bool,
}

/// The open profile database, locked against other clients.
pub(crate) struct Store {
    conn: Connection,
    path: PathBuf,
    /// Where new contacts' message numbering starts (see
    /// [`Store::add_contact`]); seeded by a simulation so that it replays.
    first_wire_ids: RefCell<StdRng>,
    /// The `peers` numbers read so far (see [`Store::known_peer`]).
    peers: RefCell<HashMap<ServiceId, i64>>,
    /// Whether a batch's transaction is open ([`Store::run_together`]).
    in_batch: Cell<bool>,
    /// Whether commits sync the log now (`synchronous=FULL`), if set.
    syncing: Cell<Option<bool>>,
    /// Acknowledgements of ours recorded by commits since the last synced
    /// one (see [`MAX_UNSYNCED_ACKNOWLEDGEMENTS`]).
    unsynced_acks: Cell<usize>,
    /// The simulation's storage fault for the commits of the next batch.
    #[cfg(test)]
    fault: Cell<Option<StorageFault>>,
}

/// A storage fault the simulation injects into one batch.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageFault {
    /// Every commit fails as a failed write or sync of the log does
    /// (`SQLITE_IOERR`): rolled back, nothing of it visible.
    Io,
    /// The disk is full: the database may not grow by a page
    /// (`max_page_count`), so writes that need one fail with `SQLITE_FULL`
    /// and the others succeed.
    Full,
}

/// How many of a contact's acknowledgements of our messages may be
/// recorded without a sync. A power cut that loses their record makes
/// those messages go out again, together with those in flight (up to
/// [`crate::Limits::max_unacknowledged_messages`], 2048 by default): a
/// receiver of this crate recognises resends among its last
/// [`RESEND_WINDOW`] (4096) messages, and a peer that keeps no record of
/// what it received shows them again. Bots, whose acknowledgements come
/// by the thousand, sync every batch of them anyway; a chat's come one by
/// one and ride on the next synced commit.
const MAX_UNSYNCED_ACKNOWLEDGEMENTS: usize = 64;

/// The injected fault of one [`Store::run_batch`]: a full disk is a
/// database that may not grow while the batch runs; the fault ends with
/// the batch.
#[cfg(test)]
struct FaultScope<'a> {
    store: &'a Store,
    max_page_count: Option<i64>,
}

#[cfg(test)]
impl<'a> FaultScope<'a> {
    fn begin(store: &'a Store) -> Self {
        let mut max_page_count = None;
        if store.fault.get() == Some(StorageFault::Full) {
            let conn = store.conn();
            let old: rusqlite::Result<i64> =
                conn.pragma_query_value(None, "max_page_count", |row| row.get(0));
            let pages: rusqlite::Result<i64> =
                conn.pragma_query_value(None, "page_count", |row| row.get(0));
            if let (Ok(old), Ok(pages)) = (old, pages)
                && conn.pragma_update(None, "max_page_count", pages).is_ok()
            {
                max_page_count = Some(old);
            }
        }
        Self {
            store,
            max_page_count,
        }
    }
}

#[cfg(test)]
impl Drop for FaultScope<'_> {
    fn drop(&mut self) {
        if let Some(old) = self.max_page_count {
            let _ = self.store.conn().pragma_update(None, "max_page_count", old);
        }
        self.store.fault.set(None);
    }
}

/// How a transaction commits ([`Store::commit_policy`]).
struct PendingCommit {
    sync: bool,
    /// Unsynced acknowledgements after it, if it does not sync.
    unsynced: usize,
    /// `total_changes` before it.
    changes_before: u64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A write that takes effect whole or not at all: a savepoint, or, inside
/// the transaction of a batch of jobs, nothing of its own (see
/// [`Store::run_together`]: a job that fails there rolls the whole batch
/// back, and each job runs again alone).
struct Atomic<'a> {
    store: &'a Store,
    /// Whether this write opened a savepoint (it is not part of a batch).
    savepoint: bool,
    released: bool,
}

impl Atomic<'_> {
    fn commit(mut self) -> Result<(), StorageError> {
        if self.savepoint {
            self.store.conn.execute_batch("RELEASE store_write")?;
        }
        self.released = true;
        Ok(())
    }
}

impl std::ops::Deref for Atomic<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.store.conn
    }
}

impl Drop for Atomic<'_> {
    fn drop(&mut self) {
        if !self.released && self.savepoint {
            let _ = self
                .store
                .conn
                .execute_batch("ROLLBACK TO store_write; RELEASE store_write");
            self.store.forget_peers();
        }
    }
}

impl Store {
    /// The database connection. Every use of the database goes through
    /// here, so this is where debug builds check that no store call runs
    /// on an async runtime's thread (the store has a thread of its own,
    /// [`StoreHandle`]; the whole test suite runs with this check).
    fn conn(&self) -> &Connection {
        debug_assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "the profile database was used on an async runtime thread"
        );
        &self.conn
    }

    fn atomic(&self) -> Result<Atomic<'_>, StorageError> {
        let savepoint = !self.in_batch.get();
        if savepoint {
            self.conn().execute_batch("SAVEPOINT store_write")?;
        }
        Ok(Atomic {
            store: self,
            savepoint,
            released: false,
        })
    }

    /// Forgets the `peers` numbers read so far: after a rollback, one of
    /// them may have been given in the write that was undone.
    fn forget_peers(&self) {
        self.peers.borrow_mut().clear();
    }

    /// Opens the profile database at `path`, creating it (mode 0600) if it
    /// does not exist, and brings its schema up to date. The directory must
    /// exist.
    pub(crate) fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_with(path, rand::make_rng())
    }

    /// [`Store::open`] with the numbering of new contacts drawn from
    /// `seed`, so that a simulation replays byte for byte.
    #[cfg(test)]
    pub(crate) fn open_seeded(path: &Path, seed: u64) -> Result<Self, StorageError> {
        Self::open_with(path, rand::SeedableRng::seed_from_u64(seed))
    }

    fn open_with(path: &Path, first_wire_ids: StdRng) -> Result<Self, StorageError> {
        secure_files(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        let store = Self {
            conn,
            path: path.to_owned(),
            first_wire_ids: RefCell::new(first_wire_ids),
            peers: RefCell::new(HashMap::new()),
            in_batch: Cell::new(false),
            syncing: Cell::new(None),
            // What a process that was killed left in the log may not be
            // synced: the first acknowledgements after a start sync.
            unsynced_acks: Cell::new(MAX_UNSYNCED_ACKNOWLEDGEMENTS),
            #[cfg(test)]
            fault: Cell::new(None),
        };
        store.lock()?;
        // The identity, the migrations and the import are stable at once.
        store.sync_commits(true)?;
        // A 16 MiB page cache (the default is 2 MiB), so that the message
        // indexes of a long history stay in memory (BENCHMARKS.md).
        store.conn().pragma_update(None, "cache_size", -16384)?;
        store.conn().pragma_update(None, "foreign_keys", true)?;
        store.migrate()?;
        Ok(store)
    }

    /// Switches to exclusive locking and WAL, and takes the lock now. The
    /// locking mode comes first so that SQLite keeps the WAL index in memory
    /// (no `-shm` file). With a busy timeout of 0, a profile locked by
    /// another client fails at once with `SQLITE_BUSY`.
    fn lock(&self) -> Result<(), StorageError> {
        let in_use = |error: rusqlite::Error| {
            if matches!(
                error.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) {
                StorageError::ProfileInUse {
                    path: self.path.clone(),
                }
            } else {
                StorageError::Database(error)
            }
        };
        self.conn().busy_timeout(Duration::ZERO).map_err(in_use)?;
        let mode: String = self
            .conn()
            .pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |row| row.get(0))
            .map_err(in_use)?;
        if !mode.eq_ignore_ascii_case("exclusive") {
            return Err(corrupt(format!(
                "SQLite refused exclusive locking (locking mode {mode:?})"
            )));
        }
        let journal: String = self
            .conn()
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(in_use)?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(corrupt(format!(
                "SQLite refused the write-ahead log (journal mode {journal:?})"
            )));
        }
        self.conn()
            .execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(in_use)
    }

    /// Whether the next commits sync the write-ahead log before they
    /// return (`synchronous=FULL`) or leave that to the next checkpoint
    /// (`NORMAL`). Either way a commit survives the process being killed;
    /// only a synced one survives a power cut.
    fn sync_commits(&self, sync: bool) -> Result<(), StorageError> {
        if self.syncing.get() != Some(sync) {
            let mode = if sync { "FULL" } else { "NORMAL" };
            self.conn().pragma_update(None, "synchronous", mode)?;
            self.syncing.set(Some(sync));
        }
        Ok(())
    }

    /// Sets how the transaction of `jobs` commits: synced if any of them
    /// must be stable before it is done, or if the acknowledgements
    /// recorded unsynced would exceed [`MAX_UNSYNCED_ACKNOWLEDGEMENTS`].
    fn commit_policy(&self, jobs: &[StoreJob]) -> Result<PendingCommit, StorageError> {
        let (sync, unsynced) = self.sync_needed(jobs);
        self.sync_commits(sync)?;
        Ok(PendingCommit {
            sync,
            unsynced,
            changes_before: self.conn().total_changes(),
        })
    }

    /// Whether the transaction of `jobs` must sync, and the unsynced
    /// acknowledgements after it if it does not.
    fn sync_needed(&self, jobs: &[StoreJob]) -> (bool, usize) {
        let acks: usize = jobs
            .iter()
            .map(|job| match job {
                StoreJob::Acknowledge { acks, .. } => acks.len(),
                _ => 0,
            })
            .sum();
        let unsynced = self.unsynced_acks.get() + acks;
        let sync =
            jobs.iter().any(StoreJob::must_be_stable) || unsynced > MAX_UNSYNCED_ACKNOWLEDGEMENTS;
        (sync, unsynced)
    }

    /// Whether a batch of `jobs` would commit without a sync.
    #[cfg(test)]
    pub(crate) fn would_commit_unsynced(&self, jobs: &[StoreJob]) -> bool {
        !self.sync_needed(jobs).0
    }

    /// Whether every commit so far is on stable storage.
    #[cfg(test)]
    pub(crate) fn all_synced(&self) -> bool {
        self.unsynced_acks.get() == 0
    }

    /// A copy of the database as it is now, at `to` (which must not exist).
    #[cfg(test)]
    pub(crate) fn copy_to(&self, to: &Path) -> Result<(), StorageError> {
        let to = to
            .to_str()
            .ok_or_else(|| corrupt("the copy's path is not UTF-8".to_owned()))?;
        self.conn().execute("VACUUM INTO ?1", [to])?;
        Ok(())
    }

    /// Injects `fault` into the next [`Store::run_batch`].
    #[cfg(test)]
    pub(crate) fn inject(&self, fault: StorageFault) {
        self.fault.set(Some(fault));
    }

    /// Fails a commit as a failed write of the log would, if the
    /// simulation says so.
    fn injected_failure(&self) -> Result<(), StorageError> {
        #[cfg(test)]
        if self.fault.get() == Some(StorageFault::Io) {
            return Err(StorageError::Database(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                Some("injected: the write of the log failed".to_owned()),
            )));
        }
        Ok(())
    }

    /// After the commit of a transaction set up by
    /// [`Store::commit_policy`]: a synced commit that wrote synced the
    /// whole log (a transaction that changed no row writes no log and
    /// syncs nothing).
    fn committed(&self, pending: &PendingCommit) {
        let wrote = self.conn().total_changes() != pending.changes_before;
        self.unsynced_acks.set(if pending.sync && wrote {
            0
        } else {
            pending.unsynced
        });
    }

    /// Applies the migrations the file has not had yet.
    fn migrate(&self) -> Result<(), StorageError> {
        let found: i64 = self
            .conn()
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if found > supported {
            return Err(StorageError::NewerSchema { found, supported });
        }
        let done = usize::try_from(found)
            .map_err(|_| corrupt(format!("negative schema version {found}")))?;
        for (index, batch) in MIGRATIONS.iter().enumerate().skip(done) {
            let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
            let tx = self.atomic()?;
            tx.execute_batch(batch)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The database file.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    // ----- identities ---------------------------------------------------

    /// Our identity key of this generation, if the profile has one.
    pub(crate) fn identity(
        &self,
        generation: Generation,
    ) -> Result<Option<IdentityKey>, StorageError> {
        let name = generation_name(generation);
        let blob = self
            .conn()
            .query_row(
                "SELECT key FROM identities WHERE generation = ?1",
                [name],
                |row| row.get::<_, String>(0).map(Zeroizing::new),
            )
            .optional()?;
        let Some(blob) = blob else {
            return Ok(None);
        };
        let key = IdentityKey::from_tor_key_blob(&blob).map_err(|error| {
            corrupt(format!(
                "the stored {name} identity key is invalid: {error}"
            ))
        })?;
        if key.generation() != generation {
            return Err(corrupt(format!(
                "the stored {name} identity key is of the other generation"
            )));
        }
        Ok(Some(key))
    }

    /// Stores our identity key. The profile holds at most one key per
    /// generation: storing a second one fails.
    pub(crate) fn insert_identity(&self, key: &IdentityKey) -> Result<(), StorageError> {
        let name = generation_name(key.generation());
        let blob = key.to_tor_key_blob().map_err(|error| {
            corrupt(format!(
                "the {name} identity key cannot be encoded: {error}"
            ))
        })?;
        self.conn().execute(
            "INSERT INTO identities (generation, key) VALUES (?1, ?2)",
            params![name, blob.as_str()],
        )?;
        Ok(())
    }

    /// Takes the identity and contacts of a Ricochet Refresh profile, in
    /// one transaction, into a profile without a v3 identity.
    pub(crate) fn import_refresh(&self, profile: &RefreshProfile) -> Result<(), StorageError> {
        let tx = self.atomic()?;
        self.insert_identity(&profile.identity)?;
        for row in &profile.contacts {
            self.add_contact(row)?;
        }
        let now = SystemTime::now();
        for id in &profile.requests {
            self.upsert_incoming_request(&ContactRequest {
                from: (*id).into(),
                nickname: String::new(),
                message: String::new(),
                received_at: now,
            })?;
        }
        for id in &profile.blocked {
            self.block(id)?;
        }
        tx.commit()
    }

    // ----- private mode -------------------------------------------------

    /// Our private-mode secrets, made (from the operating system's RNG) on
    /// first use.
    pub(crate) fn private_mode(&self) -> Result<PrivateMode, StorageError> {
        let row = self
            .conn()
            .query_row(
                "SELECT service_key, client_auth_seed, accepting_requests
                 FROM private_mode WHERE only_row = 1",
                [],
                |row| {
                    Ok((
                        row.get::<_, String>(0).map(Zeroizing::new)?,
                        row.get::<_, String>(1).map(Zeroizing::new)?,
                        row.get::<_, bool>(2)?,
                    ))
                },
            )
            .optional()?;
        if let Some((key, seed, accepting_requests)) = row {
            let service_key = IdentityKey::from_tor_key_blob(&key)
                .ok()
                .filter(|key| key.generation() == Generation::V3)
                .ok_or_else(|| corrupt("the stored private service key is invalid"))?;
            let mut client_auth_seed = Zeroizing::new([0; 32]);
            let decoded = base32::decode(BASE32, &seed).map(Zeroizing::new);
            match decoded {
                Some(bytes) if bytes.len() == 32 => client_auth_seed.copy_from_slice(&bytes),
                _ => return Err(corrupt("the stored client-authorization seed is invalid")),
            }
            return Ok(PrivateMode {
                service_key,
                client_auth_seed,
                accepting_requests,
            });
        }
        let service_key = IdentityKey::generate(Generation::V3)
            .map_err(|error| corrupt(format!("cannot make a private service key: {error}")))?;
        let seed = ricochet_identity::ClientAuthSecretKey::generate()
            .map_err(|error| corrupt(format!("cannot make a seed: {error}")))?;
        let mut client_auth_seed = Zeroizing::new([0; 32]);
        client_auth_seed.copy_from_slice(seed.as_bytes());
        let blob = service_key.to_tor_key_blob().map_err(|error| {
            corrupt(format!(
                "the private service key cannot be encoded: {error}"
            ))
        })?;
        let seed_text = Zeroizing::new(base32::encode(BASE32, client_auth_seed.as_ref()));
        self.conn().execute(
            "INSERT INTO private_mode (only_row, service_key, client_auth_seed) VALUES (1, ?1, ?2)",
            params![blob.as_str(), seed_text.as_str()],
        )?;
        Ok(PrivateMode {
            service_key,
            client_auth_seed,
            accepting_requests: true,
        })
    }

    /// Whether we accept contact requests (publish the public service).
    pub(crate) fn set_accepting_requests(&self, accepting: bool) -> Result<(), StorageError> {
        let changed = self.conn().execute(
            "UPDATE private_mode SET accepting_requests = ?1 WHERE only_row = 1",
            [accepting],
        )?;
        if changed == 0 {
            return Err(corrupt("the profile has no private mode row"));
        }
        Ok(())
    }

    /// What each contact told us of its private service.
    pub(crate) fn endpoints(&self) -> Result<Vec<(ServiceId, PrivateEndpoint)>, StorageError> {
        let mut statement = self.conn().prepare(
            "SELECT contact, private_address, client_auth_key, accepts_requests
             FROM contact_endpoints ORDER BY contact",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, bool>(3)?,
            ))
        })?;
        let mut endpoints = Vec::new();
        for row in rows {
            let (contact, address, key, accepts_contact_requests) = row?;
            let client_auth_key = key.parse().map_err(|error| {
                corrupt(format!("stored client-authorization key {key:?}: {error}"))
            })?;
            endpoints.push((
                parse_id(&contact)?,
                PrivateEndpoint {
                    private_address: parse_id(&address)?,
                    client_auth_key,
                    accepts_contact_requests,
                },
            ));
        }
        Ok(endpoints)
    }

    /// Keeps what `contact` told us of its private service.
    pub(crate) fn set_endpoint(
        &self,
        contact: &ServiceId,
        endpoint: &PrivateEndpoint,
    ) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT INTO contact_endpoints
                 (contact, private_address, client_auth_key, accepts_requests)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (contact) DO UPDATE SET
                 private_address = excluded.private_address,
                 client_auth_key = excluded.client_auth_key,
                 accepts_requests = excluded.accepts_requests",
            params![
                contact.to_string(),
                endpoint.private_address.to_string(),
                endpoint.client_auth_key.to_string(),
                endpoint.accepts_contact_requests,
            ],
        )?;
        Ok(())
    }

    /// Forgets `contact`'s private service (it was removed or blocked).
    fn remove_endpoint(&self, contact: &ServiceId) -> Result<(), StorageError> {
        self.conn().execute(
            "DELETE FROM contact_endpoints WHERE contact = ?1",
            [contact.to_string()],
        )?;
        Ok(())
    }

    // ----- contacts -----------------------------------------------------

    /// The contact list, in the order the contacts were added.
    pub(crate) fn contacts(&self) -> Result<Vec<ContactRow>, StorageError> {
        let mut statement = self.conn().prepare(
            "SELECT id, nickname, state, request_nickname, request_message, unanswered_requests
             FROM contacts ORDER BY added_at, id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })?;
        let mut contacts = Vec::new();
        for row in rows {
            let (id, nickname, state, request_nickname, request_message, unanswered) = row?;
            contacts.push(ContactRow {
                id: parse_id(&id)?,
                nickname,
                state: parse_state(&state)?,
                request_nickname,
                request_message,
                unanswered_requests: u32::try_from(unanswered).map_err(|_| {
                    corrupt(format!("contact {id} has {unanswered} unanswered requests"))
                })?,
            });
        }
        Ok(contacts)
    }

    /// Adds a contact, or updates its nickname, state and request if it is
    /// in the list already (keeping its message numbering and its place in
    /// the list).
    pub(crate) fn add_contact(&self, row: &ContactRow) -> Result<(), StorageError> {
        // A random start for the message ids avoids clashing with the ids
        // of an earlier connection the peer may still remember (§9.2).
        let first_wire_id = rand::Rng::next_u32(&mut *self.first_wire_ids.borrow_mut());
        self.conn().execute(
            "INSERT INTO contacts
                 (id, nickname, state, request_nickname, request_message, next_wire_id, added_at,
                  unanswered_requests)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
                 nickname = excluded.nickname,
                 state = excluded.state,
                 request_nickname = excluded.request_nickname,
                 request_message = excluded.request_message,
                 unanswered_requests = excluded.unanswered_requests",
            params![
                row.id.to_string(),
                row.nickname,
                state_name(row.state),
                row.request_nickname,
                row.request_message,
                i64::from(first_wire_id),
                to_millis(SystemTime::now()),
                i64::from(row.unanswered_requests),
            ],
        )?;
        Ok(())
    }

    /// Records how many tries of our pending request to `id` went
    /// unanswered.
    pub(crate) fn set_unanswered_requests(
        &self,
        id: &ServiceId,
        count: u32,
    ) -> Result<(), StorageError> {
        self.conn().execute(
            "UPDATE contacts SET unanswered_requests = ?2 WHERE id = ?1",
            params![id.to_string(), i64::from(count)],
        )?;
        Ok(())
    }

    /// Sets a contact's stored standing; false if it is not a contact.
    pub(crate) fn set_contact_state(
        &self,
        id: &ServiceId,
        state: ContactState,
    ) -> Result<bool, StorageError> {
        let changed = self.conn().execute(
            "UPDATE contacts SET state = ?2 WHERE id = ?1",
            params![id.to_string(), state_name(state)],
        )?;
        Ok(changed > 0)
    }

    /// Renames a contact; false if it is not a contact.
    pub(crate) fn set_nickname(
        &self,
        id: &ServiceId,
        nickname: &str,
    ) -> Result<bool, StorageError> {
        let changed = self.conn().execute(
            "UPDATE contacts SET nickname = ?2 WHERE id = ?1",
            params![id.to_string(), nickname],
        )?;
        Ok(changed > 0)
    }

    /// Removes a contact (its history stays) and fails its undelivered
    /// messages with `ContactGone`; returns those messages, oldest first.
    pub(crate) fn remove_contact(&self, id: &ServiceId) -> Result<Vec<MessageId>, StorageError> {
        let tx = self.atomic()?;
        tx.execute("DELETE FROM contacts WHERE id = ?1", [id.to_string()])?;
        self.remove_endpoint(id)?;
        let failed = self.fail_unfinished(id)?;
        tx.commit()?;
        Ok(failed)
    }

    /// Fails a contact's undelivered (queued or sent) messages with
    /// `ContactGone`; returns them, oldest first.
    pub(crate) fn fail_unfinished(&self, id: &ServiceId) -> Result<Vec<MessageId>, StorageError> {
        let Some(peer) = self.known_peer(id)? else {
            return Ok(Vec::new());
        };
        let mut statement = self.conn().prepare_cached(
            "UPDATE messages INDEXED BY messages_queue SET status = ?2
             WHERE peer = ?1 AND direction = 0 AND status <= 1
             RETURNING id",
        )?;
        let ids = statement.query_map(params![peer, STATUS_GONE], |row| row.get(0))?;
        let mut failed = ids
            .map(|id| id.map(MessageId))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        failed.sort_unstable();
        Ok(failed)
    }

    // ----- blocked ids --------------------------------------------------

    /// The blocked ids, in the order they were blocked.
    pub(crate) fn blocked(&self) -> Result<Vec<ServiceId>, StorageError> {
        let mut statement = self
            .conn()
            .prepare("SELECT id FROM blocked ORDER BY blocked_at, id")?;
        let ids = statement.query_map([], |row| row.get::<_, String>(0))?;
        let mut blocked = Vec::new();
        for id in ids {
            blocked.push(parse_id(&id?)?);
        }
        Ok(blocked)
    }

    /// Whether `id` is blocked.
    #[cfg(test)]
    pub(crate) fn is_blocked(&self, id: &ServiceId) -> Result<bool, StorageError> {
        let blocked = self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM blocked WHERE id = ?1)",
            [id.to_string()],
            |row| row.get(0),
        )?;
        Ok(blocked)
    }

    /// Blocks `id` (nothing changes if it is blocked already).
    pub(crate) fn block(&self, id: &ServiceId) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO blocked (id, blocked_at) VALUES (?1, ?2)",
            params![id.to_string(), to_millis(SystemTime::now())],
        )?;
        Ok(())
    }

    /// Unblocks `id`; false if it was not blocked.
    pub(crate) fn unblock(&self, id: &ServiceId) -> Result<bool, StorageError> {
        let changed = self
            .conn()
            .execute("DELETE FROM blocked WHERE id = ?1", [id.to_string()])?;
        Ok(changed > 0)
    }

    // ----- incoming contact requests ------------------------------------

    /// The contact requests waiting for an answer, oldest first.
    pub(crate) fn incoming_requests(&self) -> Result<Vec<ContactRequest>, StorageError> {
        let mut statement = self.conn().prepare(
            "SELECT id, nickname, message, received_at
             FROM incoming_requests ORDER BY received_at, id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        let mut requests = Vec::new();
        for row in rows {
            let (id, nickname, message, received_at) = row?;
            requests.push(ContactRequest {
                from: RicochetId(parse_id(&id)?),
                nickname,
                message,
                received_at: from_millis(received_at),
            });
        }
        Ok(requests)
    }

    /// Stores a contact request; a repeated request from the same id
    /// replaces the earlier one's nickname, message and time.
    pub(crate) fn upsert_incoming_request(
        &self,
        request: &ContactRequest,
    ) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT INTO incoming_requests (id, nickname, message, received_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET
                 nickname = excluded.nickname,
                 message = excluded.message,
                 received_at = excluded.received_at",
            params![
                request.from.0.to_string(),
                request.nickname,
                request.message,
                to_millis(request.received_at),
            ],
        )?;
        Ok(())
    }

    /// Drops the request from `id`; false if there was none.
    pub(crate) fn remove_incoming_request(&self, id: &ServiceId) -> Result<bool, StorageError> {
        let changed = self.conn().execute(
            "DELETE FROM incoming_requests WHERE id = ?1",
            [id.to_string()],
        )?;
        Ok(changed > 0)
    }

    // ----- messages -----------------------------------------------------

    /// The number `messages` rows use for `id`, if it has one. Only numbers
    /// read from the database are remembered, so a number given out in a
    /// write that is rolled back is never used again from memory.
    fn known_peer(&self, id: &ServiceId) -> Result<Option<i64>, StorageError> {
        if let Some(&key) = self.peers.borrow().get(id) {
            return Ok(Some(key));
        }
        let key: Option<i64> = self
            .conn()
            .prepare_cached("SELECT key FROM peers WHERE id = ?1")?
            .query_row([id.to_string()], |row| row.get(0))
            .optional()?;
        if let Some(key) = key {
            self.peers.borrow_mut().insert(*id, key);
        }
        Ok(key)
    }

    /// The number `messages` rows use for `id`, given it now if it has none
    /// (in the caller's transaction).
    fn peer(&self, id: &ServiceId) -> Result<i64, StorageError> {
        if let Some(key) = self.known_peer(id)? {
            return Ok(key);
        }
        self.conn()
            .prepare_cached("INSERT INTO peers (id) VALUES (?1)")?
            .execute([id.to_string()])?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Stores outgoing messages to `contact` as queued, in one transaction,
    /// numbered with the contact's next message ids (wrapping after
    /// `u32::MAX`). Returns each message's number and message id, in order.
    /// Fails with [`StorageError::Corrupt`], storing nothing, if `contact`
    /// is not in the contact list.
    pub(crate) fn queue(
        &self,
        contact: &ServiceId,
        texts: &[String],
        time: SystemTime,
    ) -> Result<Vec<(MessageId, u32)>, StorageError> {
        let time = to_millis(time);
        let tx = self.atomic()?;
        let contact_text = contact.to_string();
        let mut queued = Vec::with_capacity(texts.len());
        {
            let mut next_of =
                tx.prepare_cached("SELECT next_wire_id FROM contacts WHERE id = ?1")?;
            let next: Option<i64> = next_of
                .query_row([&contact_text], |row| row.get(0))
                .optional()?;
            let Some(next) = next else {
                return Err(corrupt(format!(
                    "messages queued for {contact}, which is not a contact"
                )));
            };
            let mut wire_id = u32::try_from(next).map_err(|_| {
                corrupt(format!(
                    "next message id {next} of {contact} is out of range"
                ))
            })?;
            let peer = self.peer(contact)?;
            let mut chunks = texts.chunks_exact(QUEUE_ROWS_PER_INSERT);
            if chunks.len() > 0 {
                let mut insert = tx.prepare_cached(&queue_insert(QUEUE_ROWS_PER_INSERT))?;
                for chunk in &mut chunks {
                    insert.raw_bind_parameter(1, peer)?;
                    insert.raw_bind_parameter(2, time)?;
                    let mut index = 3;
                    for text in chunk {
                        insert.raw_bind_parameter(index, i64::from(wire_id))?;
                        insert.raw_bind_parameter(index + 1, text)?;
                        index += 2;
                        wire_id = wire_id.wrapping_add(1);
                    }
                    insert.raw_execute()?;
                    // One statement's rows get consecutive numbers, the
                    // last one's plus one each (no AUTOINCREMENT, and
                    // nobody else writes).
                    let last = tx.last_insert_rowid();
                    let first_wire_id = wire_id.wrapping_sub(QUEUE_ROWS_PER_INSERT as u32);
                    for (offset, id) in (last + 1 - QUEUE_ROWS_PER_INSERT as i64..=last).enumerate()
                    {
                        queued.push((MessageId(id), first_wire_id.wrapping_add(offset as u32)));
                    }
                }
            }
            let mut insert = tx.prepare_cached(&queue_insert(1))?;
            for text in chunks.remainder() {
                insert.execute(params![peer, time, i64::from(wire_id), text])?;
                queued.push((MessageId(tx.last_insert_rowid()), wire_id));
                wire_id = wire_id.wrapping_add(1);
            }
            tx.prepare_cached("UPDATE contacts SET next_wire_id = ?2 WHERE id = ?1")?
                .execute(params![contact_text, i64::from(wire_id)])?;
        }
        tx.commit()?;
        Ok(queued)
    }

    #[cfg(test)]
    /// The outgoing messages to `contact` that are queued or sent, oldest
    /// first.
    pub(crate) fn unfinished_outgoing(
        &self,
        contact: &ServiceId,
    ) -> Result<Vec<OutgoingRow>, StorageError> {
        self.outgoing_where(contact, "TRUE", i64::MIN, i64::MAX)
    }

    /// The oldest `limit` queued messages to `contact` with a number after
    /// `after` (all queued ones for `None`).
    pub(crate) fn queued_outgoing(
        &self,
        contact: &ServiceId,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<OutgoingRow>, StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.map_or(i64::MIN, |id| id.0);
        self.outgoing_where(contact, "status = 0", after, limit)
    }

    /// Messages of the queue to `contact` meeting `condition` (one of a few
    /// fixed texts, so that the statement is prepared once) with a number
    /// after `after`, oldest first, at most `limit`.
    fn outgoing_where(
        &self,
        contact: &ServiceId,
        condition: &'static str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OutgoingRow>, StorageError> {
        let Some(peer) = self.known_peer(contact)? else {
            return Ok(Vec::new());
        };
        let mut statement = self.conn().prepare_cached(&format!(
            // The partial index holds only the queue, so this stays fast
            // however long the history grows.
            "SELECT id, wire_id, text, time, status FROM messages
             INDEXED BY messages_queue
             WHERE peer = ?1 AND direction = 0 AND status <= 1 AND {condition} AND id > ?3
             ORDER BY id LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![peer, limit, after], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Option<i64>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?;
        let mut unfinished = Vec::new();
        for row in rows {
            let (id, wire_id, text, time, status) = row?;
            let wire_id = wire_id
                .and_then(|wire_id| u32::try_from(wire_id).ok())
                .ok_or_else(|| corrupt(format!("outgoing message {id} has no valid message id")))?;
            unfinished.push(OutgoingRow {
                id: MessageId(id),
                wire_id,
                text,
                time: from_millis(time),
                status: parse_status(status)?,
            });
        }
        Ok(unfinished)
    }

    #[cfg(test)]
    /// Sets the status of messages, all at once.
    pub(crate) fn set_status(
        &self,
        ids: &[MessageId],
        status: &MessageStatus,
    ) -> Result<(), StorageError> {
        let status = status_number(status);
        let tx = self.atomic()?;
        {
            let mut update = tx.prepare_cached("UPDATE messages SET status = ?2 WHERE id = ?1")?;
            for id in ids {
                update.execute(params![id.0, status])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the contact's answers to our messages, in one transaction:
    /// for each `(wire_id, accepted, message)`, the message (when the caller
    /// knows which one went out with that id), or else the newest queued
    /// or sent message to `contact` with that id, becomes acknowledged
    /// (`accepted`) or refused. Returns the messages that changed and their
    /// new status; unknown or repeated acknowledgements are ignored (§9.2).
    pub(crate) fn acknowledge_batch(
        &self,
        contact: &ServiceId,
        acks: &[(u32, bool, Option<MessageId>)],
    ) -> Result<Vec<(MessageId, MessageStatus)>, StorageError> {
        let Some(peer) = self.known_peer(contact)? else {
            return Ok(Vec::new());
        };
        let tx = self.atomic()?;
        let mut changed = Vec::with_capacity(acks.len());
        {
            // Without RETURNING, which costs a temporary table per
            // statement: the count of changed rows says enough.
            let mut by_id = tx.prepare_cached(
                "UPDATE messages SET status = ?3 WHERE id = ?1 AND peer = ?2
                     AND direction = 0 AND status <= 1",
            )?;
            // A contact acknowledges in the order we sent, so most batches
            // are runs of consecutive message numbers: one statement per
            // run instead of one per message, when every message of the run
            // is still unfinished (counted first in the queue index, so
            // that each message's outcome is known exactly).
            let mut count_run = tx.prepare_cached(
                "SELECT count(*) FROM messages INDEXED BY messages_queue
                 WHERE peer = ?1 AND direction = 0 AND status <= 1 AND id BETWEEN ?2 AND ?3",
            )?;
            // By the rowid range (the planner would walk `messages_by_peer`
            // and look each row up).
            let mut by_run = tx.prepare_cached(
                "UPDATE messages NOT INDEXED SET status = ?4 WHERE id BETWEEN ?2 AND ?3
                     AND peer = ?1 AND direction = 0 AND status <= 1",
            )?;
            // Only the queue is searched.
            let mut by_wire_id = tx.prepare_cached(
                "UPDATE messages SET status = ?3 WHERE id = (
                     SELECT id FROM messages INDEXED BY messages_queue
                     WHERE peer = ?1 AND direction = 0 AND status <= 1 AND wire_id = ?2
                     ORDER BY id DESC LIMIT 1)
                 RETURNING id",
            )?;
            let mut rest = acks;
            while let Some(&(_, accepted, message)) = rest.first() {
                let status = if accepted {
                    MessageStatus::Acknowledged
                } else {
                    MessageStatus::Failed(FailureReason::RefusedByPeer)
                };
                let number = status_number(&status);
                let run = match message {
                    Some(first) => rest
                        .iter()
                        .zip(first.0..)
                        .take_while(|&(&(_, run_accepted, run_message), id)| {
                            run_accepted == accepted && run_message == Some(MessageId(id))
                        })
                        .count(),
                    None => 1,
                };
                let (this, after) = rest.split_at(run);
                rest = after;
                if let (true, Some(first)) = (run > 1, message) {
                    let last = first.0 + (run as i64 - 1);
                    let unfinished: i64 =
                        count_run.query_row(params![peer, first.0, last], |row| row.get(0))?;
                    if unfinished == run as i64 {
                        by_run.execute(params![peer, first.0, last, number])?;
                        changed.extend((first.0..=last).map(|id| (MessageId(id), status.clone())));
                        continue;
                    }
                }
                for &(wire_id, _, message) in this {
                    let id: Option<i64> = match message {
                        Some(message) => (by_id.execute(params![message.0, peer, number])? == 1)
                            .then_some(message.0),
                        None => by_wire_id
                            .query_row(params![peer, i64::from(wire_id), number], |row| row.get(0))
                            .optional()?,
                    };
                    if let Some(id) = id {
                        changed.push((MessageId(id), status.clone()));
                    }
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// [`Store::acknowledge_batch`] for one acknowledgement.
    #[cfg(test)]
    pub(crate) fn acknowledge(
        &self,
        contact: &ServiceId,
        wire_id: u32,
        accepted: bool,
    ) -> Result<Option<MessageId>, StorageError> {
        Ok(self
            .acknowledge_batch(contact, &[(wire_id, accepted, None)])?
            .pop()
            .map(|(id, _)| id))
    }

    /// Stores messages from `contact` in one transaction, except resends
    /// of messages stored before (as `detector`, the connection's state,
    /// decides: see [`crate::resend`]).
    /// Returns, per message, its new number or `None` for a resend, which
    /// the caller acknowledges without delivering it again.
    pub(crate) fn record_incoming_batch(
        &self,
        contact: &ServiceId,
        messages: &[Incoming<'_>],
        detector: &mut ResendDetector,
    ) -> Result<Vec<Option<MessageId>>, StorageError> {
        let tx = self.atomic()?;
        let peer = self.peer(contact)?;
        let mut ids = Vec::with_capacity(messages.len());
        {
            // The oldest stored copy after a point: a scan of the peer's
            // received messages from there, at most the resend window.
            let mut copy = tx.prepare_cached(
                "SELECT id FROM messages INDEXED BY messages_by_peer
                 WHERE peer = ?1 AND direction = 1 AND id > ?4 AND wire_id = ?2 AND text = ?3
                 ORDER BY id LIMIT 1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (peer, direction, wire_id, text, time, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            // Looked up once per batch, and only if a message may be a resend.
            let mut window_start: Option<i64> = None;
            for message in messages {
                if message.first_on_channel {
                    detector.channel_opened();
                }
                if let Some(wire_id) = message
                    .wire_id
                    .filter(|_| detector.may_be_resend(message.wire_id))
                {
                    let window = match window_start {
                        Some(start) => start,
                        None => *window_start.insert(Self::resend_window_start(&tx, peer)?),
                    };
                    let stored: Option<i64> = copy
                        .query_row(
                            params![
                                peer,
                                i64::from(wire_id),
                                message.text,
                                detector.copy_after(window)
                            ],
                            |row| row.get(0),
                        )
                        .optional()?;
                    if let Some(stored) = stored {
                        detector.resent(stored);
                        ids.push(None);
                        continue;
                    }
                }
                insert.execute(params![
                    peer,
                    INCOMING,
                    message.wire_id.map(i64::from),
                    message.text,
                    to_millis(message.time),
                    STATUS_ACKNOWLEDGED
                ])?;
                let stored = tx.last_insert_rowid();
                detector.delivered(stored);
                ids.push(Some(MessageId(stored)));
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// The number of the oldest of `peer`'s last [`RESEND_WINDOW`]
    /// received messages, or 0 when it has sent fewer.
    fn resend_window_start(tx: &Connection, peer: i64) -> Result<i64, StorageError> {
        let mut oldest = tx.prepare_cached(
            "SELECT id FROM messages INDEXED BY messages_by_peer
             WHERE peer = ?1 AND direction = 1
             ORDER BY id DESC LIMIT 1 OFFSET ?2",
        )?;
        Ok(oldest
            .query_row(params![peer, RESEND_WINDOW - 1], |row| row.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// [`Store::record_incoming_batch`] for one message, the first of a
    /// new connection (so it is a resend if it repeats a stored message).
    #[cfg(test)]
    pub(crate) fn record_incoming(
        &self,
        contact: &ServiceId,
        wire_id: Option<u32>,
        text: &str,
        time: SystemTime,
    ) -> Result<Option<MessageId>, StorageError> {
        Ok(self
            .record_incoming_batch(
                contact,
                &[Incoming {
                    wire_id,
                    text,
                    time,
                    first_on_channel: true,
                }],
                &mut ResendDetector::new(),
            )?
            .pop()
            .flatten())
    }

    /// The conversation with `contact`: the `limit` newest messages older
    /// than `before` (or the newest of all), oldest first.
    pub(crate) fn history(
        &self,
        contact: &ServiceId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StorageError> {
        let Some(peer) = self.known_peer(contact)? else {
            return Ok(Vec::new());
        };
        let before = before.map_or(i64::MAX, |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Each direction is a range of the index, newest first; the newest
        // `limit` of both are the newest `limit` of their union.
        let mut statement = self.conn().prepare_cached(
            "SELECT id, direction, text, time, status FROM (
                 SELECT * FROM (
                     SELECT id, direction, text, time, status FROM messages
                     WHERE peer = ?1 AND direction = 0 AND id < ?2
                     ORDER BY id DESC LIMIT ?3)
                 UNION ALL
                 SELECT * FROM (
                     SELECT id, direction, text, time, status FROM messages
                     WHERE peer = ?1 AND direction = 1 AND id < ?2
                     ORDER BY id DESC LIMIT ?3))
             ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = statement.query_map(params![peer, before, limit], |row| {
            Ok(RawMessage {
                id: row.get(0)?,
                contact: None,
                direction: row.get(1)?,
                text: row.get(2)?,
                time: row.get(3)?,
                status: row.get(4)?,
            })
        })?;
        let mut messages = Vec::new();
        for row in rows {
            messages.push(row?.parse(contact)?);
        }
        messages.reverse();
        Ok(messages)
    }

    /// One message, by its number.
    pub(crate) fn message(&self, id: MessageId) -> Result<Option<Message>, StorageError> {
        let raw = self
            .conn()
            .query_row(
                "SELECT m.id, p.id, m.direction, m.text, m.time, m.status
                 FROM messages m JOIN peers p ON p.key = m.peer WHERE m.id = ?1",
                [id.0],
                |row| {
                    Ok(RawMessage {
                        id: row.get(0)?,
                        contact: Some(row.get(1)?),
                        direction: row.get(2)?,
                        text: row.get(3)?,
                        time: row.get(4)?,
                        status: row.get(5)?,
                    })
                },
            )
            .optional()?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let contact = parse_id(raw.contact.as_deref().unwrap_or_default())?;
        raw.parse(&contact).map(Some)
    }
}

impl Store {
    /// What the core starts from: the contact book, the blocked ids and
    /// the waiting requests. Messages that were on the wire when the last
    /// run ended are queued again (profiles written before "sent" moved
    /// out of the database kept it there; they are resent with the same
    /// ids).
    pub(crate) fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.conn().execute(
            "UPDATE messages INDEXED BY messages_queue SET status = ?1
             WHERE direction = 0 AND status <= 1 AND status = ?2",
            [STATUS_QUEUED, STATUS_SENT],
        )?;
        Ok(Snapshot {
            contacts: self.contacts()?,
            blocked: self.blocked()?,
            requests: self.incoming_requests()?,
            endpoints: self.endpoints()?,
        })
    }

    /// Runs jobs in order in one transaction, each all or nothing: a job
    /// that fails leaves no trace and the others go on. Returns them with
    /// their outcomes once the transaction is committed. If the commit
    /// itself fails, each job runs again in a transaction of its own, so
    /// that each gets its own outcome.
    pub(crate) fn run_batch(&self, mut jobs: Vec<StoreJob>) -> Vec<StoreDone> {
        #[cfg(test)]
        let _fault = FaultScope::begin(self);
        if jobs.len() > 1 {
            // A job changes its resend detector as it runs; a second run
            // must start from the first one's.
            let detectors: Vec<Option<ResendDetector>> = jobs
                .iter()
                .map(|job| match job {
                    StoreJob::RecordIncoming { detector, .. } => Some(detector.clone()),
                    _ => None,
                })
                .collect();
            match self.run_together(&mut jobs) {
                Ok(outcomes) => {
                    return jobs
                        .into_iter()
                        .zip(outcomes)
                        .map(|(job, outcome)| StoreDone { job, outcome })
                        .collect();
                }
                Err(error) => {
                    tracing::debug!(error = %ricochet_transport::ErrorChain(&error), "a batch of profile writes failed; running them one by one");
                    for (job, saved) in jobs.iter_mut().zip(detectors) {
                        if let (StoreJob::RecordIncoming { detector, .. }, Some(saved)) =
                            (job, saved)
                        {
                            *detector = saved;
                        }
                    }
                }
            }
        }
        jobs.into_iter()
            .map(|mut job| {
                let outcome = self
                    .run_alone(&mut job)
                    .map_err(|error| self.disk_full(error, &job));
                StoreDone { job, outcome }
            })
            .collect()
    }

    /// Runs all `jobs` in one transaction, without a savepoint per job:
    /// SQLite copies every page a savepoint changes into its
    /// sub-journal; without them one-process throughput went from about
    /// 33 000 to 55 000 messages/s (BENCHMARKS.md). So one failing job fails the batch, rolled back
    /// whole, and [`Store::run_batch`] runs each job alone.
    fn run_together(
        &self,
        jobs: &mut [StoreJob],
    ) -> Result<Vec<Result<Stored, StorageError>>, StorageError> {
        let pending = self.commit_policy(jobs)?;
        self.conn().execute_batch("BEGIN")?;
        self.in_batch.set(true);
        let outcomes: Result<Vec<Result<Stored, StorageError>>, StorageError> =
            jobs.iter_mut().map(|job| self.run(job).map(Ok)).collect();
        self.in_batch.set(false);
        let committed = outcomes.and_then(|outcomes| {
            self.injected_failure()?;
            self.conn().execute_batch("COMMIT")?;
            self.committed(&pending);
            Ok(outcomes)
        });
        if committed.is_err() {
            let _ = self.conn().execute_batch("ROLLBACK");
            self.forget_peers();
        }
        committed
    }

    /// Runs one job, all or nothing.
    fn run_alone(&self, job: &mut StoreJob) -> Result<Stored, StorageError> {
        let pending = self.commit_policy(std::slice::from_ref(job))?;
        let tx = self.atomic()?;
        let stored = self.run(job)?;
        self.injected_failure()?;
        tx.commit()?;
        self.committed(&pending);
        Ok(stored)
    }

    fn run(&self, job: &mut StoreJob) -> Result<Stored, StorageError> {
        Ok(match job {
            StoreJob::AddContact { row, .. } => {
                self.add_contact(row)?;
                Stored::Done
            }
            StoreJob::SetContactState {
                id,
                state,
                fail_unfinished,
            } => {
                self.set_contact_state(id, *state)?;
                if *fail_unfinished {
                    Stored::Failed(self.fail_unfinished(id)?)
                } else {
                    Stored::Done
                }
            }
            StoreJob::RemoveContact { id, .. } => Stored::Failed(self.remove_contact(id)?),
            StoreJob::SetUnansweredRequests { id, count } => {
                self.set_unanswered_requests(id, *count)?;
                Stored::Done
            }
            StoreJob::SetNickname { id, nickname, .. } => {
                self.set_nickname(id, nickname)?;
                Stored::Done
            }
            StoreJob::Block { id, .. } => {
                self.block(id)?;
                self.remove_endpoint(id)?;
                self.remove_incoming_request(id)?;
                Stored::Failed(self.fail_unfinished(id)?)
            }
            StoreJob::Unblock { id, .. } => {
                self.unblock(id)?;
                Stored::Done
            }
            StoreJob::UpsertRequest(request) => {
                self.upsert_incoming_request(request)?;
                Stored::Done
            }
            StoreJob::RemoveRequest(id) => {
                self.remove_incoming_request(id)?;
                Stored::Done
            }
            StoreJob::SetEndpoint { contact, endpoint } => {
                self.set_endpoint(contact, endpoint)?;
                Stored::Done
            }
            StoreJob::SetAcceptingRequests { accepting, .. } => {
                self.set_accepting_requests(*accepting)?;
                Stored::Done
            }
            StoreJob::Queue {
                contact,
                texts,
                time,
                ..
            } => Stored::Queued(self.queue(contact, texts, *time)?),
            StoreJob::FetchQueued {
                contact,
                after,
                limit,
                ..
            } => Stored::Fetched(self.queued_outgoing(contact, *after, *limit)?),
            StoreJob::Acknowledge { contact, acks } => {
                Stored::Changed(self.acknowledge_batch(contact, acks)?)
            }
            StoreJob::RecordIncoming {
                contact,
                messages,
                detector,
                ..
            } => {
                let incoming: Vec<Incoming<'_>> = messages
                    .iter()
                    .map(|m| Incoming {
                        wire_id: m.wire_id,
                        text: &m.text,
                        time: m.time,
                        first_on_channel: m.first_on_channel,
                    })
                    .collect();
                Stored::Recorded(self.record_incoming_batch(contact, &incoming, detector)?)
            }
            StoreJob::History {
                contact,
                before,
                limit,
                ..
            } => Stored::History(self.history(contact, *before, *limit)?),
            StoreJob::Message { id, .. } => Stored::Message(self.message(*id)?.map(Box::new)),
            StoreJob::CheckSpace(full) => {
                if !full.has_room() || !self.may_grow()? {
                    return Err(StorageError::DiskFull(DiskFull::at(
                        self.path.clone(),
                        full.needed,
                    )));
                }
                Stored::Done
            }
        })
    }

    /// Whether the database may grow by a page (`max_page_count`, which
    /// the simulation lowers to make a disk full).
    fn may_grow(&self) -> Result<bool, StorageError> {
        let conn = self.conn();
        let pages: i64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
        let limit: i64 = conn.pragma_query_value(None, "max_page_count", |row| row.get(0))?;
        Ok(pages < limit)
    }

    /// A write that failed for lack of room becomes a
    /// [`StorageError::DiskFull`] that says where, and about how much the
    /// job needed: its text and the two pages every write changes at least
    /// (a table's and an index's), each a frame of the log.
    fn disk_full(&self, error: StorageError, job: &StoreJob) -> StorageError {
        let full = match &error {
            StorageError::Database(rusqlite::Error::SqliteFailure(failure, _)) => {
                failure.code == ErrorCode::DiskFull
            }
            StorageError::Io { source, .. } => crate::error::is_disk_full(source),
            _ => false,
        };
        if !full {
            return error;
        }
        let page: i64 = self
            .conn()
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .unwrap_or(4096);
        let page = u64::try_from(page).unwrap_or(4096);
        // A frame of the log is a page and its 24-byte header.
        let needed = (job.text_bytes().div_ceil(page) + 2) * (page + 24);
        StorageError::DiskFull(DiskFull::at(self.path.clone(), needed))
    }
}

/// How many outgoing messages one `INSERT` of [`Store::queue`] stores: one
/// statement per row cost about as much as the row itself.
const QUEUE_ROWS_PER_INSERT: usize = 32;

/// The `INSERT` of `rows` outgoing messages: `?1` the peer, `?2` the time,
/// then a message id and a text per row.
fn queue_insert(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO messages (peer, direction, wire_id, text, time, status) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let first = 3 + 2 * row;
        sql.push_str(&format!(
            "(?1, {OUTGOING}, ?{first}, ?{}, ?2, {STATUS_QUEUED})",
            first + 1
        ));
    }
    sql
}

/// A `messages` row as read, before its fields are checked.
struct RawMessage {
    id: i64,
    /// The peer's id, when the query read it.
    contact: Option<String>,
    direction: i64,
    text: String,
    time: i64,
    status: i64,
}

impl RawMessage {
    /// The message, with `contact` as its peer.
    fn parse(self, contact: &ServiceId) -> Result<Message, StorageError> {
        let direction = match self.direction {
            OUTGOING => MessageDirection::Outgoing,
            INCOMING => MessageDirection::Incoming,
            other => {
                return Err(corrupt(format!(
                    "message {} has unknown direction {other}",
                    self.id
                )));
            }
        };
        Ok(Message {
            id: MessageId(self.id),
            contact: RicochetId(*contact),
            direction,
            text: self.text,
            time: from_millis(self.time),
            status: parse_status(self.status)?,
        })
    }
}

const fn generation_name(generation: Generation) -> &'static str {
    match generation {
        Generation::V2 => "v2",
        Generation::V3 => "v3",
    }
}

fn parse_id(text: &str) -> Result<ServiceId, StorageError> {
    ServiceId::from_canonical(text)
        .map_err(|error| corrupt(format!("stored id {text:?} is not a service id: {error}")))
}

const fn status_number(status: &MessageStatus) -> i64 {
    match status {
        MessageStatus::Queued => STATUS_QUEUED,
        MessageStatus::Sent => STATUS_SENT,
        MessageStatus::Acknowledged => STATUS_ACKNOWLEDGED,
        MessageStatus::Failed(FailureReason::RefusedByPeer) => STATUS_REFUSED,
        MessageStatus::Failed(FailureReason::ContactGone) => STATUS_GONE,
    }
}

fn parse_status(number: i64) -> Result<MessageStatus, StorageError> {
    match number {
        STATUS_QUEUED => Ok(MessageStatus::Queued),
        STATUS_SENT => Ok(MessageStatus::Sent),
        STATUS_ACKNOWLEDGED => Ok(MessageStatus::Acknowledged),
        STATUS_REFUSED => Ok(MessageStatus::Failed(FailureReason::RefusedByPeer)),
        STATUS_GONE => Ok(MessageStatus::Failed(FailureReason::ContactGone)),
        other => Err(corrupt(format!("unknown message status {other}"))),
    }
}

/// Milliseconds since the Unix epoch; earlier times count as 0.
fn to_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

/// The time `millis` milliseconds after the Unix epoch; negative (or
/// unrepresentable) values give the epoch.
fn from_millis(millis: i64) -> SystemTime {
    let since = Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    UNIX_EPOCH.checked_add(since).unwrap_or(UNIX_EPOCH)
}

/// Creates the database file with mode 0600 if it is missing, and takes
/// group and other permissions off it (and off a leftover journal) if it
/// has them. SQLite gives the files it creates next to the database the
/// database file's permissions.
#[cfg(unix)]
fn secure_files(path: &Path) -> Result<(), StorageError> {
    use std::fs::{OpenOptions, Permissions};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StorageError::Io { path, source }
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    let mode = file.metadata().map_err(io(path))?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io(path))?;
    }
    for suffix in ["-wal", "-journal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        match std::fs::metadata(&side) {
            Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&side, Permissions::from_mode(0o600))
                    .map_err(io(&side))?;
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(&side)(error)),
        }
    }
    Ok(())
}

/// Elsewhere the file is created by SQLite with the platform's defaults.
#[cfg(not(unix))]
fn secure_files(_path: &Path) -> Result<(), StorageError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    fn new_id() -> ServiceId {
        IdentityKey::generate(Generation::V3).unwrap().service_id()
    }

    fn contact(id: ServiceId, nickname: &str) -> ContactRow {
        ContactRow {
            id,
            nickname: nickname.to_owned(),
            state: ContactState::Contact,
            request_nickname: String::new(),
            request_message: String::new(),
            unanswered_requests: 0,
        }
    }

    fn next_wire_id(store: &Store, id: &ServiceId) -> i64 {
        store
            .conn()
            .query_row(
                "SELECT next_wire_id FROM contacts WHERE id = ?1",
                [id.to_string()],
                |row| row.get(0),
            )
            .unwrap()
    }

    fn texts(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|text| (*text).to_owned()).collect()
    }

    #[cfg(unix)]
    /// A new profile (in the returned directory) with two contacts.
    fn store_with_alice_and_bob() -> (tempfile::TempDir, Store, ServiceId, ServiceId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let (alice, bob) = (new_id(), new_id());
        store.add_contact(&contact(alice, "alice")).unwrap();
        store.add_contact(&contact(bob, "bob")).unwrap();
        (dir, store, alice, bob)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A time with whole milliseconds, which survives the round trip.
    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn migrates_a_new_file_and_keeps_data_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let alice = new_id();
        {
            let store = Store::open(&path).unwrap();
            let version: i64 = store
                .conn()
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .unwrap();
            assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());
            let journal: String = store
                .conn()
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .unwrap();
            assert_eq!(journal, "wal");
            assert_eq!(store.path(), path);
            store.add_contact(&contact(alice, "alice")).unwrap();
            store.queue(&alice, &texts(&["hi"]), at(5)).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.contacts().unwrap(), vec![contact(alice, "alice")]);
        let history = store.history(&alice, None, 10).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].text, "hi");
        assert_eq!(history[0].time, at(5));
        assert_eq!(history[0].contact, RicochetId(alice));
    }

    /// A contact's acknowledgements of ours commit without a sync up to
    /// [`MAX_UNSYNCED_ACKNOWLEDGEMENTS`]; past it, and whenever a job must
    /// be stable, the commit syncs (`synchronous` 2 = FULL, 1 = NORMAL).
    #[test]
    fn acknowledgements_commit_unsynced_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        let synchronous = |store: &Store| -> i64 {
            store
                .conn()
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .unwrap()
        };
        let acks = |n: usize| StoreJob::Acknowledge {
            contact: alice,
            acks: (0..n)
                .map(|i| (u32::try_from(i).unwrap(), true, None))
                .collect(),
        };
        assert_eq!(synchronous(&store), 2, "the opening commits sync");
        let step = |jobs: &[StoreJob]| {
            let pending = store.commit_policy(jobs).unwrap();
            let sync = pending.sync;
            store.committed(&pending);
            (sync, synchronous(&store), store.unsynced_acks.get())
        };
        // What a killed process left in the log may be unsynced: the first
        // acknowledgements after opening sync (and write, here).
        let pending = store.commit_policy(&[acks(1)]).unwrap();
        assert!(pending.sync);
        store.add_contact(&contact(alice, "alice")).unwrap();
        store.committed(&pending);
        assert_eq!(store.unsynced_acks.get(), 0);
        assert_eq!(step(&[acks(40)]), (false, 1, 40));
        assert_eq!(step(&[acks(24)]), (false, 1, 64));
        // One more would pass the bound: this commit syncs. Nothing changed,
        // so nothing was written and synced, and the count stays.
        assert_eq!(step(&[acks(1)]), (true, 2, 65));
        // A job that must be stable syncs, and its write syncs the log.
        let pending = store
            .commit_policy(&[StoreJob::RemoveRequest(alice), acks(1)])
            .unwrap();
        store.add_contact(&contact(alice, "alice")).unwrap();
        store.committed(&pending);
        assert_eq!((synchronous(&store), store.unsynced_acks.get()), (2, 0));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        match Store::open(&path) {
            Err(StorageError::NewerSchema { found, supported }) => {
                assert_eq!(found, 99);
                assert_eq!(supported, i64::try_from(MIGRATIONS.len()).unwrap());
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    }

    #[test]
    fn second_open_is_refused_while_the_first_is_alive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let first = Store::open(&path).unwrap();
        match Store::open(&path) {
            Err(StorageError::ProfileInUse { path: busy }) => assert_eq!(busy, path),
            other => panic!("expected ProfileInUse, got {other:?}"),
        }
        // Even a plain connection cannot read it.
        let conn = Connection::open(&path).unwrap();
        assert!(
            conn.query_row("SELECT count(*) FROM contacts", [], |row| row
                .get::<_, i64>(0))
                .is_err()
        );
        drop(conn);
        drop(first);
        Store::open(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let wal = dir.path().join("profile.db-wal");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(mode(&path), 0o600);
            store.block(&new_id()).unwrap();
            assert_eq!(mode(&path), 0o600);
            if wal.exists() {
                assert_eq!(mode(&wal), 0o600);
            }
            assert!(!dir.path().join("profile.db-shm").exists());
        }

        // A pre-existing, world-readable file (and journal) is fixed.
        let other = dir.path().join("other.db");
        std::fs::write(&other, b"").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
        let other_wal = dir.path().join("other.db-wal");
        std::fs::write(&other_wal, b"").unwrap();
        std::fs::set_permissions(&other_wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::open(&other).unwrap();
        store.block(&new_id()).unwrap();
        assert_eq!(mode(&other), 0o600);
        assert_eq!(mode(&other_wal), 0o600);
    }

    #[test]
    fn identities_round_trip_and_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let store = Store::open(&path).unwrap();
        assert!(store.identity(Generation::V3).unwrap().is_none());
        assert!(store.identity(Generation::V2).unwrap().is_none());

        let v3 = IdentityKey::generate(Generation::V3).unwrap();
        let v2 = IdentityKey::generate(Generation::V2).unwrap();
        store.insert_identity(&v3).unwrap();
        store.insert_identity(&v2).unwrap();
        assert!(
            store
                .insert_identity(&IdentityKey::generate(Generation::V3).unwrap())
                .is_err()
        );

        let again = store.identity(Generation::V3).unwrap().unwrap();
        assert_eq!(again.service_id(), v3.service_id());
        let again = store.identity(Generation::V2).unwrap().unwrap();
        assert_eq!(again.service_id(), v2.service_id());

        let debug = format!("{store:?}");
        assert!(debug.contains("profile.db"));
        for key in [&v3, &v2] {
            let blob = key.to_tor_key_blob().unwrap();
            let (_, base64) = blob.split_once(':').unwrap();
            assert!(!debug.contains(base64));
        }
    }

    #[test]
    fn bad_rows_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        store
            .conn()
            .execute(
                "INSERT INTO identities (generation, key) VALUES ('v3', 'ED25519-V3:secret')",
                [],
            )
            .unwrap();
        let error = store.identity(Generation::V3).unwrap_err();
        assert!(matches!(error, StorageError::Corrupt { .. }));
        assert!(!error.to_string().contains("secret"));

        store
            .conn()
            .execute(
                "INSERT INTO blocked (id, blocked_at) VALUES ('NOT-AN-ID', 0)",
                [],
            )
            .unwrap();
        assert!(matches!(store.blocked(), Err(StorageError::Corrupt { .. })));
    }

    #[test]
    fn contact_upsert_keeps_numbering_and_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        let bob = new_id();
        store.add_contact(&contact(alice, "alice")).unwrap();
        std::thread::sleep(Duration::from_millis(3));
        store.add_contact(&contact(bob, "bob")).unwrap();
        let first = next_wire_id(&store, &alice);
        store.queue(&alice, &texts(&["a", "b"]), at(1)).unwrap();
        let advanced = next_wire_id(&store, &alice);
        assert_eq!(advanced, (first + 2) % (1 << 32));

        let mut pending = contact(alice, "Alice");
        pending.state = ContactState::RequestPending;
        pending.request_nickname = "me".to_owned();
        pending.request_message = "hello".to_owned();
        store.add_contact(&pending).unwrap();
        assert_eq!(next_wire_id(&store, &alice), advanced);
        assert_eq!(
            store.contacts().unwrap(),
            vec![pending.clone(), contact(bob, "bob")]
        );

        assert!(
            store
                .set_contact_state(&alice, ContactState::Rejected)
                .unwrap()
        );
        assert!(store.set_nickname(&alice, "al").unwrap());
        let stranger = new_id();
        assert!(
            !store
                .set_contact_state(&stranger, ContactState::Contact)
                .unwrap()
        );
        assert!(!store.set_nickname(&stranger, "x").unwrap());
        let row = &store.contacts().unwrap()[0];
        assert_eq!(row.state, ContactState::Rejected);
        assert_eq!(row.nickname, "al");
        assert_eq!(next_wire_id(&store, &alice), advanced);
    }

    #[test]
    fn queued_messages_get_consecutive_wrapping_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        store.add_contact(&contact(alice, "alice")).unwrap();
        store
            .conn()
            .execute(
                "UPDATE contacts SET next_wire_id = ?1",
                [i64::from(u32::MAX - 1)],
            )
            .unwrap();
        let queued = store
            .queue(&alice, &texts(&["one", "two", "three"]), at(7))
            .unwrap();
        let wire_ids: Vec<u32> = queued.iter().map(|(_, wire_id)| *wire_id).collect();
        assert_eq!(wire_ids, [u32::MAX - 1, u32::MAX, 0]);
        assert!(queued.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_eq!(next_wire_id(&store, &alice), 1);

        let unfinished = store.unfinished_outgoing(&alice).unwrap();
        assert_eq!(unfinished.len(), 3);
        assert_eq!(unfinished[2].id, queued[2].0);
        assert_eq!(unfinished[2].wire_id, 0);
        assert_eq!(unfinished[2].text, "three");
        assert_eq!(unfinished[2].time, at(7));
        assert_eq!(unfinished[2].status, MessageStatus::Queued);

        // Not a contact: nothing is stored.
        let stranger = new_id();
        assert!(matches!(
            store.queue(&stranger, &texts(&["x"]), at(1)),
            Err(StorageError::Corrupt { .. })
        ));
        assert!(store.history(&stranger, None, 10).unwrap().is_empty());

        // Jobs of one batch share a transaction, each all or nothing: one
        // failing leaves the others done.
        let bob = new_id();
        store.add_contact(&contact(bob, "bob")).unwrap();
        let queue = |contact: ServiceId, parts: &[&str]| StoreJob::Queue {
            contact,
            texts: texts(parts),
            parts: vec![1; parts.len()],
            time: at(8),
            call: 0,
        };
        let done = store.run_batch(vec![
            queue(alice, &["four", "five"]),
            queue(stranger, &["y"]),
            queue(bob, &["b1"]),
        ]);
        let wire_ids = |done: &StoreDone| match &done.outcome {
            Ok(Stored::Queued(queued)) => queued.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
            other => panic!("not queued: {other:?}"),
        };
        assert_eq!(wire_ids(&done[0]), [1, 2]);
        assert!(matches!(done[1].outcome, Err(StorageError::Corrupt { .. })));
        assert_eq!(wire_ids(&done[2]).len(), 1);
        assert_eq!(next_wire_id(&store, &alice), 3);
        assert!(store.history(&stranger, None, 10).unwrap().is_empty());

        // The queue, oldest first, from a point on, up to a limit.
        let first = store.queued_outgoing(&alice, None, 2).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].id, queued[0].0);
        let rest = store
            .queued_outgoing(&alice, Some(first[1].id), 100)
            .unwrap();
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0].text, "three");
        assert!(
            store
                .queued_outgoing(&alice, Some(rest[2].id), 100)
                .unwrap()
                .is_empty()
        );
        // An acknowledgement by number needs the right contact.
        let changed = store
            .acknowledge_batch(&bob, &[(0, true, Some(rest[2].id))])
            .unwrap();
        assert!(changed.is_empty());
        let changed = store
            .acknowledge_batch(&alice, &[(0, true, Some(rest[2].id))])
            .unwrap();
        assert_eq!(changed, [(rest[2].id, MessageStatus::Acknowledged)]);
    }

    #[test]
    fn statuses_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        store.add_contact(&contact(alice, "alice")).unwrap();
        let queued = store.queue(&alice, &texts(&["x"]), at(1)).unwrap();
        let id = queued[0].0;
        for status in [
            MessageStatus::Sent,
            MessageStatus::Acknowledged,
            MessageStatus::Failed(FailureReason::RefusedByPeer),
            MessageStatus::Failed(FailureReason::ContactGone),
            MessageStatus::Queued,
        ] {
            store.set_status(&[id], &status).unwrap();
            assert_eq!(store.message(id).unwrap().unwrap().status, status);
        }
        assert!(store.message(MessageId(12345)).unwrap().is_none());
    }

    #[test]
    fn acknowledgements() {
        let (_dir, store, alice, bob) = store_with_alice_and_bob();
        let queued = store.queue(&alice, &texts(&["a", "b"]), at(1)).unwrap();
        let ids: Vec<MessageId> = queued.iter().map(|(id, _)| *id).collect();
        store.set_status(&ids, &MessageStatus::Sent).unwrap();
        let (first, first_wire) = queued[0];
        let (second, second_wire) = queued[1];

        // Another contact's acknowledgement does not touch alice's message.
        assert_eq!(store.acknowledge(&bob, first_wire, true).unwrap(), None);
        assert_eq!(
            store.acknowledge(&alice, first_wire, true).unwrap(),
            Some(first)
        );
        assert_eq!(store.acknowledge(&alice, first_wire, true).unwrap(), None);
        assert_eq!(
            store.message(first).unwrap().unwrap().status,
            MessageStatus::Acknowledged
        );

        assert_eq!(
            store.acknowledge(&alice, second_wire, false).unwrap(),
            Some(second)
        );
        assert_eq!(
            store.message(second).unwrap().unwrap().status,
            MessageStatus::Failed(FailureReason::RefusedByPeer)
        );
        assert_eq!(
            store
                .acknowledge(&alice, second_wire.wrapping_add(10), true)
                .unwrap(),
            None
        );
        assert!(store.unfinished_outgoing(&alice).unwrap().is_empty());
    }

    #[test]
    fn acknowledged_runs_change_exactly_the_unfinished_messages() {
        let (_dir, store, alice, bob) = store_with_alice_and_bob();
        let queued = store
            .queue(&alice, &texts(&["a", "b", "c", "d", "e", "f"]), at(1))
            .unwrap();
        let ack = |index: usize, accepted: bool| (queued[index].1, accepted, Some(queued[index].0));
        let status = |index: usize| store.message(queued[index].0).unwrap().unwrap().status;

        // A whole run in one statement; another contact's run changes nothing.
        assert!(
            store
                .acknowledge_batch(&bob, &[ack(0, true), ack(1, true)])
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .acknowledge_batch(&alice, &[ack(0, true), ack(1, true)])
                .unwrap(),
            vec![
                (queued[0].0, MessageStatus::Acknowledged),
                (queued[1].0, MessageStatus::Acknowledged)
            ]
        );
        // A run over a message acknowledged before reports only the others,
        // and a refusal inside a run of acceptances is its own run.
        let refused = MessageStatus::Failed(FailureReason::RefusedByPeer);
        assert_eq!(
            store
                .acknowledge_batch(
                    &alice,
                    &[
                        ack(1, true),
                        ack(2, true),
                        ack(3, false),
                        ack(4, true),
                        ack(5, true)
                    ]
                )
                .unwrap(),
            vec![
                (queued[2].0, MessageStatus::Acknowledged),
                (queued[3].0, refused.clone()),
                (queued[4].0, MessageStatus::Acknowledged),
                (queued[5].0, MessageStatus::Acknowledged)
            ]
        );
        assert_eq!(status(1), MessageStatus::Acknowledged);
        assert_eq!(status(3), refused);
        assert!(store.unfinished_outgoing(&alice).unwrap().is_empty());
        // Repeats change nothing.
        assert!(
            store
                .acknowledge_batch(&alice, &[ack(4, true), ack(5, true)])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn incoming_resends_are_dropped_within_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        let bob = new_id();
        let first = store
            .record_incoming(&alice, Some(7), "hello", at(1))
            .unwrap();
        assert!(first.is_some());
        assert_eq!(
            store
                .record_incoming(&alice, Some(7), "hello", at(2))
                .unwrap(),
            None
        );
        // Same id, other text: a new message.
        assert!(
            store
                .record_incoming(&alice, Some(7), "hello again", at(3))
                .unwrap()
                .is_some()
        );
        // Same id and text from someone else: a new message.
        assert!(
            store
                .record_incoming(&bob, Some(7), "hello", at(3))
                .unwrap()
                .is_some()
        );
        // Without an id there is nothing to compare.
        assert!(
            store
                .record_incoming(&alice, None, "x", at(4))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .record_incoming(&alice, None, "x", at(4))
                .unwrap()
                .is_some()
        );

        let message = store.message(first.unwrap()).unwrap().unwrap();
        assert_eq!(message.direction, MessageDirection::Incoming);
        assert_eq!(message.status, MessageStatus::Acknowledged);
        assert_eq!(message.time, at(1));

        // A resend repeats up to a sender's window of messages: a copy
        // among the last RESEND_WINDOW is dropped (rule 4 of crate::resend).
        for wire_id in 0..RESEND_WINDOW - 3 {
            store
                .record_incoming(
                    &alice,
                    Some(1000 + u32::try_from(wire_id).unwrap()),
                    "filler",
                    at(5),
                )
                .unwrap()
                .unwrap();
        }
        assert!(
            store
                .record_incoming(&alice, Some(7), "hello again", at(6))
                .unwrap()
                .is_none()
        );
        // Further back it is a new message, and so is anything with id 0.
        for wire_id in 0..10 {
            store
                .record_incoming(&alice, Some(5000 + wire_id), "more", at(6))
                .unwrap()
                .unwrap();
        }
        assert!(
            store
                .record_incoming(&alice, Some(7), "hello", at(7))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .record_incoming(&alice, Some(0), "ok", at(7))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .record_incoming(&alice, Some(0), "ok", at(7))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn removing_a_contact_fails_its_unfinished_messages() {
        let (_dir, store, alice, bob) = store_with_alice_and_bob();
        let queued = store
            .queue(&alice, &texts(&["acked", "sent", "queued"]), at(1))
            .unwrap();
        let bobs = store.queue(&bob, &texts(&["b"]), at(1)).unwrap();
        store
            .set_status(&[queued[0].0, queued[1].0], &MessageStatus::Sent)
            .unwrap();
        store
            .acknowledge(&alice, queued[0].1, true)
            .unwrap()
            .unwrap();
        store.record_incoming(&alice, Some(1), "in", at(2)).unwrap();

        let gone = store.remove_contact(&alice).unwrap();
        assert_eq!(gone, vec![queued[1].0, queued[2].0]);
        assert_eq!(store.contacts().unwrap(), vec![contact(bob, "bob")]);
        let statuses: Vec<MessageStatus> = store
            .history(&alice, None, 10)
            .unwrap()
            .into_iter()
            .map(|message| message.status)
            .collect();
        assert_eq!(
            statuses,
            [
                MessageStatus::Acknowledged,
                MessageStatus::Failed(FailureReason::ContactGone),
                MessageStatus::Failed(FailureReason::ContactGone),
                MessageStatus::Acknowledged,
            ]
        );
        assert_eq!(
            store.message(bobs[0].0).unwrap().unwrap().status,
            MessageStatus::Queued
        );

        assert_eq!(store.fail_unfinished(&bob).unwrap(), vec![bobs[0].0]);
        assert!(store.fail_unfinished(&bob).unwrap().is_empty());
        assert!(store.contacts().unwrap().len() == 1);
    }

    #[test]
    fn history_pages_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        store.add_contact(&contact(alice, "alice")).unwrap();
        let mut expected = Vec::new();
        for n in 0..5_u64 {
            let text = format!("m{n}");
            let id = if n % 2 == 0 {
                store
                    .queue(&alice, std::slice::from_ref(&text), at(n))
                    .unwrap()[0]
                    .0
            } else {
                store
                    .record_incoming(&alice, Some(0), &text, at(n))
                    .unwrap()
                    .unwrap()
            };
            expected.push((id, text));
        }
        let page = |before: Option<MessageId>, limit| -> Vec<String> {
            store
                .history(&alice, before, limit)
                .unwrap()
                .into_iter()
                .map(|message| message.text)
                .collect()
        };
        assert_eq!(page(None, 2), ["m3", "m4"]);
        assert_eq!(page(Some(expected[3].0), 2), ["m1", "m2"]);
        assert_eq!(page(Some(expected[1].0), 2), ["m0"]);
        assert!(page(Some(expected[0].0), 2).is_empty());
        assert_eq!(page(None, usize::MAX).len(), 5);
        let all = store.history(&alice, None, 10).unwrap();
        assert_eq!(all[0].direction, MessageDirection::Outgoing);
        assert_eq!(all[1].direction, MessageDirection::Incoming);
        assert!(store.history(&new_id(), None, 10).unwrap().is_empty());
    }

    /// A profile of schema 3 (messages keyed by the peer's id as text,
    /// statuses as words) keeps every message, number, status and the
    /// queue when it moves to schema 4.
    #[test]
    fn schema_3_messages_survive_the_move_to_numbered_peers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let (alice, bob) = (new_id(), new_id());
        {
            let conn = Connection::open(&path).unwrap();
            for batch in &MIGRATIONS[..3] {
                conn.execute_batch(batch).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            for (id, next) in [(alice, 10), (bob, 20)] {
                conn.execute(
                    "INSERT INTO contacts (id, nickname, state, next_wire_id, added_at)
                     VALUES (?1, '', 'contact', ?2, 0)",
                    params![id.to_string(), next],
                )
                .unwrap();
            }
            let rows: [(&ServiceId, i64, i64, &str, &str); 6] = [
                (&bob, 0, 17, "to bob", "acknowledged"),
                (&alice, 0, 7, "a queued", "queued"),
                (&alice, 1, 3, "from alice", "acknowledged"),
                (&alice, 0, 8, "a sent", "sent"),
                (&alice, 0, 9, "a refused", "refused"),
                (&bob, 0, 18, "b gone", "gone"),
            ];
            for (id, direction, wire_id, text, status) in rows {
                conn.execute(
                    "INSERT INTO messages (contact, direction, wire_id, text, time, status)
                     VALUES (?1, ?2, ?3, ?4, 5, ?5)",
                    params![id.to_string(), direction, wire_id, text, status],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());
        // The snapshot queues "sent" again, as before.
        store.snapshot().unwrap();
        let history = store.history(&alice, None, 10).unwrap();
        let seen: Vec<(i64, &str, MessageStatus)> = history
            .iter()
            .map(|m| (m.id.0, m.text.as_str(), m.status.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                (2, "a queued", MessageStatus::Queued),
                (3, "from alice", MessageStatus::Acknowledged),
                (4, "a sent", MessageStatus::Queued),
                (
                    5,
                    "a refused",
                    MessageStatus::Failed(FailureReason::RefusedByPeer)
                ),
            ]
        );
        assert_eq!(history[1].direction, MessageDirection::Incoming);
        assert!(history.iter().all(|m| m.contact == RicochetId(alice)));
        let gone = store.message(MessageId(6)).unwrap().unwrap();
        assert_eq!(gone.contact, RicochetId(bob));
        assert_eq!(
            gone.status,
            MessageStatus::Failed(FailureReason::ContactGone)
        );
        let queue: Vec<u32> = store
            .queued_outgoing(&alice, None, 10)
            .unwrap()
            .iter()
            .map(|row| row.wire_id)
            .collect();
        assert_eq!(queue, [7, 8]);
        // New messages are numbered after the old ones, and acknowledged
        // by id through the queue.
        let queued = store.queue(&bob, &texts(&["new"]), at(9)).unwrap();
        assert_eq!(queued, [(MessageId(7), 20)]);
        assert_eq!(
            store.acknowledge(&alice, 8, true).unwrap(),
            Some(MessageId(4))
        );
        assert_eq!(store.queued_outgoing(&alice, None, 10).unwrap().len(), 1);
    }

    #[test]
    fn blocked_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        let bob = new_id();
        assert!(!store.is_blocked(&alice).unwrap());
        store.block(&alice).unwrap();
        store.block(&alice).unwrap();
        std::thread::sleep(Duration::from_millis(3));
        store.block(&bob).unwrap();
        assert!(store.is_blocked(&alice).unwrap());
        assert_eq!(store.blocked().unwrap(), vec![alice, bob]);
        assert!(store.unblock(&alice).unwrap());
        assert!(!store.unblock(&alice).unwrap());
        assert_eq!(store.blocked().unwrap(), vec![bob]);
    }

    #[test]
    fn incoming_requests_are_replaced_by_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("profile.db")).unwrap();
        let alice = new_id();
        let bob = new_id();
        let request = |id: ServiceId, nickname: &str, millis| ContactRequest {
            from: RicochetId(id),
            nickname: nickname.to_owned(),
            message: format!("from {nickname}"),
            received_at: at(millis),
        };
        store
            .upsert_incoming_request(&request(alice, "alice", 10))
            .unwrap();
        store
            .upsert_incoming_request(&request(bob, "bob", 20))
            .unwrap();
        store
            .upsert_incoming_request(&request(alice, "alice2", 30))
            .unwrap();
        assert_eq!(
            store.incoming_requests().unwrap(),
            vec![request(bob, "bob", 20), request(alice, "alice2", 30)]
        );
        assert!(store.remove_incoming_request(&bob).unwrap());
        assert!(!store.remove_incoming_request(&bob).unwrap());
        assert_eq!(
            store.incoming_requests().unwrap(),
            vec![request(alice, "alice2", 30)]
        );
    }

    /// The structural check of "never on the caller's runtime": in debug
    /// builds (every test run), a store used on a runtime thread panics.
    #[cfg(debug_assertions)]
    #[tokio::test(flavor = "current_thread")]
    #[should_panic(expected = "async runtime thread")]
    async fn a_store_call_on_a_runtime_thread_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let _ = Store::open(&dir.path().join("profile.db"));
    }

    #[test]
    fn times_before_the_epoch_clamp_to_it() {
        assert_eq!(to_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(to_millis(at(1234)), 1234);
        assert_eq!(from_millis(-5), UNIX_EPOCH);
        assert_eq!(from_millis(1234), at(1234));
    }
}
