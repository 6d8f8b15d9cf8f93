//! Without its weights the diarizer reports what is missing instead of panicking.

use trd_diarizer::{ModelError, Models};

#[test]
fn missing_weights_are_a_clear_error() {
    let empty = std::env::temp_dir().join(format!("trd-no-diarizer-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let Err(err) = Models::shared(&empty) else {
        panic!("models loaded from an empty directory");
    };
    assert!(
        matches!(&err, ModelError::Missing { path } if path.starts_with(&empty)),
        "{err:?}"
    );
    assert!(err.to_string().contains("provision-diarizer.sh"), "{err}");
    std::fs::remove_dir_all(&empty).unwrap();
}
