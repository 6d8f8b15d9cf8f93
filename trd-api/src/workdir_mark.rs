//! The work directory's mark: set at the service's first start, looked for at every later one.
//!
//! A work directory on its own file system (a mount) leaves an empty folder behind when it is
//! unmounted. Without a mark, the service could not tell that folder from a new, empty work
//! directory: it would store uploads on the root file system and fail every file as "gone".
//! With it, a directory without the mark, once the service has set one up, is the work
//! directory missing: nothing is written there, uploads answer 503, and the normalizer holds
//! its files until the mark is back.

use std::io;
use std::path::Path;

use trd_core::workdir_files::{workdir_present, WORKDIR_MARK};

/// The file in `state_dir` saying that this service has set up a work directory before.
const REMEMBERED: &str = "workdir-mark";

/// Makes `workdir` ready: the mark is set at the first start (creating the directory), and
/// afterwards only looked for. `Ok(false)`: the mark is missing although one was set before.
pub fn prepare(workdir: &Path, state_dir: &Path) -> io::Result<bool> {
    let remembered = state_dir.join(REMEMBERED);
    if workdir_present(workdir) {
        if !remembered.exists() {
            std::fs::create_dir_all(state_dir)?;
            std::fs::write(&remembered, b"")?;
        }
        return Ok(true);
    }
    if remembered.exists() {
        tracing::error!(
            workdir = %workdir.display(),
            "the work directory has no {WORKDIR_MARK} although this service set one up: it is \
             unmounted or replaced; nothing is stored there and its files wait until it is back"
        );
        return Ok(false);
    }
    // First start with this work directory.
    std::fs::create_dir_all(workdir)?;
    std::fs::write(workdir.join(WORKDIR_MARK), b"")?;
    std::fs::create_dir_all(state_dir)?;
    std::fs::write(&remembered, b"")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_start_marks_and_a_later_one_refuses_an_unmarked_directory() {
        let root = std::env::temp_dir().join(format!("trd-mark-{}", std::process::id()));
        let (workdir, state) = (root.join("work"), root.join("state"));
        let _ = std::fs::remove_dir_all(&root);
        assert!(prepare(&workdir, &state).unwrap());
        assert!(workdir.join(WORKDIR_MARK).is_file());
        assert!(prepare(&workdir, &state).unwrap());
        // An empty folder where the work directory was (unmounted): not marked again.
        std::fs::remove_file(workdir.join(WORKDIR_MARK)).unwrap();
        assert!(!prepare(&workdir, &state).unwrap());
        assert!(!workdir.join(WORKDIR_MARK).exists());
        // Another service's state sees a marked directory and remembers it.
        std::fs::write(workdir.join(WORKDIR_MARK), b"").unwrap();
        assert!(prepare(&workdir, &root.join("other")).unwrap());
        assert!(root.join("other").join(REMEMBERED).is_file());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
