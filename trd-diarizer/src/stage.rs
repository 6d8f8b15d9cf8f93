//! The diarize stage: normalized PCM in, speech segments (status PROCESSING) out.

use mongodb::bson::doc;
use trd_core::domain::{AudioFile, Segment, Span, Stage, StartOptions};
use trd_core::worker::{process_file_stage, Job, StageFailure, StageWorker, WorkerContext};

use crate::diarize::{diarize_loading, Diarization, Sensitivity, SpeakerConstraint};
use crate::error::{DiarizeError, ModelError};
use crate::hearing::{heard_spans, CONTEXT_SECONDS};
use crate::models::Models;

pub struct Diarizer;

impl StageWorker for Diarizer {
    const STAGE: Stage = Stage::Diarize;

    async fn handle(&self, ctx: &WorkerContext, job: Job) -> Result<(), StageFailure> {
        process_file_stage(ctx, Self::STAGE, job, |record| diarize_file(ctx, record)).await
    }
}

/// Why a file's audio could not be diarized. Each ends the file FAILED with its message: the
/// models are the operator's to provision, the rest is the file's (or its options').
#[derive(Debug, thiserror::Error)]
enum DiarizationFault {
    #[error("the file has no normalized audio channels; reset it to normalize it again")]
    NoChannels,
    #[error(transparent)]
    Models(#[from] ModelError),
    #[error(transparent)]
    Request(#[from] DiarizeError),
    #[error("diarization crashed: {0}")]
    Crashed(#[source] tokio::task::JoinError),
}

/// Audio a diarizer holds at once: two hours of one channel (230 MB). A stereo call is
/// diarized both channels at once; a long many-channel recording one channel at a time.
const HELD_SAMPLES: usize = 2 * 3600 * 16_000;

/// A diarization that stopped: the file's fault, or the store's (tried again later).
#[derive(Debug, thiserror::Error)]
enum Loading {
    #[error(transparent)]
    Fault(#[from] DiarizationFault),
    #[error(transparent)]
    Store(#[from] trd_core::store::StoreError),
}

impl From<DiarizeError> for Loading {
    fn from(e: DiarizeError) -> Self {
        Loading::Fault(DiarizationFault::Request(e))
    }
}

impl From<Loading> for StageFailure {
    fn from(stopped: Loading) -> Self {
        match stopped {
            Loading::Fault(fault) => fault.into(),
            Loading::Store(e) => e.into(),
        }
    }
}

impl From<DiarizationFault> for StageFailure {
    fn from(fault: DiarizationFault) -> Self {
        StageFailure::file_fault(fault)
    }
}

async fn diarize_file(
    ctx: &WorkerContext,
    record: AudioFile,
) -> Result<mongodb::bson::Document, StageFailure> {
    let channels: Vec<u32> = record
        .audio_channels
        .as_ref()
        .map(|chs| chs.iter().map(|c| c.channel).collect())
        .unwrap_or_default();
    if channels.is_empty() {
        return Err(DiarizationFault::NoChannels.into());
    }
    let sample_rate = ctx.settings.sample_rate;
    let mut how = Diarization::new(sample_rate, ctx.settings.max_segment_seconds);
    apply_options(&mut how, &record.options).map_err(DiarizationFault::Request)?;
    let models_dir = ctx.settings.diarizer_models.clone();
    let (store, id, stored) = (ctx.store.clone(), record.id, channels.clone());
    let runtime = tokio::runtime::Handle::current();
    let (turns, samples) = tokio::task::spawn_blocking(move || -> Result<_, Loading> {
        let models = Models::shared(&models_dir).map_err(DiarizationFault::Models)?;
        let mut samples = 0;
        // Channels are read as the diarizer gets to them, not all first.
        let load = |index: usize| -> Result<Vec<i16>, Loading> {
            let pcm = runtime.block_on(store.read_pcm(id, stored[index], 0, u64::MAX))?;
            samples = samples.max(pcm.len());
            Ok(pcm)
        };
        let turns = diarize_loading(&how, stored.len(), HELD_SAMPLES, load, &models)?;
        Ok((turns, samples))
    })
    .await
    .map_err(DiarizationFault::Crashed)??;
    let duration = samples as f64 / sample_rate as f64;

    let heard = heard_spans(&turns, duration, CONTEXT_SECONDS);
    // Turns are numbered per channel by `diarize`; map them back to the stored channel numbers.
    let segments: Vec<Segment> = turns
        .into_iter()
        .zip(heard)
        .map(|(t, (heard_start, heard_end))| {
            let channel = channels[(t.channel as usize)
                .saturating_sub(1)
                .min(channels.len() - 1)];
            let span = Span {
                start: round_ms(t.start),
                end: round_ms(t.end),
            };
            let heard = Span {
                start: round_ms(heard_start),
                end: round_ms(heard_end),
            };
            Segment::pending(record.id, channel, span, t.speaker, Some(heard))
        })
        .collect();
    let total_speech: f64 = segments.iter().map(Segment::duration).sum();
    // Replacing deletes what an earlier attempt stored: only while this attempt holds the
    // file, or a stalled attempt that lost it would wipe (or double) the segments of the one
    // that took over.
    ctx.still_holding(&record).await?;
    ctx.store.replace_segments(record.id, &segments).await?;
    Ok(doc! {
        "total_segments": segments.len() as i64,
        "total_speech": round_ms(total_speech),
    })
}

/// The start's diarization parameters (validated by the API; re-checked here because a record
/// is data, and data can be old).
fn apply_options(how: &mut Diarization, options: &StartOptions) -> Result<(), DiarizeError> {
    if let Some(mode) = &options.diarization {
        how.mode = mode.parse()?;
    }
    if options.min_speakers.is_some() || options.max_speakers.is_some() {
        let default = SpeakerConstraint::default();
        let min = options.min_speakers.map_or(default.min(), |m| m as usize);
        let max = options
            .max_speakers
            .map_or(default.max().max(min), |m| m as usize);
        how.speakers = SpeakerConstraint::between(min, max)?;
    }
    // Out of range only in a record written by something other than the API: the default.
    if let Some(sensitivity) = options.speaker_sensitivity.and_then(Sensitivity::new) {
        how.sensitivity = sensitivity;
    }
    Ok(())
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
