//! `trd results`: a batch's ZIP downloaded to a temporary file beside the destination and
//! unpacked there (entry names are checked, so an archive can never write outside it), or one
//! file's transcript written to a file or standard output.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

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
    let mut zip = tempfile_in(&dir)?;
    response.copy_to(zip.file()).map_err(download_error)?;
    let written = unpack(zip.path(), &dir)?;
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

/// A hidden download file, removed when dropped.
struct Download {
    path: PathBuf,
    file: File,
}

impl Download {
    fn file(&mut self) -> &mut File {
        &mut self.file
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_in(dir: &Path) -> CliResult<Download> {
    let path = dir.join(format!(".trd-download-{}.zip", std::process::id()));
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| write_error(&path, e))?;
    Ok(Download { path, file })
}

/// Unpacks every entry under `dir`; answers the files written.
fn unpack(zip: &Path, dir: &Path) -> CliResult<Vec<PathBuf>> {
    let broken = |e: zip::result::ZipError| {
        CliError::Unavailable(format!(
            "the batch archive is incomplete or damaged ({e}); the service may have failed while building it"
        ))
    };
    let mut archive = zip::ZipArchive::new(File::open(zip)?).map_err(broken)?;
    let mut written = Vec::new();
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
        let mut out = File::create(&target).map_err(|e| write_error(&target, e))?;
        io::copy(&mut entry, &mut out).map_err(|e| write_error(&target, e))?;
        out.flush()?;
        written.push(target);
    }
    Ok(written)
}
