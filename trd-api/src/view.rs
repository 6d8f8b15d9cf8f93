//! Records rendered in the contract's shape: HTTP dates, internal fields left out.

use mongodb::bson::DateTime;
use serde_json::{json, Map, Value};
use trd_core::domain::{AudioFile, Segment};

/// `Fri, 08 Mar 2019 18:02:16 GMT`.
pub fn http_date(date: DateTime) -> String {
    let dt = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(date.timestamp_millis())
        .unwrap_or_default();
    dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn record(r: &AudioFile) -> Value {
    let mut v = Map::new();
    v.insert("_id".into(), json!(r.id.to_hex()));
    v.insert("batch".into(), json!(r.batch));
    v.insert("filename".into(), json!(r.filename));
    v.insert("format".into(), json!(r.format));
    v.insert("size".into(), json!(r.size));
    v.insert("md5".into(), json!(r.md5));
    v.insert("create_date".into(), json!(http_date(r.create_date)));
    v.insert("last_update".into(), json!(http_date(r.last_update)));
    v.insert("control".into(), json!(r.control));
    v.insert("status".into(), json!(r.status));
    if let Some(info) = &r.info {
        v.insert("info".into(), json!(info));
    }
    if let Some(chs) = &r.audio_channels {
        v.insert("audioChannels".into(), json!(chs));
    }
    if let Some(e) = &r.error {
        v.insert("error".into(), json!(e));
    }
    if let Some(n) = r.total_segments {
        v.insert("total_segments".into(), json!(n));
    }
    if let Some(s) = r.total_speech {
        v.insert("total_speech".into(), json!(s));
    }
    if !r.warnings.is_empty() {
        v.insert("warnings".into(), json!(r.warnings));
    }
    Value::Object(v)
}

pub fn segment(s: &Segment) -> Value {
    let mut v = json!({
        "channel": s.channel,
        "start": s.start,
        "end": s.end,
        "speaker": s.speaker,
        "score": s.score,
        "status": s.status,
        "text": s.text,
        "words": s.words,
    });
    if let Some(reason) = &s.reason {
        v["reason"] = json!(reason);
    }
    v
}

/// The result document: the record plus its segments ordered by start time.
pub fn result(r: &AudioFile, segments: &[Segment]) -> Value {
    let mut v = record(r);
    v["segments"] = Value::Array(segments.iter().map(segment).collect());
    v
}

/// One webhook delivery's outcome, as shown on the record.
pub fn delivery(d: &crate::webhooks::outbox::Delivery) -> Value {
    json!({
        "url": d.url,
        "event": d.event,
        "state": d.state,
        "attempts": d.attempts,
        "history": d.history.iter().map(|a| json!({"at": http_date(a.at), "outcome": a.outcome})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_http_dates() {
        let d = DateTime::from_millis(1_552_068_136_000);
        assert_eq!(http_date(d), "Fri, 08 Mar 2019 18:02:16 GMT");
    }
}
