//! The external checkers the tests drive (installed by `scripts/lib/provision-test.sh`): a
//! Python virtual environment with an OpenAPI validator, schemathesis, a Prometheus text parser
//! and Selenium, Debian's Chromium and its WebDriver, and Prometheus's `promtool`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `$TRD_CACHE`, else `~/.cache/trd`: where provisioning puts what it fetches.
fn cache_dir() -> PathBuf {
    std::env::var_os("TRD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/trd")
        })
}

/// `$TRD_TEST_TOOLS`, else `test-tools` in the provisioning cache.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRD_TEST_TOOLS") {
        return PathBuf::from(dir);
    }
    cache_dir().join("test-tools")
}

/// Firefox's WebDriver, built by provisioning into the cache (`$TRD_GECKODRIVER` names another).
pub fn geckodriver() -> PathBuf {
    let path = std::env::var_os("TRD_GECKODRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("geckodriver/bin/geckodriver"));
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/lib/provision-test.sh` (or scripts/test)",
        path.display()
    );
    path
}

/// A program of the tools' virtual environment (`python`, `schemathesis`…).
pub fn tool(name: &str) -> PathBuf {
    let path = tools_dir().join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/lib/provision-test.sh` (or scripts/test)",
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

/// `promtool check metrics` on an exposition: Prometheus's own strict parser of the text format
/// and its linter. `Err` with what it printed when it finds anything (it exits non-zero for
/// lint problems as well as for parse errors, and prints nothing for a clean exposition).
/// [`python_json`] on a blocking thread, for async tests that run several at once.
pub async fn python_json_async(script: &'static str, args: Vec<String>) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python_json(script, &args)
    })
    .await
    .expect("the script's thread")
}

pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    // Provisioning takes promtool out of Debian's package into the cache; one installed with
    // the package serves as well.
    let cached = cache_dir().join("promtool/promtool");
    let promtool = if cached.exists() {
        cached
    } else {
        PathBuf::from("promtool")
    };
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not run ({e}): run `bash scripts/lib/provision-test.sh`",
                promtool.display()
            )
        });
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool reads the exposition");
    let out = child.wait_with_output().expect("promtool finishes");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics ({}):\n{said}", out.status))
    }
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
