//! Audio in: stored in the work directory under its name (never replacing a file there), then
//! registered before the caller hears back, so an answered submit is never lost.

use std::path::PathBuf;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWriteExt};
use trd_core::domain::{AudioFile, FileLocation, FileName};
use trd_core::workdir_files::{check_folder, WorkdirFileError};

use super::{JobError, JobResult, Jobs};
use crate::registry::register_at;

/// Audio is spooled here before it takes its name: inside the work directory (so naming it is
/// a link on the same file system) but hidden (so the watcher never sees a partial file).
pub const SPOOL_DIR: &str = ".trd-uploads";

/// The audio a job is made from.
pub enum Audio {
    /// The file is in the work directory already, at the job's location.
    InWorkdir,
    /// A complete file in [`SPOOL_DIR`] (an upload Rocket spooled); it is moved into place.
    Spooled(PathBuf),
    /// The whole file in memory.
    Bytes(Vec<u8>),
    /// The file as a stream, written to disk as it arrives.
    Stream(Pin<Box<dyn AsyncRead + Send>>),
}

/// A job's own name when the client's name is only a hint: unique (clients send one name many
/// times) and keeping the client's extension, which tells the decoder what to expect.
pub fn fresh_name(client_name: Option<&str>) -> FileName {
    let extension = client_name
        .and_then(|n| std::path::Path::new(n).extension())
        .and_then(|e| e.to_str())
        .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| format!(".{}", e.to_ascii_lowercase()))
        .unwrap_or_default();
    FileName::parse(&format!(
        "{}{extension}",
        mongodb::bson::oid::ObjectId::new().to_hex()
    ))
    .expect("a hex id with an alphanumeric extension is a valid name")
}

impl Jobs {
    /// Where spooled audio waits, created if needed.
    pub fn spool_path(&self) -> PathBuf {
        let name = format!("{}.part", mongodb::bson::oid::ObjectId::new().to_hex());
        self.settings.workdir.join(SPOOL_DIR).join(name)
    }

    /// Stores `audio` at `location` and registers it; the record is IDLE/INITIAL (or, for a
    /// file already registered, as it is). A name in use is [`JobError::NameTaken`].
    pub async fn submit(&self, location: &FileLocation, audio: Audio) -> JobResult<AudioFile> {
        // Never onto the file system a missing (unmounted) work directory leaves behind.
        if !trd_core::workdir_files::workdir_present(&self.settings.workdir) {
            return Err(JobError::Storage {
                context: "its mark is missing (unmounted?)".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let spooled = match audio {
            // Registration opens it without following links, and tells a missing file.
            Audio::InWorkdir => return self.register(location).await,
            Audio::Spooled(path) => path,
            Audio::Bytes(bytes) => {
                let path = self.spool_path();
                self.spool(&path, &mut bytes.as_slice()).await?;
                path
            }
            Audio::Stream(mut reader) => {
                let path = self.spool_path();
                self.spool(&path, &mut reader).await?;
                path
            }
        };
        let registered = match self.place(location, &spooled).await {
            Ok(()) => {
                let registered = self.register(location).await;
                if registered.is_err() {
                    // Unanswered, the client will send it again: the name must be free then.
                    self.unplace(location, &spooled).await;
                }
                registered
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&spooled);
        registered
    }

    async fn spool(
        &self,
        path: &std::path::Path,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> JobResult<()> {
        let context = || "spooling the audio".to_owned();
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| JobError::io(context(), e))?;
        }
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| JobError::io(context(), e))?;
        let copied = async {
            tokio::io::copy(reader, &mut file).await?;
            file.flush().await
        }
        .await;
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(path).await;
            return Err(JobError::io(context(), e));
        }
        Ok(())
    }

    /// Gives the spooled file its name. A hard link never replaces an existing file, so two
    /// submits of one name cannot both win.
    async fn place(&self, location: &FileLocation, spooled: &std::path::Path) -> JobResult<()> {
        let target = location.path_in(&self.settings.workdir);
        if target.exists() || self.store.find_by_location(location).await?.is_some() {
            return Err(JobError::NameTaken(location.clone()));
        }
        let parent = target
            .parent()
            .expect("a file inside the work directory has a parent");
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| JobError::io("creating the batch folder", e))?;
        // A batch folder linked elsewhere would put the audio outside the work directory.
        check_folder(&self.settings.workdir, parent).map_err(|e| match e {
            WorkdirFileError::Io { path, source } => JobError::io(path, source),
            refused => JobError::UnsafePath(refused.to_string()),
        })?;
        match std::fs::hard_link(spooled, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(JobError::NameTaken(location.clone()))
            }
            Err(e) => return Err(JobError::io("storing the audio", e)),
        }
        // On disk, data and name, before anyone is told the audio is stored.
        let durable = async {
            tokio::fs::File::open(&target).await?.sync_all().await?;
            tokio::fs::File::open(parent).await?.sync_all().await
        };
        if let Err(e) = durable.await {
            let _ = std::fs::remove_file(&target);
            return Err(JobError::io("storing the audio", e));
        }
        Ok(())
    }

    /// Takes back a name [`Self::place`] gave and nobody registered: only the link to this
    /// upload's own spooled file, never a file someone else has put there since.
    async fn unplace(&self, location: &FileLocation, spooled: &std::path::Path) {
        use std::os::unix::fs::MetadataExt;
        let target = location.path_in(&self.settings.workdir);
        let same_file = match (
            std::fs::symlink_metadata(&target),
            std::fs::metadata(spooled),
        ) {
            (Ok(placed), Ok(ours)) => placed.ino() == ours.ino() && placed.dev() == ours.dev(),
            _ => false,
        };
        // A record made meanwhile (the store is back and the watcher saw the file) keeps it.
        let unregistered = matches!(self.store.find_by_location(location).await, Ok(None));
        if same_file && unregistered {
            if let Err(e) = std::fs::remove_file(&target) {
                tracing::warn!(path = %target.display(), error = %e, "an unregistered upload could not be removed");
            }
        }
    }

    async fn register(&self, location: &FileLocation) -> JobResult<AudioFile> {
        let registration = register_at(&self.store, &self.settings.workdir, location).await?;
        Ok(registration.record().clone())
    }
}
