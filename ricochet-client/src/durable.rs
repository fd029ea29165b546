//! Making a new name on disk stable: on Unix a created or renamed file or
//! directory survives a power cut only once the directory holding it is
//! synced (the profile directory, a finished download). And how much room
//! a filesystem has left, for [`crate::DiskFull`].

use std::path::Path;

/// Syncs the directory that holds `path`, so that its entry is stable.
/// A blocking call: run it on the store thread or with `spawn_blocking`.
#[cfg(unix)]
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}

/// Elsewhere a directory cannot be opened to be synced; nothing to do.
#[cfg(not(unix))]
pub(crate) fn sync_parent(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The bytes an unprivileged process may still write on the filesystem
/// holding `path` (a file or directory), if the platform says.
#[cfg(unix)]
pub(crate) fn available_space(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Elsewhere: unknown.
#[cfg(not(unix))]
pub(crate) fn available_space(_path: &Path) -> Option<u64> {
    None
}
