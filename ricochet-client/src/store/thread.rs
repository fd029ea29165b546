//! The store's own thread: every database call of a running client happens
//! here, never on the application's async runtime, so an application on a
//! `current_thread` runtime stays responsive while SQLite commits and
//! checkpoints.
//!
//! The driver sends the jobs of each turn of the core as one batch; the
//! thread takes every batch waiting, runs them in one transaction
//! ([`Store::run_batch`]) and sends them back, done, after the commit.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use ricochet_identity::{Generation, IdentityKey};
use tokio::sync::{mpsc, oneshot};

use super::{PrivateMode, Store};
use crate::core::io::{Snapshot, StoreDone, StoreJob};
use crate::error::{ClientError, StorageError};
use crate::import::{ImportError, RefreshProfile};

/// Most jobs run in one transaction; more wait for the next one.
const MAX_BATCH: usize = 4096;
/// How long the thread keeps looking for more work after a batch before it
/// sleeps. A client that sends one message at a time gives the next job
/// within this; waking a sleeping thread instead costs a sequential sender
/// about a quarter of its throughput (BENCHMARKS.md). The thread yields
/// while it looks, so it takes no time from threads with work.
const LINGER: Duration = Duration::from_micros(100);

/// Sends work to the store thread. Dropping it lets the thread finish the
/// work it has and close the database.
#[derive(Debug)]
pub(crate) struct StoreHandle {
    jobs: std_mpsc::Sender<Vec<StoreJob>>,
}

impl StoreHandle {
    /// Queues jobs, to run after every job queued before them. Gives them
    /// back if the thread is gone (it panicked).
    pub(crate) fn submit(&self, jobs: Vec<StoreJob>) -> Result<(), Vec<StoreJob>> {
        self.jobs.send(jobs).map_err(|refused| refused.0)
    }
}

/// The error of work that reached no store: its thread is gone.
pub(crate) fn gone() -> StorageError {
    StorageError::Io {
        path: PathBuf::from(crate::config::PROFILE_DATABASE),
        source: std::io::Error::other("the profile database's thread has stopped"),
    }
}

/// An open profile.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) store: StoreHandle,
    /// Finished jobs, in the order they were submitted; ends when the
    /// thread ends.
    pub(crate) done: mpsc::UnboundedReceiver<Vec<StoreDone>>,
    /// Our identities, in the order of the generations asked for.
    pub(crate) identities: Vec<IdentityKey>,
    /// Private mode, for a profile with a v3 identity.
    pub(crate) private: Option<PrivateMode>,
    pub(crate) snapshot: Snapshot,
}

