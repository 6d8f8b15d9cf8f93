//! Progress figures for a file and for a batch (contract section 4).

use std::collections::BTreeMap;

use mongodb::bson::oid::ObjectId;
use serde_json::{json, Value};
use trd_core::domain::{AudioFile, BatchName, Control, Segment, SegmentStatus, Status};

use crate::error::ApiResult;
use crate::guards::App;

#[derive(Default, Clone, Copy)]
struct Speech {
    seconds: f64,
    segments: u64,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn speech_by_status<'a>(
    segments: impl Iterator<Item = &'a Segment>,
) -> BTreeMap<&'static str, Speech> {
    let mut acc: BTreeMap<&'static str, Speech> = BTreeMap::new();
    for s in segments {
        let e = acc.entry(s.status.as_str()).or_default();
        e.seconds += s.duration();
        e.segments += 1;
    }
    acc
}

fn speech_json(acc: &BTreeMap<&'static str, Speech>) -> Value {
    let map: serde_json::Map<String, Value> = acc
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                json!({"seconds": round3(v.seconds), "segments": v.segments}),
            )
        })
        .collect();
    Value::Object(map)
}

pub async fn file_status(app: &App, record: &AudioFile) -> ApiResult<Value> {
    let segments = app.store.segments_of(record.id).await?;
    Ok(json!({
        "accounted_speech": speech_json(&speech_by_status(segments.iter())),
        "total_segments": record.total_segments.unwrap_or(0),
        "total_speech": round3(record.total_speech.unwrap_or(0.0)),
    }))
}

fn file_duration(r: &AudioFile) -> Option<f64> {
    r.audio_channels
        .as_ref()
        .and_then(|chs| chs.iter().map(|c| c.duration).reduce(f64::max))
}

/// Share of a file's pipeline work that is done, 0–1. Recognition dominates the cost, so it
/// carries most of the weight, in proportion to the speech already recognized.
fn file_progress(r: &AudioFile, recognized_speech: f64) -> f64 {
    if matches!(r.control, Control::Finished | Control::Failed) {
        return 1.0;
    }
    match r.status {
        Status::Initial | Status::Normalizing => 0.0,
        Status::Normalized | Status::Diarizing => 0.1,
        Status::Diarized | Status::Recognizing | Status::Recognized => {
            let total = r.total_speech.unwrap_or(0.0);
            let fraction = if total > 0.0 {
                (recognized_speech / total).min(1.0)
            } else {
                0.0
            };
            0.2 + 0.8 * fraction
        }
    }
}

