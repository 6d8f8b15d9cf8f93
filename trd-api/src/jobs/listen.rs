//! A job's audio for listening (the console's player, any client that wants the recording
//! back): the original file in the work directory, never through a symbolic link, or a copy
//! every browser plays.

use std::fs::File;
use std::path::{Path, PathBuf};

use trd_core::domain::{AudioFile, Status};
use trd_core::workdir_files::{open_regular, WorkdirFileError};
use trd_normalizer::normalize::normalize_opened;
use trd_normalizer::NormalizeError;

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

/// How many playable copies the API keeps (the newest); each is the PCM of one recording.
const PLAYABLE_COPIES_KEPT: usize = 16;

impl Jobs {
    /// A copy of `record`'s audio that every browser plays: 16-bit PCM WAV at the service's
    /// sample rate, every channel, decoded by the normalizer's own pipeline. For recordings in
    /// formats browsers do not play (AIFF, ADPCM WAV, CAF…). Made on first use into
    /// `<state_dir>/playable/` and kept (the newest few), since a player asks for it in many
    /// ranges; a record's audio never changes under its id.
    pub async fn playable_copy(&self, record: &AudioFile) -> JobResult<PathBuf> {
        let folder = self.settings.state_dir.join("playable");
        let target = folder.join(format!("{}.wav", record.id.to_hex()));
        if target.exists() {
            return Ok(target);
        }
        let file = self.open_audio(record)?;
        std::fs::create_dir_all(&folder)
            .map_err(|e| JobError::io("cannot make the folder of playable copies", e))?;
        let (rate, max_seconds) = (self.settings.sample_rate, self.settings.max_audio_seconds);
        let name = PathBuf::from(&record.filename);
        let (made, target_for_task) = (
            folder.join(format!(
                ".{}-{}.wav",
                record.id.to_hex(),
                uuid::Uuid::new_v4().simple()
            )),
            target.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let written = write_playable(file, &name, rate, max_seconds, &made);
            match written {
                Ok(()) => std::fs::rename(&made, &target_for_task)
                    .map_err(|e| JobError::io("cannot keep the playable copy", e)),
                Err(e) => {
                    let _ = std::fs::remove_file(&made);
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| JobError::io("decoding for playback stopped", std::io::Error::other(e)))??;
        prune_playable(&folder, PLAYABLE_COPIES_KEPT);
        Ok(target)
    }
}

/// Decodes `file` through the normalizer into a WAV file at `to`.
fn write_playable(
    file: std::fs::File,
    name: &Path,
    rate: u32,
    max_seconds: u64,
    to: &Path,
) -> JobResult<()> {
    let mut writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>> = None;
    // Why writing failed, if it did: the decoder only hears that its sink stopped.
    let mut write_error: Option<hound::Error> = None;
    let decoded = normalize_opened(file, name, rate, max_seconds, |block| {
        let written = write_block(&mut writer, block, rate, to);
        written.map_err(|e| {
            let stopped = NormalizeError::Sink(format!("writing the playable copy: {e}").into());
            write_error = Some(e);
            stopped
        })
    });
    if let Some(e) = write_error {
        return Err(JobError::io("cannot write the playable copy", hound_io(e)));
    }
    match decoded {
        Ok(_) => {}
        Err(e) if e.is_transient() => {
            return Err(JobError::io(
                "cannot read the audio",
                std::io::Error::other(e),
            ))
        }
        Err(e) => {
            return Err(JobError::Failed {
                status: Status::Normalizing,
                reason: e.to_string(),
            })
        }
    }
    match writer {
        Some(writer) => writer
            .finalize()
            .map_err(|e| JobError::io("cannot finish the playable copy", hound_io(e))),
        None => Err(JobError::EmptyAudio),
    }
}

/// Appends one block (`block[channel][frame]`) to the WAV file, creating it at the first.
fn write_block(
    writer: &mut Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    block: &[Vec<i16>],
    rate: u32,
    to: &Path,
) -> Result<(), hound::Error> {
    let out = match writer {
        Some(out) => out,
        None => writer.insert(hound::WavWriter::create(
            to,
            hound::WavSpec {
                channels: block.len() as u16,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            },
        )?),
    };
    let frames = block.first().map_or(0, Vec::len);
    for frame in 0..frames {
        for channel in block {
            out.write_sample(channel[frame])?;
        }
    }
    Ok(())
}

fn hound_io(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(io) => io,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Deletes all but the `keep` newest playable copies.
fn prune_playable(folder: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut copies: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    copies.sort_by_key(|copy| std::cmp::Reverse(copy.0));
    for (_, old) in copies.into_iter().skip(keep) {
        let _ = std::fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_playable_copies_are_kept() {
        let folder = tempfile::tempdir().unwrap();
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for n in 0..20u64 {
            let file = File::create(folder.path().join(format!("{n:02}.wav"))).unwrap();
            file.set_modified(base + std::time::Duration::from_secs(n))
                .unwrap();
        }
        // A copy being made is not counted, nor removed.
        File::create(folder.path().join(".making.wav")).unwrap();
        prune_playable(folder.path(), 16);
        let mut left: Vec<String> = std::fs::read_dir(folder.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected: Vec<String> = (4..20).map(|n| format!("{n:02}.wav")).collect();
        expected.insert(0, ".making.wav".to_owned());
        assert_eq!(left, expected);
    }
}
