//! The normalize stage: reads the user's file from the work directory, stores per-channel PCM
//! in MongoDB (where workers on any host can read it) and records what it learned.

use std::io::Seek;
use std::path::PathBuf;

use mongodb::bson::{self, doc, Document};
use tokio::sync::mpsc;
use trd_core::domain::{AudioFile, InvalidName, Stage};
use trd_core::store::PcmWriter;

use trd_core::workdir_files::{
    open_regular, storage_is_sick, workdir_present, Fingerprint, WorkdirFileError, WORKDIR_MARK,
};
use trd_core::worker::{process_file_stage, Job, Outage, StageFailure, StageWorker, WorkerContext};

use crate::error::NormalizeError;
use crate::normalize::normalize_opened;

pub struct Normalizer;

impl StageWorker for Normalizer {
    const STAGE: Stage = Stage::Normalize;

    async fn handle(&self, ctx: &WorkerContext, job: Job) -> Result<(), StageFailure> {
        process_file_stage(ctx, Self::STAGE, job, |record| {
            normalize_record(ctx, record)
        })
        .await
    }
}

/// Why a record's file cannot even be opened for normalization.
#[derive(Debug, thiserror::Error)]
enum RecordFault {
    #[error("the record's name is invalid: {0}")]
    InvalidName(#[source] InvalidName),
    #[error("the audio file {} is no longer in the work directory", .0.display())]
    Gone(PathBuf),
    #[error(transparent)]
    Refused(WorkdirFileError),
    #[error("the audio file changed on disk after it was registered (md5 {registered}, now {now}): this record's audio is gone, and the new content is another record's")]
    Changed { registered: String, now: String },
    #[error("the decoder crashed on this file: {0}")]
    DecoderCrashed(#[source] tokio::task::JoinError),
}

impl From<RecordFault> for StageFailure {
    fn from(fault: RecordFault) -> Self {
        StageFailure::file_fault(fault)
    }
}

impl From<NormalizeError> for StageFailure {
    fn from(e: NormalizeError) -> Self {
        if let NormalizeError::Unreadable(io) = &e {
            if storage_is_sick(io) {
                return StageFailure::Outage(Outage::WorkDirectory(e.to_string()));
            }
        }
        if e.is_transient() {
            StageFailure::attempt(e)
        } else {
            StageFailure::file_fault(e)
        }
    }
}

async fn normalize_record(
    ctx: &WorkerContext,
    record: AudioFile,
) -> Result<Document, StageFailure> {
    let path = record
        .try_location()
        .map_err(RecordFault::InvalidName)?
        .path_in(&ctx.settings.workdir);
    // Opened without following a link out of the work directory (one swapped in after
    // registration is refused like one planted before).
    let workdir = &ctx.settings.workdir;
    let file = match open_regular(workdir, &path) {
        Ok(file) => file,
        // Not the file's fault while the work directory itself is gone (unmounted): the file
        // waits for it instead of failing.
        Err(WorkdirFileError::Io { source, .. }) if !workdir_present(workdir) => {
            return Err(StageFailure::Outage(Outage::WorkDirectory(format!(
                "{} has no {WORKDIR_MARK} (unmounted?): {source}",
                workdir.display()
            ))))
        }
        Err(WorkdirFileError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Err(RecordFault::Gone(path).into())
        }
        Err(WorkdirFileError::Io { source, .. }) => {
            return Err(NormalizeError::Unreadable(source).into())
        }
        Err(refused) => return Err(RecordFault::Refused(refused).into()),
    };
    let file = unchanged_since_registration(&record, file, &path).await?;
    // A redone normalization starts from nothing: chunks of an interrupted attempt go first
    // (while this attempt holds the file: a stalled one that lost it must not delete the PCM
    // of the attempt that took over).
    ctx.still_holding(&record).await?;
    ctx.store.delete_pcm(record.id).await?;

    let (tx, mut rx) = mpsc::channel::<Vec<Vec<i16>>>(4);
    let rate = ctx.settings.sample_rate;
    let max_seconds = ctx.settings.max_audio_seconds;
    let decoding = tokio::task::spawn_blocking(move || {
        normalize_opened(file, &path, rate, max_seconds, |block| {
            tx.blocking_send(block.to_vec())
                .map_err(|_| NormalizeError::Sink("the PCM writer stopped".into()))
        })
    });
    let mut writers: Vec<PcmWriter> = Vec::new();
    while let Some(block) = rx.recv().await {
        if writers.is_empty() {
            writers = (1..=block.len() as u32)
                .map(|ch| PcmWriter::new(&ctx.store, record.id, ch))
                .collect();
        }
        for (writer, samples) in writers.iter_mut().zip(&block) {
            writer.write(samples).await?;
        }
    }
    let report = match decoding.await.map_err(RecordFault::DecoderCrashed)? {
        Ok(report) => report,
        Err(refused) => {
            // What was stored of audio the file does not get is dropped at once, not at the
            // next retention sweep: that is what bounds a decompression bomb's cost.
            if !refused.is_transient() {
                ctx.still_holding(&record).await?;
                ctx.store.delete_pcm(record.id).await?;
            }
            return Err(refused.into());
        }
    };
    for writer in writers {
        writer.finish().await?;
    }
    if report.redundant {
        ctx.still_holding(&record).await?;
        ctx.store.delete_pcm_channels_after(record.id, 1).await?;
    }
    for warning in &report.warnings {
        tracing::warn!(file = %record.id, %warning, "normalized with a warning");
    }
    Ok(doc! {
        "info": bson::to_bson(&report.info).expect("info serialises"),
        "audioChannels": bson::to_bson(&report.channels).expect("channels serialise"),
        "warnings": bson::to_bson(&report.warnings).expect("warnings serialise"),
    })
}

/// `file`, read from its start, when it still holds what was registered. A file rewritten
/// since (recorders reuse names) is another recording, never this record's audio. Its MD5 is
/// always taken again: a rewrite of the same size that keeps the time shows in nothing else,
/// and reading the file once more costs little beside decoding it.
async fn unchanged_since_registration(
    record: &AudioFile,
    file: std::fs::File,
    path: &std::path::Path,
) -> Result<std::fs::File, StageFailure> {
    let shown = path.display().to_string();
    let (file, print) = tokio::task::spawn_blocking(move || {
        let mut file = file;
        let print = Fingerprint::of(&mut file)?;
        file.rewind()?;
        Ok::<_, std::io::Error>((file, print))
    })
    .await
    .map_err(|e| StageFailure::from(NormalizeError::Unreadable(std::io::Error::other(e))))?
    .map_err(|e| StageFailure::from(NormalizeError::Unreadable(e)))?;
    if print.md5 != record.md5 || print.size != record.size as u64 {
        tracing::warn!(file = %record.id, path = %shown, "the audio changed after registration");
        return Err(RecordFault::Changed {
            registered: record.md5.clone(),
            now: print.md5,
        }
        .into());
    }
    Ok(file)
}