/// Opens (or creates) the profile in `profile_dir` on a new thread: the
/// database, our identity for each of `generations` (the stored one, else
/// the given one of `keys`, else a new one), and what it holds.
pub(crate) async fn open(
    profile_dir: PathBuf,
    database: &str,
    generations: Vec<Generation>,
    keys: Vec<IdentityKey>,
    import: Option<Import>,
) -> Result<Opened, ClientError> {
    let path = profile_dir.join(database);
    let (jobs_tx, jobs_rx) = std_mpsc::channel::<Vec<StoreJob>>();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("ricochet-store".to_owned())
        .spawn(move || {
            let store = match prepare(&profile_dir, &path, &generations, keys, import) {
                Ok((store, prepared)) => {
                    if ready_tx.send(Ok(prepared)).is_err() {
                        return;
                    }
                    store
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            serve(&store, &jobs_rx, &done_tx);
        });
    if let Err(source) = spawned {
        return Err(ClientError::Storage(StorageError::Io {
            path: PathBuf::from(database),
            source,
        }));
    }
    let (identities, private, snapshot) = ready_rx.await.map_err(|_| ClientError::Shutdown)??;
    Ok(Opened {
        store: StoreHandle { jobs: jobs_tx },
        done: done_rx,
        identities,
        private,
        snapshot,
    })
}

/// On the store thread: the directory, the database, the identities.
fn prepare(
    profile_dir: &Path,
    path: &Path,
    generations: &[Generation],
    keys: Vec<IdentityKey>,
    import: Option<Import>,
) -> Result<(Store, Prepared), ClientError> {
    // A profile that cannot be imported leaves nothing behind: it is read
    // before anything is created, and a new profile whose start fails
    // after that is removed again (nothing of it was handed out yet).
    let refresh = import
        .map(|import| RefreshProfile::read(&import.path, &import.own_nickname))
        .transpose()?;
    let new_dir = !profile_dir.exists();
    let new_database = !path.exists();
    let prepared = open_profile(profile_dir, path, generations, keys, refresh.as_ref());
    if prepared.is_err() {
        if new_dir {
            let _ = std::fs::remove_dir_all(profile_dir);
        } else if new_database {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut file = path.as_os_str().to_owned();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
    prepared
}

/// Opens (or creates) the profile, takes in `refresh`, and reads what the
/// client starts with.
fn open_profile(
    profile_dir: &Path,
    path: &Path,
    generations: &[Generation],
    mut keys: Vec<IdentityKey>,
    refresh: Option<&RefreshProfile>,
) -> Result<(Store, Prepared), ClientError> {
    create_profile_dir(profile_dir)?;
    let store = Store::open(path)?;
    if let Some(refresh) = refresh {
        import_refresh(&store, refresh)?;
    }
    let mut identities = Vec::new();
    for &generation in generations {
        let given = keys
            .iter()
            .position(|k| k.generation() == generation)
            .map(|index| keys.swap_remove(index));
        let key = match store.identity(generation)? {
            Some(stored) => {
                if let Some(given) = given
                    && given.service_id() != stored.service_id()
                {
                    return Err(ClientError::IdentityMismatch { generation });
                }
                stored
            }
            None => {
                let key = match given {
                    Some(given) => given,
                    None => IdentityKey::generate(generation)?,
                };
                store.insert_identity(&key)?;
                key
            }
        };
        identities.push(key);
    }
    let private = if generations.contains(&Generation::V3) {
        Some(store.private_mode()?)
    } else {
        None
    };
    let snapshot = store.snapshot()?;
    Ok((store, (identities, private, snapshot)))
}

/// What the store thread hands over once the profile is open.
type Prepared = (Vec<IdentityKey>, Option<PrivateMode>, Snapshot);

/// A Ricochet Refresh profile to import into a new profile.
#[derive(Debug)]
pub(crate) struct Import {
    /// Refresh's profile directory or its `ricochet.json`.
    pub(crate) path: PathBuf,
    /// The nickname our pending requests suggest for us.
    pub(crate) own_nickname: String,
}

/// Takes the identity and contacts of a Refresh profile into `store`, if it
/// has no identity yet. A profile that has the same identity took them
/// before (a client started with the same import again): nothing to do.
fn import_refresh(store: &Store, refresh: &RefreshProfile) -> Result<(), ClientError> {
    let theirs = refresh.identity.service_id();
    match store.identity(Generation::V3)? {
        Some(ours) if ours.service_id() == theirs => Ok(()),
        Some(ours) => Err(ImportError::ProfileInUse {
            ours: Box::new(ours.service_id().into()),
            theirs: Box::new(theirs.into()),
        }
        .into()),
        None => {
            store.import_refresh(refresh)?;
            tracing::info!(
                id = %crate::scrub::Id(crate::RicochetId::from(theirs)),
                contacts = refresh.contacts.len(),
                requests = refresh.requests.len(),
                blocked = refresh.blocked.len(),
                "imported a Ricochet Refresh profile"
            );
            Ok(())
        }
    }
}

/// Creates the profile directory (0700) if it is missing (one that exists
/// is made private), and makes its name stable: the identity stored in it
/// is reported at once, and a power cut must not take the whole directory
/// away afterwards.
fn create_profile_dir(path: &Path) -> Result<(), ClientError> {
    let error = |source| ClientError::ProfileDirectory {
        path: path.to_owned(),
        source,
    };
    // The directories this creates, innermost first: each one's name is
    // in its parent, which must be synced after it is created.
    let created: Vec<&Path> = path.ancestors().take_while(|dir| !dir.exists()).collect();
    if created.is_empty() {
        return make_private(path).map_err(error);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(error)?;
    for dir in created.iter().rev() {
        crate::durable::sync_parent(dir).map_err(error)?;
    }
    Ok(())
}

/// An existing profile directory that others may read or enter (it holds
/// our keys, our contacts and our messages) is made ours alone (0700); one
/// we cannot change (another user's) is refused.
#[cfg(unix)]
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "it is open to other users (mode {:o}) and cannot be made private ({e}); \
                     run chmod 700 on it",
                mode & 0o777
            ),
        )
    })?;
    tracing::warn!(
        mode = format_args!("{:o}", mode & 0o777),
        "the profile directory was open to other users; it is now private (0700)"
    );
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Runs batches until the driver hangs up. Every batch waiting is run in
/// one transaction (group commit), up to [`MAX_BATCH`] jobs.
fn serve(
    store: &Store,
    jobs: &std_mpsc::Receiver<Vec<StoreJob>>,
    done: &mpsc::UnboundedSender<Vec<StoreDone>>,
) {
    let mut waiting: Option<Vec<StoreJob>> = None;
    loop {
        let mut batch = match waiting.take() {
            Some(batch) => batch,
            None => match next_batch(jobs) {
                Some(batch) => batch,
                None => return,
            },
        };
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(more) if batch.len() + more.len() <= MAX_BATCH => batch.extend(more),
                Ok(more) => {
                    waiting = Some(more);
                    break;
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        if done.send(store.run_batch(batch)).is_err() {
            return;
        }
    }
}

/// The next batch of work: looked for during [`LINGER`], then waited for.
/// `None` once the driver hung up.
fn next_batch(jobs: &std_mpsc::Receiver<Vec<StoreJob>>) -> Option<Vec<StoreJob>> {
    let until = Instant::now() + LINGER;
    while Instant::now() < until {
        match jobs.try_recv() {
            Ok(batch) => return Some(batch),
            Err(std_mpsc::TryRecvError::Disconnected) => return None,
            Err(std_mpsc::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    jobs.recv().ok()
}
