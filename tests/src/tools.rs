//! The external checkers the tests drive (installed by `scripts/lib/provision.sh`): a Python
//! virtual environment with an OpenAPI validator, schemathesis, a Prometheus text parser and
//! Selenium, plus Debian's Chromium and its WebDriver.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `$TRD_TEST_TOOLS`, else `test-tools` in the provisioning cache.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRD_TEST_TOOLS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("TRD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/trd")
        });
    cache.join("test-tools")
}

/// A program of the tools' virtual environment (`python`, `schemathesis`…).
pub fn tool(name: &str) -> PathBuf {
    let path = tools_dir().join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/lib/provision.sh` (or scripts/test)",
        path.display()
    );
    path
}

/// Runs a Python script (the tests' small glue around the checkers) with arguments.
pub fn python(script: &str, args: &[&str]) -> Output {
    Command::new(tool("python"))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("the tools' Python runs")
}

/// Runs a Python script and parses the JSON it prints last; panics with its output otherwise.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let out = python(script, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "script failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

/// A folder kept after the test for what it produced (screenshots, reports):
/// `var/test-artifacts/<name>` in the workspace.
pub fn artifacts_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../var/test-artifacts")
        .join(name);
    std::fs::create_dir_all(&dir).expect("artifacts folder");
    dir.canonicalize().expect("artifacts folder path")
}
