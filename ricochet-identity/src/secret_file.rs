//! Writing secrets to disk: atomically and readable by the owner only.

use std::io::{self, Write as _};
use std::path::Path;

/// Writes `contents` to `path` atomically, with file mode 0600 on Unix.
///
/// The data goes to a new temporary file in the same directory (created with
/// mode 0600 from the start, so the secret is never readable by others, not
/// even briefly), is flushed to disk, and then renamed over `path`. A reader
/// therefore sees either the old file or the complete new one, never a torn
/// write; a crash leaves at most a stray temporary file. An existing file at
/// `path` is replaced.
pub fn write_secret_file(path: impl AsRef<Path>, contents: &[u8]) -> io::Result<()> {
    let path = path.as_ref();
    let (file, dir) = private_temp_file(path, contents)?;
    file.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Like [`write_secret_file`], but never replaces a file: if `path` exists,
/// it fails with [`io::ErrorKind::AlreadyExists`] and leaves it as it was.
/// The check and the write are one step (a hard link, or an exclusive
/// rename), so two writers racing for one path cannot both win.
pub fn write_new_secret_file(path: impl AsRef<Path>, contents: &[u8]) -> io::Result<()> {
    let path = path.as_ref();
    let (file, dir) = private_temp_file(path, contents)?;
    file.persist_noclobber(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// `contents` in a new owner-only temporary file next to `path`, on disk.
fn private_temp_file<'a>(
    path: &'a Path,
    contents: &[u8],
) -> io::Result<(tempfile::NamedTempFile, &'a Path)> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ricochet-secret-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    Ok((file, dir))
}

/// Makes the rename durable: on Unix a rename is only on disk once the
/// directory itself is synced.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn replaces_atomically_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_secret_file(&path, b"first").unwrap();
        write_secret_file(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary files are left behind.
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn a_new_file_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new_secret_file(&path, b"first").unwrap();
        let error = write_new_secret_file(&path, b"second").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }
}
