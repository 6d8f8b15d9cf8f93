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
