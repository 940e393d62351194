//! Event delivery: after an event is appended to the durable log ([`crate::store::EventLog`]),
//! it is published through [`Events`] to every listener of every API instance (SSE streams).
//! The embedded default [`LocalEvents`] is an in-process broadcast; a RabbitMQ fanout plugs in
//! here when `AMQP_URL` is set. Delivery is best effort — the log is the source of truth and
//! clients resume from it by event id.

use crate::store::Event;
use async_trait::async_trait;
use tokio::sync::broadcast;

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
