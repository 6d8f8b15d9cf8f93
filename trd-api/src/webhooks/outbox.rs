//! The webhook outbox: one document per (file, URL, event), retried until delivered or given up.

use futures::TryStreamExt;
use mongodb::bson::{self, doc, oid::ObjectId, DateTime, Document};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, IndexModel};
use serde::{Deserialize, Serialize};
use trd_core::domain::AudioFile;
use trd_core::store::StoreError;

use crate::error::ApiResult;
use crate::guards::App;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    Finished,
    Failed,
    Reset,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryState {
    Pending,
    Delivered,
    GaveUp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime,
    /// `HTTP 200`, `HTTP 500`, or the connection error.
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub audiofile_id: ObjectId,
    pub url: String,
    pub event: Event,
    /// The result as it was when the file went away (reset, delete); ended files are read
    /// fresh at delivery time.
    #[serde(default)]
    pub payload: Option<Document>,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: DateTime,
    #[serde(default)]
    pub lease_until: Option<DateTime>,
    #[serde(default)]
    pub history: Vec<Attempt>,
}

/// The token (and certificate) a client last validated for a host and port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    #[serde(rename = "_id")]
    pub host_port: String,
    pub token: String,
    #[serde(default)]
    pub crt: String,
}

pub fn deliveries(app: &App) -> Collection<Delivery> {
    app.store.database().collection("webhook_outbox")
}

fn validations(app: &App) -> Collection<Validation> {
    app.store.database().collection("webhook_tokens")
}

fn store_err(e: mongodb::error::Error) -> StoreError {
    if matches!(
        *e.kind,
        mongodb::error::ErrorKind::ServerSelection { .. } | mongodb::error::ErrorKind::Io(_)
    ) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Database(e)
    }
}

pub async fn ensure_indexes(app: &App) -> Result<(), StoreError> {
    deliveries(app)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"audiofile_id": 1, "url": 1, "event": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .map_err(store_err)?;
    deliveries(app)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"state": 1, "next_attempt_at": 1})
                .build(),
        )
        .await
        .map_err(store_err)?;
    Ok(())
}

async fn enqueue(
    app: &App,
    record: &AudioFile,
    event: Event,
    payload: Option<Document>,
) -> Result<(), StoreError> {
    for url in &record.options.webhooks {
        let delivery = Delivery {
            id: ObjectId::new(),
            audiofile_id: record.id,
            url: url.clone(),
            event,
            payload: payload.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: DateTime::now(),
            lease_until: None,
            history: Vec::new(),
        };
        match deliveries(app).insert_one(&delivery).await {
            Ok(_) => tracing::info!(file = %record.id, %url, ?event, "webhook queued"),
            Err(e) if e.to_string().contains("E11000") => {}
            Err(e) => return Err(store_err(e)),
        }
    }
    Ok(())
}

/// Queues the notifications for a file that is about to be reset or deleted, with its result
/// as it stands (afterwards there is nothing left to read).
pub async fn enqueue_removal(app: &App, record: &AudioFile, event: Event) -> ApiResult<()> {
    if record.options.webhooks.is_empty() {
        return Ok(());
    }
    let segments = app.store.segments_of(record.id).await?;
    let payload = bson::to_document(&crate::view::result(record, &segments)).ok();
    enqueue(app, record, event, payload).await?;
    Ok(())
}

/// Turns files that ended with webhooks into deliveries. Marking the record afterwards makes
/// this idempotent; the unique index makes a repeat after a crash harmless.
pub async fn enqueue_ended(app: &App) -> Result<(), StoreError> {
    let files: Collection<AudioFile> = app.store.database().collection("audiofiles");
    let ended: Vec<AudioFile> = files
        .find(doc! {
            "control": {"$in": ["FINISHED", "FAILED"]},
            "options.webhooks": {"$exists": true},
            "webhooks_enqueued": {"$ne": true},
        })
        .limit(100)
        .await
        .map_err(store_err)?
        .try_collect()
        .await
        .map_err(store_err)?;
    for record in ended {
        let event = if record.control == trd_core::domain::Control::Finished {
            Event::Finished
        } else {
            Event::Failed
        };
        enqueue(app, &record, event, None).await?;
        files
            .update_one(
                doc! {"_id": record.id},
                doc! {"$set": {"webhooks_enqueued": true}},
            )
            .await
            .map_err(store_err)?;
    }
    Ok(())
}

