//! One module per endpoint group of the contract.

pub mod audiofile;
pub mod transcription;
