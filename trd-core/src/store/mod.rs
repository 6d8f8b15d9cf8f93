//! The MongoDB store: the single source of truth for files, segments and normalized audio.
//!
//! Collections:
//! - `audiofiles`: one record per registered file ([`AudioFile`]); unique on (batch, filename).
//! - `segments`: speech segments ([`Segment`]) keyed by `audiofile_id`.
//! - `pcm_chunks`: normalized 16-bit PCM per file and channel, in fixed-size chunks so any
//!   worker on any host can read any time range of it; dropped once the file has ended
//!   ([`retention`]).
//! - `stage_metrics`: cumulative per-stage run counters and duration histograms ([`stage_metrics`]).
//! - `webhook_outbox` and `webhook_tokens`: durable webhook deliveries and the tokens clients
//!   validated ([`webhooks`]).
//! - `api_keys`, `users`, `refresh_tokens` and `audit`: who may use the service (secrets only
//!   as digests or hashes) and what each changed ([`identity`]).
//!
//! Every driver error becomes a [`StoreError`] through one classifier ([`StoreError::from_mongo`]),
//! so an outage is told apart from a real error the same way everywhere.
//!
//! Every state transition is one atomic `find_one_and_update` whose filter states what the
//! caller expects; a caller whose expectation no longer holds gets `None` and does nothing.

mod audiofiles;
mod error;
pub mod figures;
pub mod identity;
mod overview;
mod page;
mod pcm;
mod retention;
mod segments;
pub mod stage_metrics;
pub mod webhooks;

use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

pub use audiofiles::{Registration, StartOutcome, StopOutcome};
use error::{is_duplicate_key, MongoResultExt};
pub use error::{StoreError, StoreResult};
pub use overview::{BatchSummary, FileRow};
pub use page::{Page, PageError, MAX_PAGE};
pub use pcm::{PcmChunk, PcmWriter, CHUNK_SAMPLES};
pub use segments::SegmentOutcome;

use crate::config::Settings;
use crate::domain::{AudioFile, Segment};

#[derive(Clone)]
pub struct Store {
    db: Database,
    audiofiles: Collection<AudioFile>,
    segments: Collection<Segment>,
    pcm: Collection<PcmChunk>,
}

impl Store {
    /// Connects (failing fast when MongoDB is down, so callers can answer 503) and makes sure
    /// the indexes exist. The driver reconnects by itself after MongoDB restarts; while it is
    /// down, calls fail within a few seconds with [`StoreError::Unavailable`].
    pub async fn connect(settings: &Settings) -> StoreResult<Self> {
        let mut options = ClientOptions::parse(&settings.mongodb_uri).await.store()?;
        options.server_selection_timeout = Some(Duration::from_secs(3));
        options.connect_timeout = Some(Duration::from_secs(3));
        options.app_name = Some("trd".to_owned());
        let client = Client::with_options(options).store()?;
        let store = Self::new(client.database(&settings.database));
        store.ensure_indexes().await?;
        Ok(store)
    }

    fn new(db: Database) -> Self {
        Self {
            audiofiles: db.collection("audiofiles"),
            segments: db.collection("segments"),
            pcm: db.collection("pcm_chunks"),
            db,
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub async fn ping(&self) -> StoreResult<()> {
        self.db.run_command(doc! {"ping": 1}).await.store()?;
        Ok(())
    }

    async fn ensure_indexes(&self) -> StoreResult<()> {
        let index = |keys: Document, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(unique).build())
                .build()
        };
        self.audiofiles
            .create_index(index(doc! {"batch": 1, "filename": 1}, true))
            .await
            .store()?;
        self.audiofiles
            .create_index(index(doc! {"batch": 1, "control": 1, "status": 1}, false))
            .await
            .store()?;
        self.audiofiles
            .create_index(index(
                doc! {"control": 1, "status": 1, "lease.until": 1},
                false,
            ))
            .await
            .store()?;
        self.segments
            .create_index(index(retention::ascending(retention::SEGMENT_ORDER), false))
            .await
            .store()?;
        self.segments
            .create_index(index(doc! {"status": 1, "lease.until": 1}, false))
            .await
            .store()?;
        self.pcm
            .create_index(index(retention::ascending(retention::PCM_ORDER), true))
            .await
            .store()?;
        self.ensure_webhook_indexes().await?;
        self.ensure_identity_indexes().await
    }

    /// Documents of a collection as stored, sorted by id: for the query endpoint, which
    /// decides itself which collections and fields it shows.
    pub async fn find_documents(
        &self,
        collection: &str,
        filter: Document,
        projection: Document,
    ) -> StoreResult<mongodb::Cursor<Document>> {
        self.find_page(collection, filter, projection, Page::ALL)
            .await
    }

    /// One page of [`Self::find_documents`]: in `_id` order, so pages do not overlap.
    pub async fn find_page(
        &self,
        collection: &str,
        filter: Document,
        projection: Document,
        page: Page,
    ) -> StoreResult<mongodb::Cursor<Document>> {
        let collection = self.db.collection::<Document>(collection);
        let mut find = collection
            .find(filter)
            .projection(projection)
            .sort(doc! {"_id": 1})
            .skip(page.skip);
        if let Some(limit) = page.limit {
            find = find.limit(limit as i64);
        }
        find.await.store()
    }

    /// Removes everything derived from a file (segments and normalized audio); the record is
    /// the caller's business. Safe to call at any time because ids are never reused.
    pub async fn purge_derived(&self, id: ObjectId) -> StoreResult<()> {
        self.segments
            .delete_many(doc! {"audiofile_id": id})
            .await
            .store()?;
        self.delete_pcm(id).await
    }
}
