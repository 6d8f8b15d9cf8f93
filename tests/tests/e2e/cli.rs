//! The `trd` command-line client against the running service (issue "Operator experience",
//! acceptance 3): upload → start → `status --watch` in a pseudo-terminal → CSVs on disk, and
//! the exit codes scripts rely on.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use trd_tests::app::{bin_dir, spawn_app, Workers};

fn trd(base: &str, args: &[&str]) -> Output {
    Command::new(bin_dir().join("trd"))
        .env("TRD_URL", base)
        .args(args)
        .output()
        .expect("the trd binary runs (build it with `cargo build -p trd-cli`)")
}

fn ok_json(base: &str, args: &[&str]) -> Value {
    let out = trd(base, args);
    assert!(
        out.status.success(),
        "trd {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("trd {args:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_a_batch_from_upload_to_downloaded_csvs() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let base = app.base.clone();
    let clips: Vec<PathBuf> = ["104_003_0019.wav", "104_003_0193.wav", "104_003_0253.wav"]
        .iter()
        .map(|f| trd_tests::data::path(&format!("ko/zeroth-104/{f}")))
        .collect();
    let clip_args: Vec<&str> = clips.iter().map(|p| p.to_str().unwrap()).collect();

    tokio::task::block_in_place(|| {
        let mut args = vec!["--json", "upload", "--batch", "cli"];
        args.extend(&clip_args);
        let uploaded = ok_json(&base, &args);
        assert_eq!(uploaded.as_object().unwrap().len(), 3, "{uploaded}");

        let listed = ok_json(&base, &["ls", "--batch", "cli", "--json"]);
        let records = listed.as_array().unwrap();
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r["control"] == "IDLE"));
        let human = trd(&base, &["ls", "--batch", "cli"]);
        let table = String::from_utf8_lossy(&human.stdout);
        assert!(
            table.starts_with("ID") && table.contains("104_003_0193.wav"),
            "{table}"
        );

        // Uploading a name that exists is refused, with the service's reason and exit code 4.
        let again = trd(&base, &["upload", "--batch", "cli", clip_args[0]]);
        assert_eq!(again.status.code(), Some(4));
        assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

        let started = ok_json(&base, &["start", "--batch", "cli", "--json"]);
        assert_eq!(started.as_object().unwrap().len(), 3);
    });

    // `status --watch` in a pseudo-terminal (util-linux `script`), so the bars are drawn.
    let watch_started = Instant::now();
    let trd_path = bin_dir().join("trd");
    let watch = tokio::task::block_in_place(|| {
        Command::new("script")
            .args(["--quiet", "--return", "--command"])
            .arg(format!(
                "{} status --batch cli --watch --interval 0.3",
                trd_path.display()
            ))
            .arg("/dev/null")
            .env("TRD_URL", &base)
            .env("TERM", "xterm-256color")
            .env("COLUMNS", "120")
            .output()
            .expect("script(1) runs")
    });
    let screen = String::from_utf8_lossy(&watch.stdout);
    eprintln!(
        "status --watch ran {:.1} s; its last screen:\n{}",
        watch_started.elapsed().as_secs_f64(),
        screen.rsplit('\r').take(8).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(watch.status.code(), Some(0), "{screen}");
    for label in ["normalize", "diarize", "recognize", "overall", "ETA"] {
        assert!(
            screen.contains(label),
            "{label} missing from the progress display"
        );
    }
    assert!(screen.contains("100%"), "the bars never reached 100%");
    assert!(
        screen.contains("\u{1b}["),
        "no terminal control sequences: the bars were not redrawn in place"
    );
    assert!(screen.contains("3 finished, 0 running"), "{screen}");
    // The watch ended because the batch did, not before.
    let records = app.wait_batch_done("cli", Duration::from_secs(5)).await;
    assert!(records.iter().all(|r| r["control"] == "FINISHED"));

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("csv");
    tokio::task::block_in_place(|| {
        let written = ok_json(
            &base,
            &[
                "results",
                "--batch",
                "cli",
                "--format",
                "csv",
                "-o",
                out.to_str().unwrap(),
                "--json",
            ],
        );
        assert_eq!(written.as_array().unwrap().len(), 3, "{written}");
    });
    for clip in ["104_003_0019.wav", "104_003_0193.wav", "104_003_0253.wav"] {
        let csv = std::fs::read_to_string(out.join(format!("{clip}.csv")))
            .unwrap_or_else(|e| panic!("{clip}.csv: {e}"));
        let mut lines = csv.lines();
        assert!(
            lines.next().unwrap().starts_with("contador,canal,"),
            "{csv}"
        );
        let first = lines.next().expect("at least one segment row");
        assert!(first.starts_with("1,1,"), "{first}");
    }
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));

    // Exit codes a script can rely on.
    tokio::task::block_in_place(|| {
        let missing = trd(&base, &["status", "--batch", "nosuchbatch"]);
        assert_eq!(missing.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("nosuchbatch"));
        let bad_id = trd(&base, &["stop", "not-an-id"]);
        assert_eq!(bad_id.status.code(), Some(4));
        let down = trd("http://127.0.0.1:9", &["ls"]);
        assert_eq!(down.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach"));
        let usage = trd(&base, &["start"]);
        assert_eq!(usage.status.code(), Some(2));
        let help = trd(&base, &["status", "--help"]);
        assert!(help.status.success());
        assert!(String::from_utf8_lossy(&help.stdout).contains("--watch"));
    });
}