pub async fn batch_status(app: &App, batch: &BatchName) -> ApiResult<Value> {
    let records = app.store.list(Some(Some(batch))).await?;
    let ids: Vec<ObjectId> = records.iter().map(|r| r.id).collect();
    let segments = app.store.segments_of_files(&ids).await?;
    let mut recognized_by_file: BTreeMap<ObjectId, f64> = BTreeMap::new();
    for s in segments
        .iter()
        .filter(|s| s.status != SegmentStatus::Processing)
    {
        *recognized_by_file.entry(s.audiofile_id).or_default() += s.duration();
    }

    let mut by_control: BTreeMap<&str, (i64, u64)> = BTreeMap::new();
    let mut by_status: BTreeMap<&str, (i64, u64)> = BTreeMap::new();
    let (mut total_bytes, mut total_audio, mut total_audio_ch, mut total_speech) =
        (0i64, 0.0, 0.0, 0.0);
    let mut total_segments = 0i64;
    let (mut normalized, mut diarized, mut recognized) = (0usize, 0usize, 0usize);
    let mut progress_sum = 0.0;
    let mut remaining_audio = 0.0;
    let mut recent_finished_audio = 0.0;
    let mut oldest_recent_finish: Option<i64> = None;
    let now = mongodb::bson::DateTime::now().timestamp_millis();
    const THROUGHPUT_WINDOW_MS: i64 = 10 * 60 * 1000;

    let bytes_per_second = {
        let known: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| file_duration(r).map(|d| (r.size as f64, d)))
            .collect();
        let (b, d) = known
            .iter()
            .fold((0.0, 0.0), |acc, x| (acc.0 + x.0, acc.1 + x.1));
        if d > 0.0 {
            b / d
        } else {
            32_000.0
        }
    };

    for r in &records {
        let c = by_control.entry(r.control.as_str()).or_default();
        c.0 += r.size;
        c.1 += 1;
        let s = by_status.entry(r.status.as_str()).or_default();
        s.0 += r.size;
        s.1 += 1;
        total_bytes += r.size;
        let duration = file_duration(r);
        total_audio += duration.unwrap_or(0.0);
        total_audio_ch += r
            .audio_channels
            .as_ref()
            .map_or(0.0, |chs| chs.iter().map(|c| c.duration).sum());
        total_speech += r.total_speech.unwrap_or(0.0);
        total_segments += r.total_segments.unwrap_or(0);
        normalized += usize::from(r.status >= Status::Normalized);
        diarized += usize::from(r.status >= Status::Diarized);
        recognized += usize::from(r.status >= Status::Recognized);
        let p = file_progress(r, recognized_by_file.get(&r.id).copied().unwrap_or(0.0));
        progress_sum += p;
        let audio = duration.unwrap_or(r.size as f64 / bytes_per_second);
        if r.control == Control::Running {
            remaining_audio += audio * (1.0 - p);
        }
        if r.control == Control::Finished
            && now - r.last_update.timestamp_millis() < THROUGHPUT_WINDOW_MS
        {
            recent_finished_audio += audio;
            let t = r.last_update.timestamp_millis();
            oldest_recent_finish = Some(oldest_recent_finish.map_or(t, |o: i64| o.min(t)));
        }
    }
    let n = records.len();
    let fraction = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let eta = estimate_eta(
        remaining_audio,
        recent_finished_audio,
        oldest_recent_finish,
        now,
        app.settings.concurrency(),
    );

    let counts = |m: BTreeMap<&str, (i64, u64)>| -> Value {
        Value::Object(
            m.into_iter()
                .map(|(k, (b, f))| (k.to_owned(), json!({"bytes": b, "files": f})))
                .collect(),
        )
    };
    let rate = |speech: f64, audio: f64| if audio > 0.0 { speech / audio } else { 0.0 };
    Ok(json!({
        "ETA": eta,
        "batch": batch.as_str(),
        "accounted_control": counts(by_control),
        "accounted_status": counts(by_status),
        "accounted_recognition": speech_json(&speech_by_status(segments.iter())),
        "normalization": fraction(normalized),
        "diarization": fraction(diarized),
        "recognition": fraction(recognized),
        "progress": if n == 0 { 0.0 } else { progress_sum / n as f64 },
        "speech2audio_rate": rate(total_speech, total_audio),
        "speech2audio_rate_ch": rate(total_speech, total_audio_ch),
        "total_audio": round3(total_audio),
        "total_audio_ch": round3(total_audio_ch),
        "total_bytes": total_bytes,
        "total_files": n,
        "total_segments": total_segments,
        "total_speech": round3(total_speech),
    }))
}

/// Seconds until the running files are done: remaining audio divided by the audio throughput
/// the batch achieved over the last minutes. Before anything has finished there is no
/// measured throughput yet; then a conservative per-core real-time factor stands in.
fn estimate_eta(
    remaining_audio: f64,
    recent_audio: f64,
    oldest_recent: Option<i64>,
    now: i64,
    cores: usize,
) -> f64 {
    if remaining_audio <= 0.0 {
        return 0.0;
    }
    let measured = oldest_recent
        .map(|t| ((now - t) as f64 / 1000.0).max(1.0))
        .filter(|_| recent_audio > 0.0)
        .map(|elapsed| recent_audio / elapsed);
    const ASSUMED_REALTIME_FACTOR: f64 = 0.25;
    let throughput = measured.unwrap_or(cores.max(1) as f64 / ASSUMED_REALTIME_FACTOR);
    (remaining_audio / throughput).round()
}
