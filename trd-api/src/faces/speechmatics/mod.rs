//! The Speechmatics batch jobs API (`../shared/seeds/002_…`), for the `speechmatics-python`
//! and `speechmatics-batch` clients. Work in progress: the job config is parsed here
//! ([`config`]) and the job shapes built from a TRD record ([`shapes`]); the routes come
//! next.

pub mod config;
pub mod shapes;
