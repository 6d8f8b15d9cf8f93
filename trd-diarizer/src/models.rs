//! The diarizer's two networks and the features they hear, loaded once per process from the
//! directory the `diarizer_models` setting names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::embedding::{self, CamPlusPlus};
use crate::error::ModelError;
use crate::fbank::Fbank;
use crate::vad::{self, SileroVad};

/// Everything diarization runs on.
pub struct Models {
    pub(crate) vad: SileroVad,
    pub(crate) embedder: CamPlusPlus,
    pub(crate) fbank: Fbank,
}

impl Models {
    /// Reads the weights from `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let file = |name: &str| -> Result<PathBuf, ModelError> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(ModelError::Missing { path })
            }
        };
        Ok(Self {
            vad: SileroVad::load(&file(vad::WEIGHTS_FILE)?)?,
            embedder: CamPlusPlus::load(&file(embedding::WEIGHTS_FILE)?)?,
            fbank: Fbank::new(vad::SAMPLE_RATE),
        })
    }

    /// The models of `dir`, loaded on first use and shared by every thread after. A failed
    /// load is not remembered, so provisioning the weights fixes a running worker.
    pub fn shared(dir: &Path) -> Result<Arc<Self>, ModelError> {
        static LOADED: Mutex<Option<HashMap<PathBuf, Arc<Models>>>> = Mutex::new(None);
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let loaded = loaded.get_or_insert_with(HashMap::new);
        if let Some(models) = loaded.get(dir) {
            return Ok(models.clone());
        }
        let models = Arc::new(Self::load(dir)?);
        tracing::info!(dir = %dir.display(), "diarizer models loaded");
        loaded.insert(dir.to_owned(), models.clone());
        Ok(models)
    }
}
