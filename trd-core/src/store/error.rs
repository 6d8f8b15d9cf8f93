//! The store's one error type, and the one place that reads a MongoDB driver error: an outage
//! (retry later; HTTP 503; a worker keeps its message) or a real error (a bug or bad data).

use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// MongoDB is down, restarting, stepping down or unreachable: nothing is wrong with the
    /// request, it can be made again once the server answers.
    #[error("MongoDB is unavailable")]
    Unavailable(#[source] MongoError),
    #[error("MongoDB refused the operation")]
    Database(#[source] MongoError),
    #[error("stored document is malformed: {0}")]
    Malformed(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Classifies a driver error: outages (retry later, HTTP 503) or real errors.
    pub fn from_mongo(e: MongoError) -> Self {
        if is_outage(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Server error codes that mean "the server is going away or unreachable", not "this request is
/// wrong": host unreachable/not found, network timeout, shutdown in progress, not primary,
/// interrupted at shutdown, socket exception, primary stepped down.
const OUTAGE_CODES: [i32; 13] = [
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 10058,
];

/// The server's code for a connection it could not authenticate.
const AUTHENTICATION_FAILED: i32 = 18;

/// The server's code for a write that would break a unique index.
const DUPLICATE_KEY: i32 = 11000;

/// Whether an error means MongoDB is down or restarting (retry later) rather than a bad request.
fn is_outage(e: &MongoError) -> bool {
    match &*e.kind {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. } => true,
        // A new connection the server cannot authenticate: its storage has given up (it cannot
        // read its users: met when its disk filled up), or the credentials the service was
        // started with no longer hold. Either way the database is unavailable to the service,
        // not the request at fault, and work waits for it.
        ErrorKind::Authentication { .. } => true,
        ErrorKind::Command(c) => {
            OUTAGE_CODES.contains(&c.code)
                || c.code == AUTHENTICATION_FAILED
                || out_of_space(c.code, &c.message)
                || storage_engine_down(&c.message)
        }
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => OUTAGE_CODES.contains(&w.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            out_of_space(w.code, &w.message) || storage_engine_down(&w.message)
        }
        ErrorKind::InsertMany(im) => im.write_errors.as_ref().is_some_and(|errs| {
            errs.iter()
                .any(|w| out_of_space(w.code, &w.message) || storage_engine_down(&w.message))
        }),
        _ => {
            e.contains_label("RetryableWriteError") || e.contains_label("TransientTransactionError")
        }
    }
}

/// Whether the server refused a write because its storage is full: the database is sick, not
/// the file, so the work waits for space instead of failing (`OutOfDiskSpace`, or the storage
/// engine's own words for ENOSPC).
fn out_of_space(code: i32, message: &str) -> bool {
    const OUT_OF_DISK_SPACE: i32 = 14031;
    code == OUT_OF_DISK_SPACE
        || message.contains("No space left on device")
        || message.contains("ENOSPC")
}

/// Whether the server's storage engine has given up (WiredTiger's panic, which a full disk
/// causes): the server answers nothing until it is restarted, as `mongod` is after aborting.
/// The database is down, not the request wrong.
fn storage_engine_down(message: &str) -> bool {
    message.contains("WT_PANIC")
}

/// Whether a write failed only because a document with the same unique key exists: for the
/// store's idempotent inserts, that is the expected outcome of a repeat, not an error.
pub(super) fn is_duplicate_key(e: &MongoError) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(im) => im
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().all(|we| we.code == DUPLICATE_KEY)),
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// `.store()` on a driver result: the error classified once.
pub(super) trait MongoResultExt<T> {
    fn store(self) -> StoreResult<T>;
}

impl<T> MongoResultExt<T> for Result<T, MongoError> {
    fn store(self) -> StoreResult<T> {
        self.map_err(StoreError::from_mongo)
    }
}
