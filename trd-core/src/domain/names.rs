//! Batch names and file names: untrusted input that becomes paths inside the work directory.
//! Parsing here is the only place that decides what may touch the file system.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ids::truncate_for_message;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidName {
    #[error("name is empty")]
    Empty,
    #[error("name '{0}' is too long (at most {MAX_NAME_BYTES} bytes)")]
    TooLong(String),
    #[error(
        "name '{0}' has a part longer than {MAX_COMPONENT_BYTES} bytes, which no file system takes"
    )]
    ComponentTooLong(String),
    #[error("name '{0}' contains a NUL or control character")]
    ControlCharacter(String),
    #[error("name '{0}' must be relative and may not contain '.' or '..' components")]
    EscapesWorkdir(String),
    #[error("name '{0}' contains a hidden component (starting with '.')")]
    Hidden(String),
    #[error("batch name '{0}' must be a single folder name without '/'")]
    Nested(String),
}

const MAX_NAME_BYTES: usize = 1024;
/// Each folder or file name on the way (Linux's `NAME_MAX`).
const MAX_COMPONENT_BYTES: usize = 255;

fn check_common(s: &str) -> Result<(), InvalidName> {
    if s.is_empty() {
        return Err(InvalidName::Empty);
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(InvalidName::TooLong(truncate_for_message(s)));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(InvalidName::ControlCharacter(truncate_for_message(s)));
    }
    if s.contains('\\') {
        return Err(InvalidName::EscapesWorkdir(truncate_for_message(s)));
    }
    if s.split('/').any(|part| part.len() > MAX_COMPONENT_BYTES) {
        return Err(InvalidName::ComponentTooLong(truncate_for_message(s)));
    }
    Ok(())
}

/// A batch: one folder directly inside the work directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BatchName(String);

