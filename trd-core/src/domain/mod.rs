//! Domain types, parsed once at the boundary and trusted everywhere inside.

pub mod ids;
pub mod names;
pub mod record;
pub mod state;

pub use ids::{AudioFileId, InvalidAudioFileId};
pub use names::{BatchName, FileLocation, FileName, InvalidName};
pub use record::{
    AudioChannel, AudioFile, AudioInfo, Lease, Notice, ProtocolNote, Segment, Span, StageError,
    StartOptions, Word,
};
pub use state::{Control, Lane, SegmentStatus, Stage, Status};
