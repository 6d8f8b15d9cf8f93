//! What people read: short lines and aligned tables. `--json` bypasses all of it.

use serde_json::Value;

pub fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values print")
    );
}

/// `{filename: url}` answers: one line per file with its id.
pub fn url_map(answer: &Value, as_json: bool, verb: &str) {
    if as_json {
        return json(answer);
    }
    let Some(map) = answer.as_object() else {
        return json(answer);
    };
    for (filename, url) in map {
        let id = url
            .as_str()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("?");
        println!("{verb:>9}  {id}  {filename}");
    }
}

pub fn record_line(record: &Value, verb: &str) {
    println!(
        "{verb}: {}  {}  {}/{}",
        text(&record["_id"]),
        text(&record["filename"]),
        text(&record["control"]),
        text(&record["status"])
    );
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Seconds as `1h02m03s`, `4m05s` or `6s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

pub fn records(list: &Value) {
    let rows: Vec<[String; 6]> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let seconds = r["audioChannels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["duration"].as_f64())
                .fold(0.0, f64::max);
            [
                text(&r["_id"]),
                text(&r["batch"]),
                text(&r["filename"]),
                text(&r["control"]),
                text(&r["status"]),
                if seconds > 0.0 {
                    duration(seconds)
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    let header = ["ID", "BATCH", "FILE", "CONTROL", "STATUS", "AUDIO"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    if rows.is_empty() {
        println!("(no files)");
    }
}

pub fn batch_status(s: &Value) {
    let pct = |k: &str| s[k].as_f64().unwrap_or(0.0) * 100.0;
    println!(
        "batch {}: {} files, {:.0}% done, ETA {}",
        text(&s["batch"]),
        s["total_files"].as_u64().unwrap_or(0),
        pct("progress"),
        duration(s["ETA"].as_f64().unwrap_or(0.0))
    );
    println!(
        "  normalization {:.0}%  diarization {:.0}%  recognition {:.0}%",
        pct("normalization"),
        pct("diarization"),
        pct("recognition")
    );
    println!("  control: {}", tallies(&s["accounted_control"], "files"));
    println!(
        "  audio {}, speech {}",
        duration(s["total_audio"].as_f64().unwrap_or(0.0)),
        duration(s["total_speech"].as_f64().unwrap_or(0.0))
    );
}

/// `{"FINISHED": {"files": 3, …}, …}` as `FINISHED 3, RUNNING 1`.
pub fn tallies(map: &Value, key: &str) -> String {
    let parts: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {}", v[key]))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

pub fn file_status(s: &Value) {
    println!(
        "{} segments, {:.1} s of speech",
        s["total_segments"].as_u64().unwrap_or(0),
        s["total_speech"].as_f64().unwrap_or(0.0)
    );
    println!("  {}", tallies(&s["accounted_speech"], "segments"));
}

pub fn health(h: &Value) {
    println!("status: {}", text(&h["status"]));
    for dep in ["mongodb", "rabbitmq"] {
        let ok = h[dep]["ok"].as_bool().unwrap_or(false);
        println!("  {dep}: {}", if ok { "ok" } else { "DOWN" });
    }
    for (name, q) in h["queues"].as_object().into_iter().flatten() {
        println!(
            "  queue {name}: {} messages, {} consumers",
            q["messages"], q["consumers"]
        );
    }
}

/// API keys (one, or a list): id, name, scopes and batches, one line each.
pub fn keys(answer: &Value) {
    let list = match answer.as_array() {
        Some(list) => list.clone(),
        None => vec![answer.clone()],
    };
    for key in list {
        let words = |field: &str| {
            key[field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "*".to_owned())
        };
        println!(
            "{}  {:<24}  scopes {:<20}  batches {}",
            key["id"].as_str().unwrap_or_default(),
            key["name"].as_str().unwrap_or_default(),
            words("scopes"),
            words("batches"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(5.4), "5s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(3723.0), "1h02m03s");
    }
}
