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

/// A loaded model. Vosk's API takes `&mut` for word look-ups, so the model sits behind a
/// mutex; recognizers only hold it for the instant it takes to create them.
pub struct LoadedModel {
    model: Mutex<vosk::Model>,
    spoken_forms: SpokenForms,
}

impl LoadedModel {
    /// A new recognizer for each segment. Reusing recognizers would be about five times faster
    /// (a fresh one spends seconds of CPU filling its lazily composed decoding graph on its first
    /// utterance), but a used one's word confidences depend on what it heard before, so the same
    /// file would get different results depending on which recognizer took which segment.
    pub fn recognizer(&self, sample_rate: u32) -> Option<vosk::Recognizer> {
        let model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        vosk::Recognizer::new(&model, sample_rate as f32)
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
                path: dir.display().to_string(),
            })
    })
    .clone()
}
