//! Why a file cannot be normalized. A leaf module: decoding, resampling and the pipeline that
//! joins them all speak it.

use symphonia::core::errors::Error as SymphoniaError;

/// Any error the PCM's consumer raises.
pub type SinkError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a file cannot be normalized; each message tells the user what to do.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("the file is empty (0 bytes); upload it again")]
    Empty,
    #[error("the file cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("not a recognised audio file ({}); supported: WAV, FLAC, MP3, Ogg Vorbis, M4A/MP4 AAC, CAF, MKV/WebM", describe(.0))]
    NotAudio(#[source] SymphoniaError),
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("the file's header is implausible: {0}")]
    BadHeader(String),
    #[error("the file's header is implausible: cannot resample from {rate} Hz: {source}")]
    UnresamplableRate {
        rate: u32,
        #[source]
        source: rubato::ResamplerConstructionError,
    },
    #[error("the file's header is implausible: resampling failed: {0}")]
    Resampling(#[source] rubato::ResampleError),
    #[error(
        "the {0} codec is not supported; convert the file to WAV, FLAC, MP3, Ogg Vorbis or AAC"
    )]
    UnsupportedCodec(String),
    #[error("the file contains no decodable audio samples{0}")]
    NoSamples(String),
    #[error(
        "the decoder failed on this file ({0}); convert it to WAV or FLAC and upload it again"
    )]
    DecoderCrashed(String),
    #[error("the audio is longer than the {max_seconds} s this service accepts (setting `max_audio_seconds`): {found}; split the recording")]
    TooLong { max_seconds: u64, found: String },
    /// The consumer of the PCM failed (storage trouble): not the file's fault.
    #[error("storing the normalized audio failed: {0}")]
    Sink(#[source] SinkError),
}

impl NormalizeError {
    /// Whether retrying later could succeed (the file itself is fine).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NormalizeError::Sink(_) | NormalizeError::Unreadable(_)
        )
    }
}

/// A symphonia error in the words a person reading a failed record understands.
pub(crate) fn describe(e: &SymphoniaError) -> String {
    match e {
        SymphoniaError::IoError(io) => format!("read error: {io}"),
        SymphoniaError::DecodeError(d) => format!("malformed data: {d}"),
        SymphoniaError::SeekError(_) => "seek error".into(),
        SymphoniaError::Unsupported(what) => format!("unsupported: {what}"),
        SymphoniaError::LimitError(what) => format!("limit exceeded: {what}"),
        SymphoniaError::ResetRequired => "stream reset required".into(),
    }
}
