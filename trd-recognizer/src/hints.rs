//! Vocabulary hints (`hints.words`): names, products and terms the caller expects to hear.
//!
//! Vosk cannot change its language model per request, but it can list its n best readings of an
//! utterance with their scores. With hints, the recognizer asks for those and prefers a reading
//! that contains hinted phrases when its score is close to the best: each hinted phrase found
//! is worth [`BOOST`] points of score. Readings differ mostly where the engine hesitated, so
//! this flips exactly the uncertain words towards the expected ones and leaves the rest alone.
//!
//! Words to avoid (a DeepSpeech hot word with a negative boost) work the other way round: a
//! reading loses [`BOOST`] points per avoided phrase it contains.

/// Score a reading gains per hinted phrase it contains. Vosk's n-best scores are summed
/// log-likelihoods; readings within a few points of each other are near-ties.
pub const BOOST: f64 = 3.0;

/// Readings requested from Vosk per utterance when hints are given.
pub const ALTERNATIVES: u16 = 20;

/// The hinted phrases of a file, ready for matching.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Phrases with spaces removed: word spacing varies between readings (and in Korean is a
    /// convention rather than content), so phrases match regardless of it.
    phrases: Vec<String>,
    /// Phrases a reading is better without, spaces removed likewise.
    avoided: Vec<String>,
}

impl Hints {
    pub fn new(phrases: &[String]) -> Self {
        Self::with_avoided(phrases, &[])
    }

    /// Hinted phrases, and phrases to avoid.
    pub fn with_avoided(phrases: &[String], avoided: &[String]) -> Self {
        let prepared = |list: &[String]| {
            list.iter()
                .map(|p| without_spaces(p))
                .filter(|p| !p.is_empty())
                .collect()
        };
        Self {
            phrases: prepared(phrases),
            avoided: prepared(avoided),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty() && self.avoided.is_empty()
    }

    /// How many hinted phrases `text` contains (each counted once).
    pub fn found_in(&self, text: &str) -> usize {
        count_in(&self.phrases, text)
    }

    /// The score `text` gains (hinted phrases) and loses (avoided ones).
    fn adjustment(&self, text: &str) -> f64 {
        BOOST * (count_in(&self.phrases, text) as f64 - count_in(&self.avoided, text) as f64)
    }

    /// Index of the reading to keep among `(score, text)` readings, best first.
    pub fn choose(&self, readings: &[(f64, String)]) -> usize {
        readings
            .iter()
            .enumerate()
            .map(|(i, (score, text))| (i, score + self.adjustment(text)))
            // Ties keep the engine's order.
            .fold(None::<(usize, f64)>, |best, (i, s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((i, s)),
            })
            .map_or(0, |(i, _)| i)
    }
}

/// The hint words a model cannot produce: phrases are split at spaces and every word must be
/// in the vocabulary, or the model will never output the phrase.
pub fn unknown_words(phrases: &[String], mut knows_word: impl FnMut(&str) -> bool) -> Vec<String> {
    let mut unknown: Vec<String> = phrases
        .iter()
        .flat_map(|p| p.split_whitespace())
        .filter(|w| !knows_word(w))
        .map(str::to_owned)
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}

fn count_in(phrases: &[String], text: &str) -> usize {
    let text = without_spaces(text);
    phrases.iter().filter(|p| text.contains(p.as_str())).count()
}

fn without_spaces(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(list: &[(f64, &str)]) -> Vec<(f64, String)> {
        list.iter().map(|(s, t)| (*s, t.to_string())).collect()
    }

    #[test]
    fn a_close_reading_with_a_hint_wins_a_distant_one_does_not() {
        let hints = Hints::new(&["동료".into(), "개발".into()]);
        let r = readings(&[
            (808.0, "의 종류 인 뒤발 작업"),
            (807.4, "의 동료 인 뒤발 작업"),
            (806.3, "의 동료 인 개발 작업"),
        ]);
        assert_eq!(hints.choose(&r), 2);
        let far = readings(&[(808.0, "의 종류 인"), (790.0, "의 동료 인")]);
        assert_eq!(hints.choose(&far), 0);
    }

    #[test]
    fn phrases_match_whatever_the_spacing() {
        let hints = Hints::new(&["쓴다 고".into(), "  ".into()]);
        assert_eq!(hints.found_in("많이 쓴다고 동"), 1);
        assert_eq!(hints.found_in("많이 씁니다"), 0);
        assert!(Hints::new(&[" ".into()]).is_empty());
    }

    #[test]
    fn a_close_reading_without_an_avoided_word_wins() {
        let hints = Hints::with_avoided(&[], &["종류".into()]);
        assert!(!hints.is_empty());
        let r = readings(&[(808.0, "의 종류 인"), (807.4, "의 동료 인")]);
        assert_eq!(hints.choose(&r), 1);
        let far = readings(&[(808.0, "의 종류 인"), (790.0, "의 동료 인")]);
        assert_eq!(hints.choose(&far), 0);
    }

    #[test]
    fn without_hints_the_engine_order_stands() {
        let r = readings(&[(1.0, "a"), (1.0, "b")]);
        assert_eq!(Hints::default().choose(&r), 0);
    }

    #[test]
    fn words_outside_the_vocabulary_are_reported_once() {
        let known = ["장동", "련"];
        let unknown = unknown_words(
            &["장동 련".into(), "TRD 장동".into(), "TRD".into()],
            |w| known.contains(&w),
        );
        assert_eq!(unknown, vec!["TRD".to_string()]);
    }
}
