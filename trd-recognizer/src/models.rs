//! Loaded Vosk models, by id. Loading the default model (static graph) takes about 2 s and
//! 1.2 GB, so each model is loaded at most once per process and then shared by every
//! recognition thread. A model is loaded with TRD's decoding options ([`Decoding`]) laid over
//! its own configuration, through a directory of links to its files.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tempfile::TempDir;
use trd_core::Settings;

use crate::spoken_forms::SpokenForms;

#[derive(Debug, thiserror::Error, Clone)]
pub enum ModelError {
    #[error("recognition model '{0}' is not configured")]
    Unknown(String),
    #[error(
        "recognition model '{id}' could not be loaded from {}: not a Vosk model directory",
        path.display()
    )]
    Unloadable { id: String, path: PathBuf },
    /// The directory laying TRD's decoding options over the model's could not be made (the
    /// error's text: `io::Error` cannot be cloned, and a load's outcome is shared).
    #[error(
        "recognition model '{id}' at {}: could not lay the decoding options over its configuration: {reason}",
        path.display()
    )]
    Options {
        id: String,
        path: PathBuf,
        reason: String,
    },
}

/// Decoding options TRD sets over a model's own `conf/model.conf` (see
/// `trd_core::Settings::recognizer_frames_per_chunk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoding {
    /// Kaldi's `--frames-per-chunk`; 0 keeps the model's.
    pub frames_per_chunk: u32,
}

impl Decoding {
    pub fn of(settings: &Settings) -> Self {
        Decoding {
            frames_per_chunk: settings.recognizer_frames_per_chunk,
        }
    }

    /// A directory Vosk loads as `model` with these options: links to each of its files, and
    /// its `conf/model.conf` with the options appended (the last value of an option is the
    /// one Kaldi keeps). `None` when there is nothing to lay over: the option is 0, the model
    /// names it itself, or the model has no `conf/model.conf` (Vosk's older layout, whose
    /// settings live elsewhere). Vosk reads every file while loading, so the directory may go
    /// once the model is loaded.
    pub fn laid_over(self, model: &Path) -> io::Result<Option<TempDir>> {
        let conf = model.join("conf").join("model.conf");
        if self.frames_per_chunk == 0 || !conf.is_file() {
            return Ok(None);
        }
        let own = fs::read_to_string(&conf)?;
        let names_it = own
            .lines()
            .any(|line| line.trim_start().starts_with("--frames-per-chunk"));
        if names_it {
            return Ok(None);
        }
        let model = model.canonicalize()?;
        let laid = tempfile::Builder::new().prefix("trd-model-").tempdir()?;
        link_entries(&model, laid.path(), "conf")?;
        let laid_conf = laid.path().join("conf");
        fs::create_dir(&laid_conf)?;
        link_entries(&model.join("conf"), &laid_conf, "model.conf")?;
        let options = format!("--frames-per-chunk={}\n", self.frames_per_chunk);
        let separator = if own.ends_with('\n') || own.is_empty() {
            ""
        } else {
            "\n"
        };
        fs::write(laid_conf.join("model.conf"), own + separator + &options)?;
        Ok(Some(laid))
    }
}

