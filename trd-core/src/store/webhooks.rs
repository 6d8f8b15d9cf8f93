//! Durable webhook deliveries (collection `webhook_outbox`: one document per file, URL and
//! event, retried until delivered or given up) and the tokens clients validated per target
//! (collection `webhook_tokens`). The API sends them; this module only keeps them.
//!
//! A target is the `host:port` a URL reaches: tokens are validated per target, and the sender
//! claims only deliveries whose target has a free slot, so one target that never answers
//! holds up its own deliveries and no one else's.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{self, doc, oid::ObjectId, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::figures::number;
use super::{is_duplicate_key, MongoResultExt, Store, StoreResult};
use crate::domain::{AudioFile, Control, Notice};

/// What happened to a file that its webhooks are told about.
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

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [Self::Pending, Self::Delivered, Self::GaveUp];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::GaveUp => "GAVE_UP",
        }
    }
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
    /// The `host:port` of `url` ([`target_of`]).
    #[serde(default)]
    pub target: String,
    pub event: Event,
    /// The result as it was when the file went away (reset, delete); ended files are read
    /// fresh at delivery time.
    #[serde(default)]
    pub payload: Option<Document>,
    /// For a protocol's notification: how its face renders it. `None`: a TRD webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
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

/// The `host:port` a URL reaches (its scheme's default port when it names none).
pub fn target_of(url: &url::Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

/// The target of a delivery URL; a URL without one (it will fail to send) is its own target.
pub fn delivery_target(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| target_of(&u))
        .unwrap_or_else(|| url.to_owned())
}

/// How many ended files one sweep turns into deliveries.
const ENDED_PER_SWEEP: i64 = 100;

/// A record's flag: `true` from a start with webhooks or notices until the sweep has queued
/// them once the file ended; `false` otherwise.
pub(super) const WEBHOOKS_DUE: &str = "webhooks_due";

impl Store {
    fn deliveries(&self) -> Collection<Delivery> {
        self.db.collection("webhook_outbox")
    }

    fn validations(&self) -> Collection<Validation> {
        self.db.collection("webhook_tokens")
    }

