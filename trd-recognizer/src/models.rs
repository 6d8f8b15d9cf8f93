//! Loaded Vosk models, by id. Loading the default model (static graph) takes about 2 s and
//! 1.2 GB, so each model is loaded at most once per process and then shared by every
//! recognition thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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

/// Returns the model `id` at `dir`, loading it on first use. Concurrent first uses wait for one
/// load instead of loading twice.
pub fn load(id: &str, dir: &Path) -> Result<Arc<LoadedModel>, ModelError> {
    let slot = {
        let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(id.to_owned()).or_default().clone()
    };
    slot.get_or_init(|| {
        tracing::info!(model = id, dir = %dir.display(), "loading recognition model");
        vosk::set_log_level(vosk::LogLevel::Error);
        vosk::Model::new(dir.to_string_lossy())
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
