//! Loaded Vosk models, by id. Loading takes a second and ~0.6 GB, so each model is loaded at
//! most once per process and then shared by every recognition thread.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use crate::spoken_forms::SpokenForms;

#[derive(Debug, thiserror::Error, Clone)]
pub enum ModelError {
    #[error("recognition model '{0}' is not configured")]
    Unknown(String),
    #[error(
        "recognition model '{id}' could not be loaded from {path}: not a Vosk model directory"
    )]
    Unloadable { id: String, path: String },
}

/// A loaded model and the recognizers it lent out before. Vosk's API takes `&mut` for word
/// look-ups, so the model sits behind a mutex; recognizers only hold it while being created.
pub struct LoadedModel {
    model: Mutex<vosk::Model>,
    spoken_forms: SpokenForms,
    idle: Mutex<Vec<PooledRecognizer>>,
}

/// A recognizer that can be used again: a fresh Vosk recognizer spends seconds of CPU on its
/// first utterance (it builds its decoding graph's caches lazily), a used one decodes the same
/// audio about five times faster. After a final result it starts the next utterance with a
/// fresh feature pipeline and decoder, so reuse does not change what it hears; only its clock
/// runs on, which `fed_seconds` lets the caller take back out of word times.
pub struct PooledRecognizer {
    pub recognizer: vosk::Recognizer,
    sample_rate: u32,
    fed_samples: u64,
}

/// A recognizer is retired after this much audio: Vosk reports word times from its own clock
/// as 32-bit floats, which must stay finer than a millisecond once that clock is subtracted.
const RETIRE_AFTER_SECONDS: f64 = 600.0;

impl PooledRecognizer {
    /// Seconds of audio this recognizer heard before: the offset of its word times.
    pub fn fed_seconds(&self) -> f64 {
        self.fed_samples as f64 / self.sample_rate as f64
    }

    pub fn feed(
        &mut self,
        samples: &[i16],
    ) -> Result<vosk::DecodingState, vosk::AcceptWaveformError> {
        self.fed_samples += samples.len() as u64;
        self.recognizer.accept_waveform(samples)
    }
}

impl LoadedModel {
    /// A recognizer at `sample_rate`, ready for a new utterance: an idle one, or a new one.
    pub fn recognizer(&self, sample_rate: u32) -> Option<PooledRecognizer> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.iter()
                .position(|r| r.sample_rate == sample_rate)
                .map(|i| idle.swap_remove(i))
        };
        if reused.is_some() {
            return reused;
        }
        let model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        let mut recognizer = vosk::Recognizer::new(&model, sample_rate as f32)?;
        recognizer.set_words(true);
        Some(PooledRecognizer {
            recognizer,
            sample_rate,
            fed_samples: 0,
        })
    }

    /// Takes back a recognizer whose last call was a final result (so it is between
    /// utterances); one that has heard enough is dropped instead.
    pub fn give_back(&self, recognizer: PooledRecognizer) {
        if recognizer.fed_seconds() < RETIRE_AFTER_SECONDS {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(recognizer);
        }
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
                    idle: Mutex::new(Vec::new()),
                })
            })
            .ok_or_else(|| ModelError::Unloadable {
                id: id.to_owned(),
                path: dir.display().to_string(),
            })
    })
    .clone()
}
