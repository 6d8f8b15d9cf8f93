//! The settings file of the processes a test starts: the test's whole [`Settings`], written as
//! the `[default.trd]` table that `Settings::load` reads from `$TRD_CONFIG`. Whatever a test
//! changes in its settings reaches every process it starts, with nothing copied by hand.

use std::path::PathBuf;
use std::process::Command;

use trd_core::Settings;

/// Where a test's settings files go: a hidden folder of its work directory (the watcher skips
/// hidden names), removed with it.
const FOLDER: &str = ".trd-settings";

/// Writes `settings` to a new file in the work directory and returns its path. Each call gets
/// its own file, so a process never reads one half-written for another.
pub fn write(settings: &Settings) -> PathBuf {
    let dir = settings.workdir.join(FOLDER);
    std::fs::create_dir_all(&dir).expect("the settings folder in the work directory");
    let path = dir.join(format!("{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, render(settings)).expect("the settings file");
    path
}

fn render(settings: &Settings) -> String {
    let profile = toml::Table::from_iter([("trd".to_owned(), table(settings).into())]);
    let file = toml::Table::from_iter([("default".to_owned(), profile.into())]);
    toml::to_string(&file).expect("settings serialise as TOML")
}

fn table(settings: &Settings) -> toml::Table {
    toml::Table::try_from(settings).expect("settings serialise as a TOML table")
}

/// Points `command` at a settings file holding `settings`. `TRD_<KEY>` variables would
/// override the file: the test's own environment's are not passed on (a caller may still set
/// one on the command afterwards, for a setting meant for that process alone).
pub fn configure(command: &mut Command, settings: &Settings) {
    command.env("TRD_CONFIG", write(settings));
    for key in table(settings).keys() {
        command.env_remove(format!("TRD_{}", key.to_uppercase()));
    }
}
