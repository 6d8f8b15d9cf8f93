//! What the format tests share: a finished one-channel file and recognised segments.

use mongodb::bson::{oid::ObjectId, DateTime};
use trd_core::domain::{AudioChannel, AudioFile, Control, Segment, SegmentStatus, Status, Word};

pub(crate) fn file() -> AudioFile {
    AudioFile {
        id: ObjectId::new(),
        batch: None,
        filename: "a.wav".into(),
        format: "wav".into(),
        size: 1,
        md5: String::new(),
        create_date: DateTime::now(),
        last_update: DateTime::now(),
        control: Control::Finished,
        status: Status::Recognized,
        info: None,
        audio_channels: Some(vec![AudioChannel {
            bandwidth: "8000".into(),
            channel: 1,
            duration: 4.25,
        }]),
        error: None,
        total_segments: None,
        total_speech: None,
        options: Default::default(),
        warnings: Vec::new(),
        mtime: None,
        lease: None,
    }
}

/// A recognised segment of speaker 1 on channel 1 with these words (score 90).
pub(crate) fn segment(words: &[(&str, f64, f64)]) -> Segment {
    Segment {
        id: ObjectId::new(),
        audiofile_id: ObjectId::new(),
        channel: 1,
        start: words.first().map_or(0.0, |w| w.1),
        end: words.last().map_or(1.0, |w| w.2),
        speaker: "1".into(),
        score: 90,
        status: SegmentStatus::Recognized,
        text: words.iter().map(|w| w.0).collect::<Vec<_>>().join(" "),
        words: words
            .iter()
            .map(|&(text, start, end)| Word {
                text: text.into(),
                start,
                end,
                score: 90,
            })
            .collect(),
        reason: None,
        lease: None,
        heard: None,
    }
}
