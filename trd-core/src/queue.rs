//! RabbitMQ: durable quorum queues per stage, one per [`Lane`] (`<prefix><stage>` for batch
//! work, `<prefix><stage>.now` for interactive requests), persistent messages, manual acks.
//!
//! A message is only a hint that a file (or one of its segments) may have work at a stage;
//! the worker re-reads the record and decides. Each stage queue has a delivery limit: a message
//! that keeps killing or stalling its workers is dead-lettered to `<queue>.dead`, whose
//! consumer fails the file with the reason instead of looping forever.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind,
};
use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::domain::{Lane, Stage};

/// The body of a queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WorkItem {
    /// A file may have work at the queue's stage.
    File { file: ObjectId },
    /// One segment of a file awaits recognition.
    Segment { file: ObjectId, segment: ObjectId },
}

impl WorkItem {
    pub fn file_id(&self) -> ObjectId {
        match self {
            WorkItem::File { file } | WorkItem::Segment { file, .. } => *file,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("RabbitMQ is unavailable: {0}")]
    Unavailable(#[from] lapin::Error),
    #[error("RabbitMQ is unavailable: no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// A negative publisher confirm: the broker did not take the message.
    #[error("RabbitMQ refused a message for '{0}'")]
    Rejected(String),
    /// A mandatory message no queue took: the queue is missing.
    #[error("RabbitMQ has no queue '{0}' to take the message")]
    Unroutable(String),
}

pub type QueueResult<T> = Result<T, QueueError>;

/// One queue as the broker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFigures {
    pub name: String,
    /// Messages ready for delivery.
    pub messages: u32,
    pub consumers: u32,
}

/// How long a connection attempt or a publish may take before RabbitMQ counts as down.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to RabbitMQ that heals itself: when the broker restarts, the next call
/// reconnects (and re-declares the topology). Clones share the connection.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    uri: String,
    prefix: String,
    max_delivery_attempts: u32,
    link: tokio::sync::Mutex<Option<Link>>,
}

/// One live connection and its publishing channel (with publisher confirms).
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) connection: Arc<Connection>,
    pub(crate) publisher: Channel,
}

impl Link {
    fn is_alive(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

pub(crate) async fn within<T>(
    work: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> QueueResult<T> {
    tokio::time::timeout(BROKER_TIMEOUT, work)
        .await
        .map_err(|_| QueueError::Timeout(BROKER_TIMEOUT))?
        .map_err(QueueError::from)
}

impl Queue {
    /// Connects and declares the topology; fails fast when RabbitMQ is down.
    pub async fn connect(settings: &Settings) -> QueueResult<Self> {
        let queue = Self {
            inner: Arc::new(Inner {
                uri: settings.amqp_uri.clone(),
                prefix: settings.queue_prefix.clone(),
                max_delivery_attempts: settings.max_delivery_attempts,
                link: tokio::sync::Mutex::new(None),
            }),
        };
        queue.link().await?;
        Ok(queue)
    }

    /// The live connection, reconnecting first if the broker went away. One caller at a time
    /// reconnects; the others wait for its outcome.
    pub(crate) async fn link(&self) -> QueueResult<Link> {
        let mut slot = self.inner.link.lock().await;
        if let Some(link) = slot.as_ref().filter(|l| l.is_alive()) {
            return Ok(link.clone());
        }
        if let Some(dead) = slot.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                dead.connection.close(200, "reconnecting".into()),
            )
            .await;
        }
        let connection = within(Connection::connect(
            &self.inner.uri,
            ConnectionProperties::default().with_connection_name("trd".into()),
        ))
        .await?;
        let publisher = within(connection.create_channel()).await?;
        within(publisher.confirm_select(ConfirmSelectOptions::default())).await?;
        let link = Link {
            connection: Arc::new(connection),
            publisher,
        };
        self.declare_topology(&link.publisher).await?;
        *slot = Some(link.clone());
        Ok(link)
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// A queue of work: quorum, and a message that keeps killing or stalling its workers is
    /// given up after `max_delivery_attempts`.
    pub(crate) fn work_queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(self.inner.max_delivery_attempts.saturating_sub(1) as i32),
        );
        args
    }

    /// The batch lane's queue of `stage`.
    pub fn queue_name(&self, stage: Stage) -> String {
        self.lane_queue_name(stage, Lane::Batch)
    }

    pub fn lane_queue_name(&self, stage: Stage, lane: Lane) -> String {
        format!(
            "{}{}{}",
            self.inner.prefix,
            stage.name(),
            lane.queue_suffix()
        )
    }

