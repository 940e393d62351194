//! Event delivery: after an event is appended to the durable log ([`crate::store::EventLog`]),
//! it is published through [`Events`] to every listener of every API instance (SSE streams).
//! The embedded default [`LocalEvents`] is an in-process broadcast; [`RabbitEvents`] (when
//! `AMQP_URL` is set) publishes to a RabbitMQ fanout exchange that every instance consumes
//! through its own exclusive, auto-delete queue, and re-broadcasts what arrives in-process.
//! Delivery is best effort — the log is the source of truth and clients resume from it by
//! event id; SSE streams only take a message as the signal to read the log.
//!
//! Two kinds of message travel besides logged events (both with `id` 0, never in the log):
//! notices such as `project.deleted` (whose log is deleted with the project), and [`RESYNC`],
//! sent locally after the broker connection came back, telling listeners that messages may
//! have been lost and they should read the log.

use crate::store::Event;
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// Kind of the local message that says "messages may have been lost; read the log".
pub const RESYNC: &str = "stream.resync";

/// The exchange events are published to, unless configured otherwise.
pub const DEFAULT_EXCHANGE: &str = "hivesync.events";

#[derive(Debug, thiserror::Error)]
#[error("event delivery unavailable: {0}")]
pub struct EventsError(pub String);

#[async_trait]
pub trait Events: Send + Sync {
    /// `"in-process"`, `"rabbitmq"`, … (for `/readyz`).
    fn backend(&self) -> &'static str;
    /// Sends the event to every subscriber on every instance.
    async fn publish(&self, event: &Event) -> Result<(), EventsError>;
    /// Events published from now on (on any instance).
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// Answers when the transport does.
    async fn ping(&self) -> Result<(), EventsError>;
}

/// In-process broadcast: one instance, zero set-up.
#[derive(Debug)]
pub struct LocalEvents {
    sender: broadcast::Sender<Event>,
}

impl LocalEvents {
    /// `capacity` events are buffered per slow subscriber before it lags (and must resume from
    /// the log).
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        LocalEvents { sender }
    }
}

#[async_trait]
impl Events for LocalEvents {
    fn backend(&self) -> &'static str {
        "in-process"
    }

    async fn publish(&self, event: &Event) -> Result<(), EventsError> {
        // No subscribers is not an error: the event is in the log.
        let _ = self.sender.send(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    async fn ping(&self) -> Result<(), EventsError> {
        Ok(())
    }
}

/// How [`RabbitEvents`] declares its exchange.
#[derive(Debug, Clone)]
pub struct RabbitOptions {
    /// The fanout exchange every instance publishes to and binds its queue to.
    pub exchange: String,
    /// Durable exchange (production) or one deleted with its last queue (tests).
    pub durable: bool,
    /// Events buffered per slow in-process subscriber.
    pub capacity: usize,
}

impl Default for RabbitOptions {
    fn default() -> Self {
        RabbitOptions {
            exchange: DEFAULT_EXCHANGE.into(),
            durable: true,
            capacity: 1024,
        }
    }
}

/// Cross-instance delivery through a RabbitMQ fanout exchange. A background task owns the
/// connection: it declares the exchange, binds an exclusive auto-delete queue for this
/// instance, forwards deliveries to the in-process subscribers, and reconnects (with backoff)
/// when the broker connection drops — then sends [`RESYNC`] so streams read what they missed
/// from the log. Publishing while disconnected fails (the event is in the log already).
pub struct RabbitEvents {
    local: broadcast::Sender<Event>,
    channel: Arc<RwLock<Option<Channel>>>,
    exchange: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RabbitEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits between reconnection attempts, doubling up to the last.
const BACKOFF: [u64; 6] = [100, 250, 500, 1000, 2000, 5000];

fn amqp_err(what: &str, e: lapin::Error) -> EventsError {
    EventsError(format!("{what}: {e}"))
}

impl RabbitEvents {
    /// Connects (the first connection must succeed, so a wrong URL stops the start) and keeps
    /// the connection in a background task.
    pub async fn connect(url: &str, options: RabbitOptions) -> Result<Self, EventsError> {
        let (local, _) = broadcast::channel(options.capacity.max(1));
        let channel = Arc::new(RwLock::new(None));
        let (conn, consumer) = open(url, &options).await?;
        set_channel(&channel, Some(consumer.1.clone()));
        let task = tokio::spawn(supervise(
            url.to_string(),
            options.clone(),
            local.clone(),
            channel.clone(),
            (conn, consumer.0),
        ));
        Ok(RabbitEvents {
            local,
            channel,
            exchange: options.exchange,
            task,
        })
    }

    fn current(&self) -> Option<Channel> {
        self.channel
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn set_channel(slot: &RwLock<Option<Channel>>, channel: Option<Channel>) {
    *slot
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = channel;
}

/// One connection: the exchange declared, this instance's queue bound and consumed.
async fn open(
    url: &str,
    options: &RabbitOptions,
) -> Result<(Connection, (lapin::Consumer, Channel)), EventsError> {
    let conn = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name("hivesync-api events".into()),
    )
    .await
    .map_err(|e| amqp_err("cannot connect to RabbitMQ", e))?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|e| amqp_err("channel", e))?;
    channel
        .exchange_declare(
            options.exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: options.durable,
                auto_delete: !options.durable,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| amqp_err("declare exchange", e))?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| amqp_err("declare queue", e))?;
    channel
        .queue_bind(
            queue.name().clone(),
            options.exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| amqp_err("bind queue", e))?;
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| amqp_err("consume", e))?;
    Ok((conn, (consumer, channel)))
}

