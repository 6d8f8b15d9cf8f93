//! TRD's end-to-end tests: one binary (the whole stack — Vosk, candle, symphonia, Rocket — is
//! linked once, not once per file), one module per area. Tests of every module run side by
//! side; each starts by taking its turn ([`trd_tests::turns`]): the fault-injection tests and
//! those that measure the process or the pipeline's pace run alone.

mod api;
mod chaos;
mod cli;
mod console;
mod fuzz;
mod hardening;
mod identity;
mod jobs;
mod live;
mod normalization;
mod openapi;
mod operations;
mod outages;
mod pipeline;
mod poison;
mod recognition;
mod recognize_now;
mod results;
mod settings;
mod shutdown;
mod speechmatics;
mod status;
mod storm;
mod webhooks;
