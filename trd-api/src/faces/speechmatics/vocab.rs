//! `additional_vocab` entries with `sounds_like`: the recognizer is hinted towards how a word
//! sounds (a spelling its model can write), and the transcript writes the word as the caller
//! spells it ("Kieran" heard, "Ciarán" written).

use std::collections::HashMap;

use trd_core::domain::Segment;

use super::config::Vocab;

/// Heard spellings → the caller's spelling.
#[derive(Debug, Clone, Default)]
pub struct Respelling {
    written: HashMap<String, String>,
}

impl Respelling {
    pub fn new(vocab: &[Vocab]) -> Self {
        let mut written = HashMap::new();
        for entry in vocab {
            for heard in &entry.sounds_like {
                let key = key(heard);
                if !key.is_empty() && key != self::key(&entry.content) {
                    written.insert(key, entry.content.clone());
                }
            }
        }
        Respelling { written }
    }

    /// `segments` with each word heard as a `sounds_like` written as its `content`.
    pub fn apply(&self, segments: &[Segment]) -> Vec<Segment> {
        let mut out = segments.to_vec();
        if self.written.is_empty() {
            return out;
        }
        for segment in &mut out {
            let mut changed = false;
            for word in &mut segment.words {
                if let Some(content) = self.written.get(&key(&word.text)) {
                    word.text.clone_from(content);
                    changed = true;
                }
            }
            if changed {
                segment.text = segment
                    .words
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
        out
    }
}

/// Words compare without case and spacing: readings differ in both.
fn key(word: &str) -> String {
    word.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use mongodb::bson::oid::ObjectId;
    use trd_core::domain::{SegmentStatus, Word};

    use super::*;

    fn segment(words: &[&str]) -> Segment {
        Segment {
            id: ObjectId::new(),
            audiofile_id: ObjectId::new(),
            channel: 1,
            start: 0.0,
            end: 1.0,
            speaker: "1".into(),
            score: 90,
            status: SegmentStatus::Recognized,
            text: words.join(" "),
            words: words
                .iter()
                .map(|w| Word {
                    text: (*w).into(),
                    start: 0.0,
                    end: 1.0,
                    score: 90,
                })
                .collect(),
            reason: None,
            lease: None,
            heard: None,
        }
    }

    #[test]
    fn a_word_heard_as_it_sounds_is_written_as_the_caller_spells_it() {
        let vocab = [
            Vocab {
                content: "Ciarán".into(),
                sounds_like: vec!["Kieran".into(), "keer an".into()],
            },
            Vocab {
                content: "gnocchi".into(),
                sounds_like: Vec::new(),
            },
        ];
        let out = Respelling::new(&vocab).apply(&[segment(&["hello", "kieran", "keeran"])]);
        let words: Vec<&str> = out[0].words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, ["hello", "Ciarán", "Ciarán"]);
        assert_eq!(out[0].text, "hello Ciarán Ciarán");
        let untouched = Respelling::new(&vocab[1..]).apply(&[segment(&["gnocchi"])]);
        assert_eq!(untouched[0].text, "gnocchi");
    }
}
