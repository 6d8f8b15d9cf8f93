//! A job's original audio, opened for listening (the console's player, any client that wants
//! the recording back): the file in the work directory, never through a symbolic link.

use std::fs::File;

use trd_core::domain::AudioFile;
use trd_core::workdir_files::{open_regular, WorkdirFileError};

use super::{JobError, JobResult, Jobs};

impl Jobs {
    /// Opens the audio `record` was registered from. A file deleted from the work directory
    /// (or a temporary job's, dropped with it) is [`JobError::NoSuchAudio`]; a link planted in
    /// its place is refused as on every other path.
    pub fn open_audio(&self, record: &AudioFile) -> JobResult<File> {
        let location = record
            .try_location()
            .map_err(|e| JobError::InvalidLocation(e.to_string()))?;
        let path = location.path_in(&self.settings.workdir);
        open_regular(&self.settings.workdir, &path).map_err(|e| match e {
            WorkdirFileError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                JobError::NoSuchAudio(record.filename.clone())
            }
            WorkdirFileError::Io { path, source } => {
                JobError::io(format!("cannot read {path}"), source)
            }
            refused => JobError::UnsafePath(refused.to_string()),
        })
    }
}
