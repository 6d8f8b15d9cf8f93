//! Character error rate with spaces removed (Korean word spacing is a convention, not content).

/// Levenshtein distance over characters.
pub fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j + 1] + 1)
                .min(cur[j] + 1)
                .min(prev[j] + usize::from(ca != cb));
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

pub fn chars_without_spaces(s: &str) -> Vec<char> {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// (errors, reference length) for one hypothesis; sum these over a corpus for its CER.
pub fn errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = chars_without_spaces(reference);
    let h = chars_without_spaces(hypothesis);
    (edit_distance(&r, &h), r.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_substitutions_insertions_deletions_ignoring_spaces() {
        assert_eq!(errors("가 나다", "가나다"), (0, 3));
        assert_eq!(errors("가나다", "가라다"), (1, 3));
        assert_eq!(errors("가나다", "가나다라"), (1, 3));
        assert_eq!(errors("가나다", ""), (3, 3));
    }
}
