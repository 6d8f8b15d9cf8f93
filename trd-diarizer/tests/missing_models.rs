//! Without its weights the diarizer reports what is missing instead of panicking. A test binary
//! of its own, because the weights are loaded once per process.

use trd_diarizer::{diarize, DiarizationRequest, DiarizeError};

#[test]
fn missing_weights_are_a_clear_error() {
    let empty = std::env::temp_dir().join(format!("trd-no-diarizer-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    std::env::set_var("TRD_DIARIZER_MODELS", &empty);
    let audio = vec![0i16; 16_000];
    let err = diarize(&DiarizationRequest::new(vec![&audio], 16_000, 30.0)).unwrap_err();
    assert!(
        matches!(&err, DiarizeError::MissingModel { path } if path.starts_with(&empty)),
        "{err:?}"
    );
    assert!(err.to_string().contains("provision-diarizer.sh"), "{err}");
    std::fs::remove_dir_all(&empty).unwrap();
}
