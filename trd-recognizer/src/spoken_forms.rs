//! Vocabulary entries some models write in a marked-up form, rewritten as they are spoken so a
//! transcript reads (and is searched, and scored against references) like ordinary text.
//!
//! The small Korean Vosk model spells numerals as bracketed digits (`[3]`, `[12]`, `[05]`) and
//! the number units ten, hundred and thousand in parentheses (`(십)`, `(백)`, `(천)`): "이 (천)
//! (십) 팔 년" is 2018, "[3] 월" is March. Its references and its users write these in Hangul.

/// How a model's marked-up vocabulary entries are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpokenForms {
    /// Words are shown exactly as the model gives them.
    AsRecognized,
    /// Bracketed numerals are read as Sino-Korean numbers, unit markers lose their parentheses.
    Korean,
}

impl SpokenForms {
    /// Picks the convention from the vocabulary itself: a model that has the marked unit
    /// `(천)` uses the Korean numeral markup.
    pub fn detect(mut knows_word: impl FnMut(&str) -> bool) -> Self {
        if knows_word("(천)") && knows_word("[3]") {
            Self::Korean
        } else {
            Self::AsRecognized
        }
    }

    /// The word as it is spoken; anything that is not markup is returned unchanged.
    pub fn rewrite(self, word: &str) -> String {
        match self {
            Self::AsRecognized => word.to_owned(),
            Self::Korean => korean(word).unwrap_or_else(|| word.to_owned()),
        }
    }
}

const DIGITS: [&str; 10] = ["영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"];

fn korean(word: &str) -> Option<String> {
    if let Some(unit) = word.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
        return matches!(unit, "십" | "백" | "천").then(|| unit.to_owned());
    }
    let digits = word.strip_prefix('[')?.strip_suffix(']')?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let values: Vec<usize> = digits.bytes().map(|b| usize::from(b - b'0')).collect();
    Some(match values[..] {
        // A leading zero is read digit by digit, as in codes and phone numbers: 공오.
        [0, d] => format!("공{}", if d == 0 { "공" } else { DIGITS[d] }),
        [d] => DIGITS[d].to_owned(),
        [tens, ones] => {
            let mut spoken = String::new();
            if tens > 1 {
                spoken.push_str(DIGITS[tens]);
            }
            spoken.push('십');
            if ones > 0 {
                spoken.push_str(DIGITS[ones]);
            }
            spoken
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::SpokenForms::{AsRecognized, Korean};
    use super::*;

    #[test]
    fn korean_numerals_are_read_in_hangul() {
        assert_eq!(Korean.rewrite("[3]"), "삼");
        assert_eq!(Korean.rewrite("[0]"), "영");
        assert_eq!(Korean.rewrite("[10]"), "십");
        assert_eq!(Korean.rewrite("[12]"), "십이");
        assert_eq!(Korean.rewrite("[20]"), "이십");
        assert_eq!(Korean.rewrite("[99]"), "구십구");
        assert_eq!(Korean.rewrite("[05]"), "공오");
        assert_eq!(Korean.rewrite("[00]"), "공공");
        assert_eq!(Korean.rewrite("(천)"), "천");
        assert_eq!(Korean.rewrite("(십)"), "십");
    }

    #[test]
    fn anything_else_is_left_alone() {
        for word in [
            "월", "[unk]", "[123]", "[]", "(오)", "[3", "3]", "()", "[a1]",
        ] {
            assert_eq!(Korean.rewrite(word), word);
        }
        assert_eq!(AsRecognized.rewrite("[3]"), "[3]");
    }

    #[test]
    fn the_convention_is_detected_from_the_vocabulary() {
        assert_eq!(SpokenForms::detect(|w| w == "(천)" || w == "[3]"), Korean);
        assert_eq!(SpokenForms::detect(|w| w == "hello"), AsRecognized);
    }
}