async fn supervise(
    url: String,
    options: RabbitOptions,
    local: broadcast::Sender<Event>,
    slot: Arc<RwLock<Option<Channel>>>,
    first: (Connection, lapin::Consumer),
) {
    let (mut conn, mut consumer) = first;
    loop {
        while let Some(delivery) = consumer.next().await {
            match delivery {
                Ok(d) => match serde_json::from_slice::<Event>(&d.data) {
                    Ok(event) => {
                        let _ = local.send(event);
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed event message"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "RabbitMQ event consumer failed");
                    break;
                }
            }
        }
        set_channel(&slot, None);
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            conn.close(200, "reconnecting".into()),
        )
        .await;
        let mut attempt = 0;
        loop {
            let wait = BACKOFF[attempt.min(BACKOFF.len() - 1)];
            tokio::time::sleep(Duration::from_millis(wait)).await;
            match open(&url, &options).await {
                Ok((c, (cons, channel))) => {
                    tracing::info!("RabbitMQ event connection restored");
                    set_channel(&slot, Some(channel));
                    (conn, consumer) = (c, cons);
                    let _ = local.send(resync_message());
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "RabbitMQ event connection not restored");
                }
            }
        }
    }
}

fn resync_message() -> Event {
    Event {
        id: 0,
        project_id: uuid::Uuid::nil(),
        kind: RESYNC.into(),
        actor_id: None,
        payload: serde_json::Value::Null,
        created_at: crate::store::now(),
    }
}

#[async_trait]
impl Events for RabbitEvents {
    fn backend(&self) -> &'static str {
        "rabbitmq"
    }

    async fn publish(&self, event: &Event) -> Result<(), EventsError> {
        let channel = self
            .current()
            .ok_or_else(|| EventsError("not connected to RabbitMQ".into()))?;
        let body = serde_json::to_vec(event).map_err(|e| EventsError(e.to_string()))?;
        channel
            .basic_publish(
                self.exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .map_err(|e| amqp_err("publish", e))?
            .await
            .map_err(|e| amqp_err("publish", e))?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }

    async fn ping(&self) -> Result<(), EventsError> {
        match self.current() {
            Some(c) if c.status().connected() => Ok(()),
            _ => Err(EventsError("not connected to RabbitMQ".into())),
        }
    }
}