    pub(super) async fn ensure_webhook_indexes(&self) -> StoreResult<()> {
        use mongodb::options::IndexOptions;
        use mongodb::IndexModel;
        self.deliveries()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"audiofile_id": 1, "url": 1, "event": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await
            .store()?;
        self.deliveries()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"state": 1, "next_attempt_at": 1})
                    .build(),
            )
            .await
            .store()?;
        self.audiofiles
            .create_index(
                IndexModel::builder()
                    .keys(doc! {WEBHOOKS_DUE: 1, "control": 1})
                    .build(),
            )
            .await
            .store()?;
        Ok(())
    }

    /// Flags the records started before [`WEBHOOKS_DUE`] existed whose webhooks are still to
    /// be queued (those already queued were marked `webhooks_enqueued`). Returns how many it
    /// flagged. Read over the whole collection, so it runs once as the delivery loop starts,
    /// not as every process connects.
    pub async fn backfill_webhooks_due(&self) -> StoreResult<u64> {
        let flagged = self
            .audiofiles
            .update_many(
                doc! {
                    WEBHOOKS_DUE: {"$exists": false},
                    "webhooks_enqueued": {"$ne": true},
                    "$or": [
                        {"options.webhooks": {"$exists": true}},
                        {"options.notices": {"$exists": true}},
                    ],
                },
                doc! {"$set": {WEBHOOKS_DUE: true}},
            )
            .await
            .store()?;
        Ok(flagged.modified_count)
    }

    /// Queues one delivery per webhook of the record (and, for a file that ended, per
    /// notice); a repeat (same file, URL and event) is a no-op. `payload` is the result to
    /// send, for a file that is going away.
    pub async fn enqueue_webhooks(
        &self,
        record: &AudioFile,
        event: Event,
        payload: Option<Document>,
    ) -> StoreResult<()> {
        let ended = matches!(event, Event::Finished | Event::Failed);
        let webhooks = record.options.webhooks.iter().map(|url| (url, None));
        let notices = record
            .options
            .notices
            .iter()
            .filter(|_| ended)
            .map(|notice| (&notice.url, Some(notice.clone())));
        for (url, notice) in webhooks.chain(notices) {
            let delivery = Delivery {
                id: ObjectId::new(),
                audiofile_id: record.id,
                url: url.clone(),
                target: delivery_target(url),
                event,
                payload: payload.clone(),
                notice,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: DateTime::now(),
                lease_until: None,
                history: Vec::new(),
            };
            match self.deliveries().insert_one(&delivery).await {
                Ok(_) => tracing::info!(file = %record.id, %url, ?event, "webhook queued"),
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(e).store(),
            }
        }
        Ok(())
    }

    /// Turns files that ended with webhooks into deliveries. Marking the record afterwards makes
    /// this idempotent; the unique index makes a repeat after a crash harmless.
    ///
    /// Runs twice a second, so it reads through the index on [`WEBHOOKS_DUE`], which only files
    /// started with webhooks and not yet sent them carry as `true`: its cost does not grow with
    /// the files that ended before (a filter on `control` alone read every FINISHED record of
    /// every batch, each time). Records from before the flag get it from
    /// [`Self::backfill_webhooks_due`].
    pub async fn enqueue_ended_webhooks(&self) -> StoreResult<()> {
        let ended: Vec<AudioFile> = self
            .audiofiles
            .find(doc! {
                WEBHOOKS_DUE: true,
                "control": {"$in": ["FINISHED", "FAILED"]},
            })
            .limit(ENDED_PER_SWEEP)
            .await
            .store()?
            .try_collect()
            .await
            .store()?;
        for record in ended {
            let event = if record.control == Control::Finished {
                Event::Finished
            } else {
                Event::Failed
            };
            self.enqueue_webhooks(&record, event, None).await?;
            self.audiofiles
                .update_one(
                    doc! {"_id": record.id},
                    doc! {"$set": {WEBHOOKS_DUE: false}},
                )
                .await
                .store()?;
        }
        Ok(())
    }

    /// Gives pending deliveries queued before they carried a target their target, so that
    /// the per-target limit holds for them too. Returns how many it updated.
    pub async fn backfill_delivery_targets(&self) -> StoreResult<u64> {
        let untargeted: Vec<Delivery> = self
            .deliveries()
            .find(doc! {"state": "PENDING", "target": {"$exists": false}})
            .projection(doc! {"payload": 0})
            .await
            .store()?
            .try_collect()
            .await
            .store()?;
        for delivery in &untargeted {
            self.deliveries()
                .update_one(
                    doc! {"_id": delivery.id},
                    doc! {"$set": {"target": delivery_target(&delivery.url)}},
                )
                .await
                .store()?;
        }
        Ok(untargeted.len() as u64)
    }

    /// Claims the longest-due delivery whose target is not one of `busy` (a lease keeps two
    /// API instances from sending it twice). Deliveries to a busy target stay unclaimed,
    /// pending and due, for when the target has a free slot.
    pub async fn claim_due_delivery(
        &self,
        lease: Duration,
        busy: &[String],
    ) -> StoreResult<Option<Delivery>> {
        let now = DateTime::now();
        let until = DateTime::from_millis(now.timestamp_millis() + lease.as_millis() as i64);
        self.deliveries()
            .find_one_and_update(
                doc! {
                    "state": "PENDING",
                    "next_attempt_at": {"$lte": now},
                    "$or": [{"lease_until": null}, {"lease_until": {"$lt": now}}],
                    "target": {"$nin": busy},
                },
                doc! {"$set": {"lease_until": until}},
            )
            .sort(doc! {"next_attempt_at": 1})
            .return_document(ReturnDocument::After)
            .await
            .store()
    }

    /// Records one attempt; the delivery is done when it succeeded, given up after
    /// `max_attempts`, and otherwise due again after `backoff` doubled per attempt.
    pub async fn record_delivery_attempt(
        &self,
        delivery: &Delivery,
        outcome: String,
        delivered: bool,
        max_attempts: u32,
        backoff: Duration,
    ) -> StoreResult<DeliveryState> {
        let attempts = delivery.attempts + 1;
        let state = if delivered {
            DeliveryState::Delivered
        } else if attempts >= max_attempts {
            DeliveryState::GaveUp
        } else {
            DeliveryState::Pending
        };
        let delay = backoff.saturating_mul(1u32 << (attempts - 1).min(16));
        let next =
            DateTime::from_millis(DateTime::now().timestamp_millis() + delay.as_millis() as i64);
        let attempt = Attempt {
            at: DateTime::now(),
            outcome,
        };
        self.deliveries()
            .update_one(
                doc! {"_id": delivery.id},
                doc! {
                    "$set": {
                        "state": state.as_str(),
                        "attempts": attempts as i64,
                        "next_attempt_at": next,
                        "lease_until": null,
                    },
                    "$push": {"history": bson::to_bson(&attempt).expect("an attempt serialises")},
                },
            )
            .await
            .store()?;
        Ok(state)
    }

    /// Every delivery of a file, for showing outcomes on the record.
    pub async fn deliveries_of(&self, file: ObjectId) -> StoreResult<Vec<Delivery>> {
        self.deliveries()
            .find(doc! {"audiofile_id": file})
            .projection(doc! {"payload": 0})
            .await
            .store()?
            .try_collect()
            .await
            .store()
    }

    /// Remembers the token (and certificate) a client validated for `host:port`.
    pub async fn remember_validation(
        &self,
        host_port: &str,
        token: &str,
        crt: &str,
    ) -> StoreResult<()> {
        self.validations()
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
            .store()?;
        Ok(())
    }

    pub async fn validation_for(&self, host_port: &str) -> StoreResult<Option<Validation>> {
        self.validations()
            .find_one(doc! {"_id": host_port})
            .await
            .store()
    }

    /// Deliveries counted per state, for the metrics.
    pub async fn deliveries_by_state(&self) -> StoreResult<Vec<(DeliveryState, u64)>> {
        let groups: Vec<Document> = self
            .deliveries()
            .clone_with_type::<Document>()
            .aggregate(vec![doc! {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
            .await
            .store()?
            .try_collect()
            .await
            .store()?;
        Ok(groups
            .iter()
            .filter_map(|g| {
                let state = bson::from_bson(g.get("_id")?.clone()).ok()?;
                Some((state, number(g, "n") as u64))
            })
            .collect())
    }
}
