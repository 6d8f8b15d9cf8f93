//! Identifiers that cross the HTTP boundary.

use std::fmt;
use std::str::FromStr;

use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

/// The id of an audio file record: a MongoDB ObjectId, spelled as 24 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AudioFileId(ObjectId);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not an audio file id: ids are 24 lowercase hexadecimal characters")]
pub struct InvalidAudioFileId(pub String);

impl AudioFileId {
    pub fn new() -> Self {
        Self(ObjectId::new())
    }

    pub fn parse(s: &str) -> Result<Self, InvalidAudioFileId> {
        let well_formed = s.len() == 24
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(InvalidAudioFileId(truncate_for_message(s)));
        }
        ObjectId::parse_str(s)
            .map(Self)
            .map_err(|_| InvalidAudioFileId(s.to_owned()))
    }

    pub fn object_id(&self) -> ObjectId {
        self.0
    }
}

impl Default for AudioFileId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<ObjectId> for AudioFileId {
    fn from(oid: ObjectId) -> Self {
        Self(oid)
    }
}

impl FromStr for AudioFileId {
    type Err = InvalidAudioFileId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for AudioFileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

/// Error messages echo user input; keep them readable when the input is hostile.
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 64;
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cleaned.chars().count() > MAX {
        format!("{}…", cleaned.chars().take(MAX).collect::<String>())
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lowercase_hex_only() {
        let id = AudioFileId::parse("5b76faed4d27fc0001331dcc").unwrap();
        assert_eq!(id.to_string(), "5b76faed4d27fc0001331dcc");
        assert!(AudioFileId::parse("5B76FAED4D27FC0001331DCC").is_err());
        assert!(AudioFileId::parse("5b76faed4d27fc0001331dc").is_err());
        assert!(AudioFileId::parse("zz76faed4d27fc0001331dcc").is_err());
        assert!(AudioFileId::parse("").is_err());
    }
}
