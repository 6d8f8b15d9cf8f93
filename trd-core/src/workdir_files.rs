//! Files inside the work directory, reached without following a symbolic link. A link planted
//! there (a file linked to `/etc/shadow`, a batch folder linked elsewhere) must not make TRD
//! publish, transcribe, serve or delete what lies outside it.
//!
//! The test is made on what was actually opened, not on a path looked at beforehand: the
//! final component is opened with `O_NOFOLLOW`, and the opened file's real path (from
//! `/proc/self/fd`) must be the work directory's real path joined with the file's name, which
//! it is not when any folder on the way is a link, even one swapped in a moment before.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file the API keeps at the top of the work directory. Its absence means the directory
/// in place is not the work directory (a mount that is gone leaves an empty folder behind), so
/// a missing audio file there is the infrastructure's fault, not the file's.
pub const WORKDIR_MARK: &str = ".trd-workdir";

/// Whether `workdir` is the work directory the service set up: its mark is there.
pub fn workdir_present(workdir: &Path) -> bool {
    std::fs::symlink_metadata(workdir.join(WORKDIR_MARK)).is_ok_and(|m| m.is_file())
}

/// Whether an I/O error says the storage is sick (full, failing, unmounted, unreachable)
/// rather than that the file is bad: work meeting one waits, it does not fail.
pub fn storage_is_sick(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOSPC
                | libc::EDQUOT
                | libc::EIO
                | libc::EROFS
                | libc::ENOTCONN
                | libc::ESTALE
                | libc::ETIMEDOUT
                | libc::ENODEV
                | libc::ENXIO
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENOMEM
        )
    )
}

#[derive(Debug, thiserror::Error)]
pub enum WorkdirFileError {
    #[error("'{0}' is a symbolic link or lies behind one; TRD does not follow links out of the work directory")]
    Symlink(String),
    #[error("'{0}' is not a regular file")]
    NotRegular(String),
    #[error("'{0}' is not inside the work directory")]
    Outside(String),
    #[error("'{path}' cannot be opened")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl WorkdirFileError {
    /// Whether the path itself is refused (as opposed to the file system failing to open it).
    pub fn is_refused(&self) -> bool {
        !matches!(self, Self::Io { .. })
    }

    /// The underlying I/O error, if opening failed for that reason.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Opens `path`, a regular file inside `workdir`, for reading.
pub fn open_regular(workdir: &Path, path: &Path) -> Result<File, WorkdirFileError> {
    let shown = || path.display().to_string();
    let relative = path
        .strip_prefix(workdir)
        .map_err(|_| WorkdirFileError::Outside(shown()))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => WorkdirFileError::Symlink(shown()),
            _ => WorkdirFileError::Io {
                path: shown(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(|source| WorkdirFileError::Io {
        path: shown(),
        source,
    })?;
    if !meta.is_file() {
        return Err(WorkdirFileError::NotRegular(shown()));
    }
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
    match real {
        Ok(real) if real == real_workdir(workdir, relative)? => Ok(file),
        Ok(_) => Err(WorkdirFileError::Symlink(shown())),
        Err(source) => Err(WorkdirFileError::Io {
            path: shown(),
            source,
        }),
    }
}

/// What a file's content was when it was read whole: size, MD5 and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub md5: String,
    /// Milliseconds since the epoch; a different one means the file may have been rewritten.
    pub modified_ms: Option<i64>,
}

impl Fingerprint {
    /// Reads `file` from its start to its end.
    pub fn of(file: &mut File) -> io::Result<Self> {
        use std::io::{Read, Seek};
        let modified_ms = modified_ms(&file.metadata()?);
        file.rewind()?;
        let mut context = md5::Context::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            context.consume(&buffer[..n]);
            size += n as u64;
        }
        Ok(Self {
            size,
            md5: format!("{:x}", context.finalize()),
            modified_ms,
        })
    }
}

/// A file's modification time in milliseconds since the epoch, where the file system keeps one.
pub fn modified_ms(meta: &std::fs::Metadata) -> Option<i64> {
    let modified = meta.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// Checks that `dir`, a folder inside `workdir` (or the work directory itself), is reached
/// without a symbolic link: what is created or deleted in it stays inside.
pub fn check_folder(workdir: &Path, dir: &Path) -> Result<(), WorkdirFileError> {
    let shown = || dir.display().to_string();
    let relative = dir
        .strip_prefix(workdir)
        .map_err(|_| WorkdirFileError::Outside(shown()))?;
    let real = std::fs::canonicalize(dir).map_err(|source| WorkdirFileError::Io {
        path: shown(),
        source,
    })?;
    if real != real_workdir(workdir, relative)? {
        return Err(WorkdirFileError::Symlink(shown()));
    }
    Ok(())
}

/// Where `relative` lies when the work directory's own real path is followed (the work
/// directory itself may be a link, which the operator chose).
fn real_workdir(workdir: &Path, relative: &Path) -> Result<PathBuf, WorkdirFileError> {
    let root = std::fs::canonicalize(workdir).map_err(|source| WorkdirFileError::Io {
        path: workdir.display().to_string(),
        source,
    })?;
    Ok(if relative.as_os_str().is_empty() {
        root
    } else {
        root.join(relative)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_out_of_the_work_directory_are_refused_and_files_in_it_open() {
        let outside = tempfile_dir("outside");
        let secret = outside.join("secret.wav");
        std::fs::write(&secret, b"RIFF").unwrap();
        let workdir = tempfile_dir("workdir");
        std::fs::create_dir(workdir.join("batch")).unwrap();
        std::fs::write(workdir.join("batch/a.wav"), b"RIFF").unwrap();
        symlink(&secret, workdir.join("batch/link.wav")).unwrap();
        symlink(&outside, workdir.join("linked")).unwrap();
        symlink(workdir.join("batch"), workdir.join("inner")).unwrap();

        assert!(open_regular(&workdir, &workdir.join("batch/a.wav")).is_ok());
        for refused in ["batch/link.wav", "linked/secret.wav", "inner/a.wav"] {
            let e = open_regular(&workdir, &workdir.join(refused)).unwrap_err();
            assert!(matches!(e, WorkdirFileError::Symlink(_)), "{refused}: {e}");
            assert!(e.is_refused());
        }
        let e = open_regular(&workdir, &workdir.join("batch")).unwrap_err();
        assert!(matches!(e, WorkdirFileError::NotRegular(_)), "{e}");
        let e = open_regular(&workdir, &secret).unwrap_err();
        assert!(matches!(e, WorkdirFileError::Outside(_)), "{e}");
        let e = open_regular(&workdir, &workdir.join("batch/missing.wav")).unwrap_err();
        assert!(!e.is_refused());

        assert!(check_folder(&workdir, &workdir.join("batch")).is_ok());
        assert!(check_folder(&workdir, &workdir).is_ok());
        assert!(check_folder(&workdir, &workdir.join("linked")).is_err());
        assert!(check_folder(&workdir, &workdir.join("inner")).is_err());
        std::fs::remove_dir_all(&workdir).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "trd-workdir-files-{}-{name}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