    /// Every queue work travels and the dead-letter queue of each stage.
    fn all_queue_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for stage in Stage::ALL {
            for lane in Lane::ALL {
                names.push(self.lane_queue_name(stage, lane));
            }
            names.push(self.dead_letter_queue_name(stage));
        }
        names
    }

    pub fn dead_letter_queue_name(&self, stage: Stage) -> String {
        format!("{}{}.dead", self.inner.prefix, stage.name())
    }

    fn dead_letter_exchange(&self) -> String {
        format!("{}dead-letter", self.inner.prefix)
    }

    async fn declare_topology(&self, ch: &Channel) -> QueueResult<()> {
        let dlx = self.dead_letter_exchange();
        ch.exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        for stage in Stage::ALL {
            let dead = self.dead_letter_queue_name(stage);
            let mut dead_args = FieldTable::default();
            dead_args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
            ch.queue_declare(dead.as_str().into(), durable(), dead_args)
                .await?;
            for lane in Lane::ALL {
                let name = self.lane_queue_name(stage, lane);
                let mut args = self.work_queue_args();
                args.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString(dlx.as_str().into()),
                );
                ch.queue_declare(name.as_str().into(), durable(), args)
                    .await?;
                // Both lanes dead-letter into the stage's one dead-letter queue.
                ch.queue_bind(
                    dead.as_str().into(),
                    dlx.as_str().into(),
                    name.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
        }
        self.declare_live_topology(ch).await
    }

    /// Publishes a persistent message to the lane's queue of `stage` and waits for the broker
    /// to take responsibility for it. A stage queue someone deleted is declared again and the
    /// message sent once more, instead of vanishing.
    pub async fn publish(&self, stage: Stage, lane: Lane, item: &WorkItem) -> QueueResult<()> {
        let body = serde_json::to_vec(item).expect("work items serialise");
        let queue = self.lane_queue_name(stage, lane);
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        match self
            .publish_confirmed(&queue, &body, properties.clone())
            .await
        {
            Err(QueueError::Unroutable(_)) => {
                tracing::warn!(%queue, "a stage queue was missing; declaring the topology again");
                let link = self.link().await?;
                self.declare_topology(&link.publisher).await?;
                self.publish_confirmed(&queue, &body, properties).await
            }
            outcome => outcome,
        }
    }

    /// Publishes `body` to `queue` as mandatory and waits for the broker's confirm: a nack,
    /// or a message returned because no queue took it, is an error, never a success.
    pub(crate) async fn publish_confirmed(
        &self,
        queue: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> QueueResult<()> {
        let link = self.link().await?;
        let confirm = within(link.publisher.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            properties,
        ))
        .await?;
        match within(confirm).await? {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable(queue.to_owned())),
            Confirmation::Nack(_) => Err(QueueError::Rejected(queue.to_owned())),
        }
    }

    /// A consumer on its own channel, holding at most `prefetch` unacknowledged messages.
    pub async fn consume(&self, queue: &str, tag: &str, prefetch: u16) -> QueueResult<Consumer> {
        let link = self.link().await?;
        let channel = within(link.connection.create_channel()).await?;
        within(channel.basic_qos(prefetch, BasicQosOptions::default())).await?;
        within(channel.basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await
    }

    /// Number of messages ready in a stage's queues, both lanes (for status and metrics).
    pub async fn depth(&self, stage: Stage) -> QueueResult<u32> {
        let link = self.link().await?;
        let mut total = 0;
        for lane in Lane::ALL {
            let q = within(link.publisher.queue_declare(
                self.lane_queue_name(stage, lane).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ))
            .await?;
            total += q.message_count();
        }
        Ok(total)
    }

    /// Messages ready and consumers attached, for every stage queue (both lanes) and its
    /// dead-letter queue (health and metrics). Passive declares run on a channel of their own: a missing queue
    /// closes the channel it was asked on, and that must never be the publisher's.
    pub async fn inspect(&self) -> QueueResult<Vec<QueueFigures>> {
        self.figures_of(self.all_queue_names()).await
    }

    /// Messages ready and consumers attached for each named queue, asked by passive declares
    /// on a throw-away channel.
    pub(crate) async fn figures_of(&self, names: Vec<String>) -> QueueResult<Vec<QueueFigures>> {
        let link = self.link().await?;
        let channel = within(link.connection.create_channel()).await?;
        let mut out = Vec::new();
        for name in names {
            let declared = within(channel.queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ))
            .await;
            let q = match declared {
                Ok(q) => q,
                Err(e) => {
                    let _ = channel.close(200, "bye".into()).await;
                    return Err(e);
                }
            };
            out.push(QueueFigures {
                name,
                messages: q.message_count(),
                consumers: q.consumer_count(),
            });
        }
        let _ = channel.close(200, "bye".into()).await;
        Ok(out)
    }

    /// Whether the current connection is up (without trying to reconnect).
    pub fn is_connected(&self) -> bool {
        self.inner
            .link
            .try_lock()
            .map(|l| l.as_ref().is_some_and(Link::is_alive))
            .unwrap_or(true)
    }

    /// Deletes every queue of this prefix (test clean-up).
    pub async fn delete_all(&self) -> QueueResult<()> {
        let link = self.link().await?;
        for name in self
            .all_queue_names()
            .into_iter()
            .chain([self.live_offer_queue()])
        {
            within(
                link.publisher
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default()),
            )
            .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(link) = self.inner.link.lock().await.take() {
            let _ = tokio::time::timeout(BROKER_TIMEOUT, link.connection.close(200, "bye".into()))
                .await;
        }
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// Drains a consumer stream item by item; a helper so callers need not import `StreamExt`.
pub async fn next_delivery(
    consumer: &mut Consumer,
) -> Option<lapin::Result<lapin::message::Delivery>> {
    consumer.next().await
}