/// `trd` with a credential in `TRD_TOKEN`, and the password on standard input.
fn trd_as(base: &str, token: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin_dir().join("trd"))
        .env("TRD_URL", base)
        .env("TRD_TOKEN", token)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the trd binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_keys_and_users_with_a_token() {
    let _turn = trd_tests::turns::shared().await;
    // No trusted network: every command needs its token.
    let app =
        trd_tests::app::spawn_app_with(Workers::None, |s| s.trusted_networks = Vec::new()).await;
    let base = app.base.clone();
    let admin = app.admin_key();
    tokio::task::block_in_place(|| {
        let anonymous = trd(&base, &["ls"]);
        assert_eq!(anonymous.status.code(), Some(4), "401 is a refusal");

        let created = trd_as(
            &base,
            &admin,
            &[
                "keys",
                "create",
                "--name",
                "night shift",
                "--scope",
                "read,operate",
                "--batch",
                "calls",
            ],
            "",
        );
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
        assert!(key.starts_with("trd_"), "{key}");
        assert!(String::from_utf8_lossy(&created.stderr).contains("not shown again"));

        let listed = trd_as(&base, &admin, &["keys", "ls", "--json"], "");
        let keys: Value = serde_json::from_slice(&listed.stdout).unwrap();
        let ours = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "night shift")
            .expect("listed");
        assert_eq!(ours["batches"], serde_json::json!(["calls"]));
        assert!(!String::from_utf8_lossy(&listed.stdout).contains(&key[key.len() - 20..]));
        let id = ours["id"].as_str().unwrap().to_owned();

        // The new key works through --token, and only for what it may do.
        let ls = trd(&base, &["--token", &key, "ls", "--json"]);
        assert!(
            ls.status.success(),
            "{}",
            String::from_utf8_lossy(&ls.stderr)
        );
        let other = trd(&base, &["--token", &key, "status", "--batch", "elsewhere"]);
        assert_eq!(other.status.code(), Some(3), "outside its batches: 404");
        let not_admin = trd(&base, &["--token", &key, "keys", "ls"]);
        assert_eq!(not_admin.status.code(), Some(4));

        let added = trd_as(
            &base,
            &admin,
            &["users", "add", "clerk", "--scope", "read"],
            "a-long-password\n",
        );
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&added.stdout).trim(), "clerk");

        let revoked = trd_as(&base, &admin, &["keys", "revoke", &id], "");
        assert!(
            revoked.status.success(),
            "{}",
            String::from_utf8_lossy(&revoked.stderr)
        );
        let after = trd(&base, &["--token", &key, "ls"]);
        assert_eq!(
            after.status.code(),
            Some(4),
            "a revoked key is refused at once"
        );
        assert!(String::from_utf8_lossy(&after.stderr).contains("not valid"));
    });
    let user = app
        .store
        .find_user("clerk")
        .await
        .unwrap()
        .expect("the user exists");
    assert_eq!(user.scopes, [trd_core::store::identity::Scope::Read]);
}