/// Links every entry of `from` but `except` into `to`.
fn link_entries(from: &Path, to: &Path, except: &str) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() != except {
            std::os::unix::fs::symlink(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// A loaded model. Vosk's API takes `&mut` for word look-ups, so the model sits behind a
/// mutex; recognizers only hold it for the instant it takes to create them.
pub struct LoadedModel {
    model: Mutex<vosk::Model>,
    spoken_forms: SpokenForms,
}

/// One Vosk recognizer hearing a run's segments one after another (see [`crate::runs`]). Each
/// segment ends in a final result, after which Vosk starts the next with a fresh feature
/// pipeline and decoder; what carries over is the clock its word times are measured on, which
/// `heard_seconds` lets the caller take out again, and, with a lookahead model, the part of the
/// decoding graph it has composed so far.
pub struct RunRecognizer {
    pub vosk: vosk::Recognizer,
    sample_rate: u32,
    fed_samples: u64,
}

impl RunRecognizer {
    /// Seconds of audio heard before: where the recognizer's clock stands.
    pub fn heard_seconds(&self) -> f64 {
        self.fed_samples as f64 / self.sample_rate as f64
    }

    pub fn feed(
        &mut self,
        samples: &[i16],
    ) -> Result<vosk::DecodingState, vosk::AcceptWaveformError> {
        self.fed_samples += samples.len() as u64;
        self.vosk.accept_waveform(samples)
    }
}

impl LoadedModel {
    /// A new recognizer at `sample_rate` for one run.
    pub fn recognizer(&self, sample_rate: u32) -> Option<RunRecognizer> {
        let model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        let mut vosk = vosk::Recognizer::new(&model, sample_rate as f32)?;
        vosk.set_words(true);
        Some(RunRecognizer {
            vosk,
            sample_rate,
            fed_samples: 0,
        })
    }

    /// How this model's marked-up words are shown.
    pub fn spoken_forms(&self) -> SpokenForms {
        self.spoken_forms
    }

    /// Whether the model's vocabulary has this word.
    pub fn knows_word(&self, word: &str) -> bool {
        let mut model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        model.find_word(word).is_some()
    }
}

type Cache = Mutex<HashMap<String, Arc<OnceLock<Result<Arc<LoadedModel>, ModelError>>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Returns the model `id` at `dir` with `decoding`, loading it on first use. Concurrent first
/// uses wait for one load instead of loading twice.
pub fn load(id: &str, dir: &Path, decoding: Decoding) -> Result<Arc<LoadedModel>, ModelError> {
    let slot = {
        let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
        let key = format!("{id} {}", decoding.frames_per_chunk);
        cache.entry(key).or_default().clone()
    };
    slot.get_or_init(|| {
        tracing::info!(model = id, dir = %dir.display(), ?decoding, "loading recognition model");
        let laid = decoding.laid_over(dir).map_err(|e| ModelError::Options {
            id: id.to_owned(),
            path: dir.to_owned(),
            reason: e.to_string(),
        })?;
        let from = laid.as_ref().map_or(dir, TempDir::path);
        vosk::set_log_level(vosk::LogLevel::Error);
        vosk::Model::new(from.to_string_lossy())
            .map(|mut m| {
                let spoken_forms = SpokenForms::detect(|w| m.find_word(w).is_some());
                Arc::new(LoadedModel {
                    model: Mutex::new(m),
                    spoken_forms,
                })
            })
            .ok_or_else(|| ModelError::Unloadable {
                id: id.to_owned(),
                path: dir.to_owned(),
            })
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_with(conf: Option<&str>) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["am", "graph", "conf"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        fs::write(dir.path().join("am/final.mdl"), "weights").unwrap();
        fs::write(dir.path().join("conf/mfcc.conf"), "--dither=0.0\n").unwrap();
        if let Some(conf) = conf {
            fs::write(dir.path().join("conf/model.conf"), conf).unwrap();
        }
        dir
    }

    #[test]
    fn the_options_are_appended_to_the_models_own_and_every_other_file_is_linked() {
        let model = model_with(Some("--beam=10.0\n--max-active=3000"));
        let laid = Decoding {
            frames_per_chunk: 51,
        }
        .laid_over(model.path())
        .unwrap()
        .expect("options to lay over");
        let conf = fs::read_to_string(laid.path().join("conf/model.conf")).unwrap();
        assert_eq!(
            conf,
            "--beam=10.0\n--max-active=3000\n--frames-per-chunk=51\n"
        );
        assert_eq!(
            fs::read_to_string(laid.path().join("am/final.mdl")).unwrap(),
            "weights"
        );
        assert_eq!(
            fs::read_to_string(laid.path().join("conf/mfcc.conf")).unwrap(),
            "--dither=0.0\n"
        );
        assert!(fs::symlink_metadata(laid.path().join("graph"))
            .unwrap()
            .is_symlink());
        // The model's own file is untouched.
        assert_eq!(
            fs::read_to_string(model.path().join("conf/model.conf")).unwrap(),
            "--beam=10.0\n--max-active=3000"
        );
    }

    #[test]
    fn a_model_that_sets_the_value_itself_or_has_no_configuration_is_loaded_as_it_is() {
        let decoding = Decoding {
            frames_per_chunk: 51,
        };
        let own = model_with(Some("--beam=10.0\n --frames-per-chunk=150\n"));
        assert!(decoding.laid_over(own.path()).unwrap().is_none());
        let older_layout = model_with(None);
        assert!(decoding.laid_over(older_layout.path()).unwrap().is_none());
        let model = model_with(Some("--beam=10.0\n"));
        let off = Decoding {
            frames_per_chunk: 0,
        };
        assert!(off.laid_over(model.path()).unwrap().is_none());
    }

    #[test]
    fn a_missing_model_directory_is_an_error_not_a_silent_fallback() {
        let model = model_with(Some("--beam=10.0\n"));
        let gone = model.path().to_path_buf();
        drop(model);
        // No configuration to read: loaded as it is, and Vosk then refuses the directory.
        assert!(Decoding {
            frames_per_chunk: 51
        }
        .laid_over(&gone)
        .unwrap()
        .is_none());
        let err = load(
            "gone",
            &gone,
            Decoding {
                frames_per_chunk: 51,
            },
        )
        .err()
        .expect("no model there");
        assert!(matches!(err, ModelError::Unloadable { .. }), "{err}");
    }
}
