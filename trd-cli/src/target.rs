//! What a command acts on — one file by id, or a batch — and how the API's URLs name it.

use clap::Args;

/// What a command acts on: one file by id, or a batch.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A file's id.
    pub id: Option<String>,
    /// A batch name.
    #[arg(long, short)]
    pub batch: Option<String>,
}

impl Target {
    pub fn path(&self, prefix: &str) -> String {
        match (&self.id, &self.batch) {
            (_, Some(batch)) => format!("{prefix}/batch/{}", encode(batch)),
            (Some(id), None) => format!("{prefix}/audiofile/{}", encode(id)),
            (None, None) => unreachable!("clap requires an id or --batch"),
        }
    }
}

/// Percent-encodes a path segment (batch names may hold spaces and other characters).
pub fn encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_names_are_encoded_as_one_segment() {
        assert_eq!(encode("day 1/../x"), "day%201%2F..%2Fx");
        assert_eq!(encode("plain-name_1.2"), "plain-name_1.2");
    }
}
