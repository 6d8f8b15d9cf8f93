//! The commands. Every one talks to the HTTP API only; `--json` prints the service's own JSON
//! for scripts, otherwise the output is for people.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::client::{Api, CliError, CliResult};
use crate::output;
use crate::target::{encode, Target};

/// Command-line client for TRD, the folder-batch speech-transcription service.
///
/// Exit codes: 0 done; 1 unexpected failure; 2 bad command line; 3 no such file, batch or id;
/// 4 refused by the service (bad name, conflict, too large…); 5 service unreachable or
/// failing; 6 the batch ended with FAILED files.
#[derive(Debug, Parser)]
#[command(name = "trd", version)]
pub struct Cli {
    /// The service's base URL.
    #[arg(
        long,
        global = true,
        env = "TRD_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// An API key or access token, sent as `Authorization: Bearer` (none: anonymous, which
    /// the service allows from its trusted networks).
    #[arg(long, global = true, env = "TRD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the service's JSON instead of text (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload audio files (they are registered at once, IDLE).
    Upload {
        /// The batch (folder) to put them in; none: the work directory itself.
        #[arg(long, short)]
        batch: Option<String>,
        /// Audio files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start (or resume) a file or every IDLE/PAUSED file of a batch.
    Start {
        #[command(flatten)]
        target: Target,
        /// Recognition model id (`lm.uri`).
        #[arg(long)]
        model: Option<String>,
        /// A word or phrase expected in the audio (repeatable).
        #[arg(long = "hint")]
        hints: Vec<String>,
        /// URL to notify when each file ends (repeatable).
        #[arg(long = "webhook")]
        webhooks: Vec<String>,
        /// Diarization: auto, speaker, channel or none.
        #[arg(long)]
        diarization: Option<String>,
        /// Exact number of speakers.
        #[arg(long)]
        speakers: Option<u32>,
    },
    /// Pause a running file or every running file of a batch.
    Stop {
        #[command(flatten)]
        target: Target,
    },
    /// Reset a file (a new record, a new id) or the unfinished files of a batch.
    Reset {
        #[command(flatten)]
        target: Target,
        /// With --batch: reset finished files too.
        #[arg(long)]
        hard: bool,
    },
    /// Progress of a file or a batch; --watch follows a batch with live bars until it is done.
    Status {
        #[command(flatten)]
        target: Target,
        /// Follow the batch until no file is running (exit 0; 6 if some failed).
        #[arg(long, short)]
        watch: bool,
        /// Seconds between polls with --watch.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// Download transcripts: a batch's ZIP unpacked into a folder, or one file's transcript.
    Results {
        #[command(flatten)]
        target: Target,
        /// json, csv, txt, vtt, srt, trs, extended_trs (and json-array for a batch).
        #[arg(long, short, default_value = "json")]
        format: String,
        /// Folder to write into (a batch), or file (one transcript); default: the current
        /// folder for a batch, standard output for a file.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// List files (all, or one batch's) with their control and status.
    Ls {
        #[arg(long, short)]
        batch: Option<String>,
    },
    /// The service's dependencies and queues (exit 5 when one is down).
    Health,
    /// API keys (admin).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Users (admin).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed this once.
    Create {
        /// What the key is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Scopes: read, operate, admin (comma-separated or repeated).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Limit the key to this batch (repeatable); none: every batch.
        #[arg(long = "batch")]
        batches: Vec<String>,
    },
    /// List the keys (never their secrets).
    Ls,
    /// Revoke a key, at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from standard input (one line).
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Scopes: read, operate, admin (default read,operate).
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Limit the user to this batch (repeatable).
        #[arg(long = "batch")]
        batches: Vec<String>,
    },
    /// Remove a user; their tokens stop working at once.
    Rm { name: String },
}

pub fn run(cli: Cli) -> CliResult<()> {
    let api = Api::new(&cli.url, cli.token.as_deref())?;
    let json = cli.json;
    match cli.command {
        Command::Upload { batch, files } => {
            let answer = api.upload(batch.as_deref(), &files)?;
            output::url_map(&answer, json, "uploaded");
        }
        Command::Start {
            target,
            model,
            hints,
            webhooks,
            diarization,
            speakers,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            query.extend(model.map(|m| ("lm.uri", m)));
            if !hints.is_empty() {
                query.push(("hints.words", hints.join(",")));
            }
            query.extend(webhooks.into_iter().map(|w| ("webhook", w)));
            query.extend(diarization.map(|d| ("diarization", d)));
            query.extend(speakers.map(|n| ("speakers", n.to_string())));
            let answer = api.get_json(&target.path("/transcription/start"), &query)?;
            changed(&answer, &target, json, "started");
        }
        Command::Stop { target } => {
            let answer = api.get_json(&target.path("/transcription/stop"), &[])?;
            changed(&answer, &target, json, "stopped");
        }
        Command::Reset { target, hard } => {
            let query: Vec<(&str, String)> = if hard && target.batch.is_some() {
                vec![("hard", "true".into())]
            } else {
                Vec::new()
            };
            let answer = api.get_json(&target.path("/transcription/reset"), &query)?;
            if json {
                output::json(&answer);
            } else if target.batch.is_some() {
                output::batch_status(&answer);
            } else {
                output::record_line(&answer, "reset, new record");
            }
        }
        Command::Status {
            target,
            watch,
            interval,
        } => {
            let path = target.path("/transcription/status");
            if watch {
                let Some(batch) = &target.batch else {
                    return Err(CliError::Refused(
                        "--watch follows a batch: use --batch".into(),
                    ));
                };
                let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
                crate::watch::watch(&api, batch, &path, interval, json)?;
            } else {
                let answer = api.get_json(&path, &[])?;
                if json {
                    output::json(&answer);
                } else if target.batch.is_some() {
                    output::batch_status(&answer);
                } else {
                    output::file_status(&answer);
                }
            }
        }
        Command::Results {
            target,
            format,
            output: out,
        } => crate::results::download(&api, &target, &format, out, json)?,
        Command::Ls { batch } => {
            let path = match &batch {
                Some(b) => format!("/audiofile/list/batch/{}", encode(b)),
                None => "/audiofile/list".to_owned(),
            };
            let answer = api.get_json(&path, &[])?;
            if json {
                output::json(&answer);
            } else {
                output::records(&answer);
            }
        }
        Command::Health => {
            // A 503 names what is down in its error message, which becomes ours (exit 5).
            let answer = api.get_json("/health", &[])?;
            if json {
                output::json(&answer);
            } else {
                output::health(&answer);
            }
        }
        Command::Keys { command } => keys(&api, command, json)?,
        Command::Users { command } => users(&api, command, json)?,
    }
    Ok(())
}

fn keys(api: &Api, command: KeysCommand, json: bool) -> CliResult<()> {
    let answer = match command {
        KeysCommand::Create {
            name,
            scopes,
            batches,
        } => {
            let mut body = serde_json::json!({"name": name, "scopes": scopes});
            if !batches.is_empty() {
                body["batches"] = serde_json::json!(batches);
            }
            let created = api.post_json("/trd/auth/keys", &body)?;
            if !json {
                println!("{}", created["key"].as_str().unwrap_or_default());
                eprintln!(
                    "key {} created: keep it now, it is not shown again",
                    created["id"].as_str().unwrap_or_default()
                );
                return Ok(());
            }
            created
        }
        KeysCommand::Ls => api.get_json("/auth/keys", &[])?,
        KeysCommand::Revoke { id } => {
            api.delete_json(&format!("/trd/auth/keys/{}", encode(&id)))?
        }
    };
    if json {
        output::json(&answer);
    } else {
        output::keys(&answer);
    }
    Ok(())
}

fn users(api: &Api, command: UsersCommand, json: bool) -> CliResult<()> {
    let answer = match command {
        UsersCommand::Add {
            name,
            email,
            scopes,
            batches,
        } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let mut body = serde_json::json!({"username": name, "password": password});
            if let Some(email) = email {
                body["email"] = serde_json::json!(email);
            }
            if !scopes.is_empty() {
                body["scopes"] = serde_json::json!(scopes);
            }
            if !batches.is_empty() {
                body["batches"] = serde_json::json!(batches);
            }
            api.post_json("/api/v1/users/register", &body)?
        }
        UsersCommand::Rm { name } => {
            api.delete_json(&format!("/trd/auth/users/{}", encode(&name)))?
        }
    };
    if json {
        output::json(&answer);
    } else {
        println!("{}", answer["username"].as_str().unwrap_or_default());
    }
    Ok(())
}

fn changed(answer: &Value, target: &Target, json: bool, verb: &str) {
    if json {
        output::json(answer);
    } else if target.batch.is_some() {
        output::url_map(answer, false, verb);
    } else {
        output::record_line(answer, verb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_help_and_a_target_is_required() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        assert!(Cli::try_parse_from(["trd", "start"]).is_err());
        assert!(Cli::try_parse_from(["trd", "start", "abc", "--batch", "b"]).is_err());
        assert!(Cli::try_parse_from(["trd", "status", "--batch", "b", "--watch"]).is_ok());
    }
}