/// Claims one due delivery for sending (a lease keeps two API instances from sending it twice).
pub async fn claim_due(
    app: &App,
    lease: std::time::Duration,
) -> Result<Option<Delivery>, StoreError> {
    let now = DateTime::now();
    let until = DateTime::from_millis(now.timestamp_millis() + lease.as_millis() as i64);
    deliveries(app)
        .find_one_and_update(
            doc! {
                "state": "PENDING",
                "next_attempt_at": {"$lte": now},
                "$or": [{"lease_until": null}, {"lease_until": {"$lt": now}}],
            },
            doc! {"$set": {"lease_until": until}},
        )
        .return_document(ReturnDocument::After)
        .await
        .map_err(store_err)
}

pub async fn record_attempt(
    app: &App,
    delivery: &Delivery,
    outcome: String,
    delivered: bool,
    max_attempts: u32,
    backoff: std::time::Duration,
) -> Result<DeliveryState, StoreError> {
    let attempts = delivery.attempts + 1;
    let state = if delivered {
        DeliveryState::Delivered
    } else if attempts >= max_attempts {
        DeliveryState::GaveUp
    } else {
        DeliveryState::Pending
    };
    let delay = backoff.saturating_mul(1u32 << (attempts - 1).min(16));
    let next = DateTime::from_millis(DateTime::now().timestamp_millis() + delay.as_millis() as i64);
    let attempt = Attempt {
        at: DateTime::now(),
        outcome,
    };
    deliveries(app)
        .update_one(
            doc! {"_id": delivery.id},
            doc! {
                "$set": {
                    "state": bson::to_bson(&state).expect("state serialises"),
                    "attempts": attempts as i64,
                    "next_attempt_at": next,
                    "lease_until": null,
                },
                "$push": {"history": bson::to_bson(&attempt).expect("attempt serialises")},
            },
        )
        .await
        .map_err(store_err)?;
    Ok(state)
}

/// Every delivery of a file, for showing outcomes on the record.
pub async fn deliveries_of(app: &App, file: ObjectId) -> Result<Vec<Delivery>, StoreError> {
    deliveries(app)
        .find(doc! {"audiofile_id": file})
        .projection(doc! {"payload": 0})
        .await
        .map_err(store_err)?
        .try_collect()
        .await
        .map_err(store_err)
}

pub async fn remember_validation(
    app: &App,
    host_port: &str,
    token: &str,
    crt: &str,
) -> Result<(), StoreError> {
    validations(app)
        .replace_one(
            doc! {"_id": host_port},
            Validation {
                host_port: host_port.to_owned(),
                token: token.to_owned(),
                crt: crt.to_owned(),
            },
        )
        .upsert(true)
        .await
        .map_err(store_err)?;
    Ok(())
}

pub async fn validation_for(app: &App, host_port: &str) -> Result<Option<Validation>, StoreError> {
    validations(app)
        .find_one(doc! {"_id": host_port})
        .await
        .map_err(store_err)
}

/// Deliveries counted per state (`PENDING`, `DELIVERED`, `GAVE_UP`), for the metrics.
pub async fn deliveries_by_state(app: &App) -> Result<Vec<(String, u64)>, mongodb::error::Error> {
    let groups: Vec<Document> = deliveries(app)
        .clone_with_type::<Document>()
        .aggregate(vec![doc! {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        .await?
        .try_collect()
        .await?;
    Ok(groups
        .iter()
        .filter_map(|g| {
            let state = g.get_str("_id").ok()?.to_owned();
            let n = match g.get("n")? {
                bson::Bson::Int32(n) => *n as u64,
                bson::Bson::Int64(n) => *n as u64,
                bson::Bson::Double(n) => *n as u64,
                _ => return None,
            };
            Some((state, n))
        })
        .collect())
}
