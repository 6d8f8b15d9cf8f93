//! `trd results`: a batch's ZIP downloaded to a temporary file beside the destination (a
//! fresh random name, created exclusively and removed afterwards) and unpacked there: entry
//! names are checked, so an archive can never write outside it; a link already at an entry's
//! place is replaced, never followed; and no more than [`MAX_UNPACKED_BYTES`] are written, so
//! a hostile or broken archive cannot fill the disk. Or one file's transcript written to a
//! file or standard output.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::NamedTempFile;

use crate::client::{Api, CliError, CliResult};
use crate::target::{encode, Target};

pub fn download(
    api: &Api,
    target: &Target,
    format: &str,
    output: Option<PathBuf>,
    as_json: bool,
) -> CliResult<()> {
    let query = [("format", format.to_owned())];
    let Some(batch) = &target.batch else {
        let id = target
            .id
            .as_deref()
            .expect("clap requires an id or --batch");
        let mut response = api.get_raw(
            &format!("/transcription/result/audiofile/{}", encode(id)),
            &query,
        )?;
        match output {
            Some(path) => {
                let mut file = File::create(&path).map_err(|e| write_error(&path, e))?;
                response.copy_to(&mut file).map_err(download_error)?;
                eprintln!("wrote {}", path.display());
            }
            None => {
                response
                    .copy_to(&mut io::stdout().lock())
                    .map_err(download_error)?;
            }
        }
        return Ok(());
    };
    let dir = output.unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, e))?;
    let mut response = api.get_raw(
        &format!("/transcription/result/batch/{}", encode(batch)),
        &query,
    )?;
    let mut zip = tempfile::Builder::new()
        .prefix(".trd-download-")
        .suffix(".zip")
        .tempfile_in(&dir)
        .map_err(|e| write_error(&dir, e))?;
    response
        .copy_to(zip.as_file_mut())
        .map_err(download_error)?;
    let written = unpack(&zip, &dir, MAX_UNPACKED_BYTES)?;
    if as_json {
        let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        println!("{}", json!(paths));
    } else {
        for path in &written {
            println!("{}", path.display());
        }
        eprintln!("{} file(s) written to {}", written.len(), dir.display());
    }
    Ok(())
}

fn write_error(path: &Path, e: io::Error) -> CliError {
    CliError::Other(format!("cannot write {}: {e}", path.display()))
}

fn download_error(e: reqwest::Error) -> CliError {
    CliError::Unavailable(format!("the download broke off: {e}"))
}

/// The most a batch's results may unpack to. Transcripts are small (a JSON transcript of an
/// hour of speech is about a megabyte), so this is far above any real batch.
pub const MAX_UNPACKED_BYTES: u64 = 8 << 30;

/// Unpacks every entry under `dir`, at most `limit` bytes in all; answers the files written.
fn unpack(zip: &NamedTempFile, dir: &Path, limit: u64) -> CliResult<Vec<PathBuf>> {
    let broken = |e: zip::result::ZipError| {
        CliError::Unavailable(format!(
            "the batch archive is incomplete or damaged ({e}); the service may have failed while building it"
        ))
    };
    let mut archive = zip::ZipArchive::new(zip.reopen()?).map_err(broken)?;
    let mut written = Vec::new();
    let mut left = limit;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(broken)?;
        let Some(name) = entry.enclosed_name() else {
            return Err(CliError::Other(format!(
                "the archive holds an unsafe entry name: {:?}",
                entry.name_raw()
            )));
        };
        let target = dir.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
        }
        // A link planted where the entry goes would send the write elsewhere: replace it.
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => {
                return Err(write_error(
                    &target,
                    io::Error::new(io::ErrorKind::AlreadyExists, "a folder is in the way"),
                ))
            }
            Ok(_) => std::fs::remove_file(&target).map_err(|e| write_error(&target, e))?,
            Err(_) => {}
        }
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| write_error(&target, e))?;
        // The sizes an archive declares may lie: what is read is what counts.
        let copied = io::copy(&mut io::Read::take(&mut entry, left + 1), &mut out)
            .map_err(|e| write_error(&target, e))?;
        out.flush()?;
        written.push(target);
        if copied > left {
            let _ = std::fs::remove_file(written.last().expect("just pushed"));
            return Err(CliError::Other(format!(
                "the batch archive unpacks to more than {limit} bytes; stopped (the files written so far are kept)"
            )));
        }
        left -= copied;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `entries` (name, bytes) in a temporary file.
    fn archive(entries: &[(&str, Vec<u8>)]) -> NamedTempFile {
        let file = NamedTempFile::new().unwrap();
        let mut writer = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, bytes) in entries {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap();
        file
    }

    #[test]
    fn an_archive_past_the_limit_is_stopped_and_its_last_entry_removed() {
        let zip = archive(&[("a.json", vec![b'a'; 600]), ("b.json", vec![0; 10_000])]);
        let dir = tempfile::tempdir().unwrap();
        let error = unpack(&zip, dir.path(), 1_000).unwrap_err();
        assert!(
            error.to_string().contains("more than 1000 bytes"),
            "{error}"
        );
        assert_eq!(std::fs::read(dir.path().join("a.json")).unwrap().len(), 600);
        assert!(!dir.path().join("b.json").exists());
    }

    #[test]
    fn a_link_in_the_destination_is_replaced_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim.txt");
        std::fs::write(&victim, "keep me").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("a.json")).unwrap();
        let zip = archive(&[("a.json", b"{}".to_vec())]);
        let written = unpack(&zip, dir.path(), MAX_UNPACKED_BYTES).unwrap();
        assert_eq!(written, vec![dir.path().join("a.json")]);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.json")).unwrap(),
            "{}"
        );
    }

    #[test]
    fn entries_naming_a_place_outside_are_refused() {
        let zip = archive(&[("../escape.json", b"{}".to_vec())]);
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&zip, dir.path(), MAX_UNPACKED_BYTES).is_err());
        assert!(!dir.path().parent().unwrap().join("escape.json").exists());
    }
}