impl BatchName {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        check_common(s)?;
        if s.contains('/') {
            return Err(InvalidName::Nested(truncate_for_message(s)));
        }
        if s == "." || s == ".." {
            return Err(InvalidName::EscapesWorkdir(s.to_owned()));
        }
        if s.starts_with('.') {
            return Err(InvalidName::Hidden(truncate_for_message(s)));
        }
        Ok(Self(s.to_owned()))
    }

    /// A batch a protocol keeps one principal's jobs in (`tag` names the principal, e.g. a
    /// digest). Its folder is hidden, so the watcher never registers anything in it, no user
    /// input ([`BatchName::parse`]) can name it, and folder-batch listings leave it out.
    pub fn private(tag: &str) -> Result<Self, InvalidName> {
        if tag.is_empty()
            || tag.len() > 64
            || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(InvalidName::EscapesWorkdir(truncate_for_message(tag)));
        }
        Ok(Self(format!("{PRIVATE_PREFIX}{tag}")))
    }

    /// A batch name as the service stored it: a user's batch or a private one.
    pub fn stored(s: &str) -> Result<Self, InvalidName> {
        match s.strip_prefix(PRIVATE_PREFIX) {
            Some(tag) => Self::private(tag),
            None => Self::parse(s),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the names of private batches start with: a hidden folder.
pub const PRIVATE_PREFIX: &str = ".jobs-";

impl TryFrom<String> for BatchName {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<BatchName> for String {
    fn from(b: BatchName) -> String {
        b.0
    }
}

impl fmt::Display for BatchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file's name relative to its batch folder (or to the work directory for files without a
/// batch). May hold sub-folders (`day2/a.wav`), never `..`, `.`, an absolute path or a hidden
/// component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl FileName {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        check_common(s)?;
        if s.starts_with('/') {
            return Err(InvalidName::EscapesWorkdir(truncate_for_message(s)));
        }
        for part in s.split('/') {
            match part {
                "" | "." | ".." => {
                    return Err(InvalidName::EscapesWorkdir(truncate_for_message(s)))
                }
                p if p.starts_with('.') => {
                    return Err(InvalidName::Hidden(truncate_for_message(s)))
                }
                _ => {}
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercased extension, which the contract calls the file's `format`.
    pub fn format(&self) -> String {
        Path::new(&self.0)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    }
}

impl TryFrom<String> for FileName {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<FileName> for String {
    fn from(f: FileName) -> String {
        f.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a registered file lives: its batch (if any) and its name inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileLocation {
    pub batch: Option<BatchName>,
    pub filename: FileName,
}

impl FileLocation {
    pub fn path_in(&self, workdir: &Path) -> PathBuf {
        let mut p = workdir.to_path_buf();
        if let Some(b) = &self.batch {
            p.push(b.as_str());
        }
        p.push(self.filename.as_str());
        p
    }

    /// Interprets a path found inside the work directory. Hidden files and anything that is
    /// not a valid name (so could not have come from a user through the API) yield `None`.
    pub fn from_path(workdir: &Path, path: &Path) -> Option<Self> {
        let rel = path.strip_prefix(workdir).ok()?;
        let parts: Vec<&str> = rel
            .components()
            .map(|c| match c {
                Component::Normal(s) => s.to_str(),
                _ => None,
            })
            .collect::<Option<_>>()?;
        match parts.as_slice() {
            [] => None,
            [file] => Some(Self {
                batch: None,
                filename: FileName::parse(file).ok()?,
            }),
            [batch, rest @ ..] => Some(Self {
                batch: Some(BatchName::parse(batch).ok()?),
                filename: FileName::parse(&rest.join("/")).ok()?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_batches_are_hidden_and_never_parsed_from_input() {
        let private = BatchName::private("key-1a2b").unwrap();
        assert_eq!(private.as_str(), ".jobs-key-1a2b");
        assert!(BatchName::parse(private.as_str()).is_err());
        assert_eq!(BatchName::stored(private.as_str()).unwrap(), private);
        assert_eq!(BatchName::stored("folder1").unwrap().as_str(), "folder1");
        for bad in ["", "a/b", "..", "a.b", "x y"] {
            assert!(BatchName::private(bad).is_err(), "{bad:?} accepted");
        }
        let workdir = Path::new("/w");
        let path = FileLocation {
            batch: Some(private),
            filename: FileName::parse("a.wav").unwrap(),
        }
        .path_in(workdir);
        assert_eq!(
            FileLocation::from_path(workdir, &path),
            None,
            "the watcher must not see it"
        );
    }

    #[test]
    fn batch_names_cannot_escape() {
        assert!(BatchName::parse("folder1").is_ok());
        for bad in [
            "", ".", "..", "../x", "a/b", "/abs", ".hidden", "a\0b", "a\\b",
        ] {
            assert!(BatchName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(BatchName::parse(&"x".repeat(2000)).is_err());
        assert!(BatchName::parse(&"x".repeat(255)).is_ok());
        assert!(matches!(
            BatchName::parse(&"x".repeat(256)),
            Err(InvalidName::ComponentTooLong(_))
        ));
        // Bytes, not characters: 86 three-byte characters are 258 bytes.
        assert!(BatchName::parse(&"가".repeat(86)).is_err());
    }

    #[test]
    fn file_names_may_nest_but_not_escape() {
        assert_eq!(FileName::parse("day2/a.WAV").unwrap().format(), "wav");
        for bad in [
            "",
            "/etc/passwd",
            "../a.wav",
            "a/../../b",
            "a//b",
            "./a",
            ".a.wav",
            "a/.b",
            "a\nb",
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("day2/{}.wav", "x".repeat(296));
        assert!(matches!(
            FileName::parse(&long),
            Err(InvalidName::ComponentTooLong(_))
        ));
        assert!(FileName::parse(&format!("{}/{}", "a".repeat(255), "b".repeat(255))).is_ok());
    }

    #[test]
    fn locations_round_trip_through_paths() {
        let wd = Path::new("/srv/wd");
        let loc = FileLocation::from_path(wd, Path::new("/srv/wd/folder1/day2/a.wav")).unwrap();
        assert_eq!(loc.batch.as_ref().unwrap().as_str(), "folder1");
        assert_eq!(loc.filename.as_str(), "day2/a.wav");
        assert_eq!(loc.path_in(wd), Path::new("/srv/wd/folder1/day2/a.wav"));
        let root = FileLocation::from_path(wd, Path::new("/srv/wd/a.wav")).unwrap();
        assert!(root.batch.is_none());
        assert!(FileLocation::from_path(wd, Path::new("/srv/wd/folder1/.part")).is_none());
        assert!(FileLocation::from_path(wd, Path::new("/elsewhere/a.wav")).is_none());
    }
}
