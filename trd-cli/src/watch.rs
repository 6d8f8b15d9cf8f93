//! `trd status --batch B --watch`: one bar per stage and one for the whole batch, with the
//! files' controls and the ETA, redrawn at each poll until no file of the batch is running.
//! Without a terminal the bars stay hidden and a plain line is printed whenever it changes
//! (`--json`: the status document, one line per poll).

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::client::{Api, CliError, CliResult};
use crate::output;

const STAGES: [(&str, &str); 4] = [
    ("normalization", "normalize"),
    ("diarization", "diarize"),
    ("recognition", "recognize"),
    ("progress", "overall"),
];

/// Bars count in thousandths, so fractions from the service map onto them exactly enough.
const SCALE: u64 = 1000;

fn files(status: &Value, control: &str) -> u64 {
    status["accounted_control"][control]["files"]
        .as_u64()
        .unwrap_or(0)
}

fn summary(batch: &str, s: &Value) -> String {
    format!(
        "batch {batch}: {} files | {} finished, {} running, {} paused, {} failed, {} idle | ETA {}",
        s["total_files"].as_u64().unwrap_or(0),
        files(s, "FINISHED"),
        files(s, "RUNNING"),
        files(s, "PAUSED"),
        files(s, "FAILED"),
        files(s, "IDLE"),
        output::duration(s["ETA"].as_f64().unwrap_or(0.0)),
    )
}

pub fn watch(api: &Api, batch: &str, path: &str, interval: Duration, json: bool) -> CliResult<()> {
    let multi = MultiProgress::new();
    let header = multi.add(ProgressBar::new_spinner());
    header.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40.cyan/blue}] {percent:>3}%")
        .expect("valid template")
        .progress_chars("=> ");
    let bars: Vec<ProgressBar> = STAGES
        .iter()
        .map(|(_, label)| {
            let bar = multi.add(ProgressBar::new(SCALE));
            bar.set_style(style.clone());
            bar.set_prefix(*label);
            bar
        })
        .collect();
    let plain = multi.is_hidden();
    let mut last_line = String::new();
    loop {
        let status = api.get_json(path, &[])?;
        let line = summary(batch, &status);
        for ((key, _), bar) in STAGES.iter().zip(&bars) {
            let fraction = status[*key].as_f64().unwrap_or(0.0).clamp(0.0, 1.0);
            bar.set_position((fraction * SCALE as f64).round() as u64);
        }
        header.set_message(line.clone());
        header.tick();
        if json {
            println!("{status}");
        } else if plain && line != last_line {
            let pct = status["progress"].as_f64().unwrap_or(0.0) * 100.0;
            println!("{pct:5.1}%  {line}");
        }
        last_line = line;
        if files(&status, "RUNNING") == 0 {
            for bar in &bars {
                bar.finish();
            }
            header.finish_with_message(last_line.clone());
            let failed = files(&status, "FAILED");
            if failed > 0 {
                return Err(CliError::FilesFailed(format!(
                    "batch {batch} ended with {failed} FAILED file(s); `trd ls --batch {batch}` shows them"
                )));
            }
            if !json && !plain {
                println!("{last_line}");
            }
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}
