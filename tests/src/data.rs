//! The shared test audio (`../shared/data`, or `$TRD_TEST_DATA`).

use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn data_dir() -> PathBuf {
    std::env::var_os("TRD_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

pub fn path(relative: &str) -> PathBuf {
    data_dir().join(relative)
}

/// `refs.tsv` of a folder: file name → reference text.
pub fn references(folder: &str) -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(path(folder).join("refs.tsv")).expect("refs.tsv is readable");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let file = cols.next()?;
            let _speaker = cols.next()?;
            Some((file.to_owned(), cols.next()?.to_owned()))
        })
        .collect()
}
