//! One module per endpoint group of the contract.

pub mod audiofile;
pub mod operations;
pub mod query;
pub mod transcription;
pub mod upload;
pub mod webhook;
