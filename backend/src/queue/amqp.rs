//! [`RabbitQueue`]: the job queue on RabbitMQ (through `lapin`), for many workers on many
//! machines. Messages carry only the job id; the jobs table ([`JobStore`]) stays authoritative,
//! so a redelivered message for a finished job is acknowledged without running it again.
//!
//! Topology per job kind `K` (names under a configurable prefix `P`), all on the default
//! exchange: `P.K` (durable work queue), `P.K.retry` (durable delay queue: messages carry a
//! per-message TTL equal to the backoff and dead-letter back into `P.K` when it expires), and
//! `P.K.dead` (durable dead-letter queue for failed jobs: attempts used up, a permanent error,
//! or a worker that died on the last attempt; the table holds the error). Publishing uses
//! publisher confirms and persistent messages; consuming uses manual acknowledgements (sent
//! only after the result or failure is stored) and a prefetch limit. Publisher and consumer
//! each own a connection and reconnect, with backoff, when it drops; unacknowledged
//! deliveries of a lost connection are redelivered by the broker and re-checked against the
//! table.

use super::sql::{ClaimById, JobStore};
use super::*;
use futures::StreamExt;
use futures::stream::SelectAll;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use tokio::sync::Mutex;

/// Waits between reconnection attempts (milliseconds), the last one repeating.
const BACKOFF: [u64; 6] = [100, 250, 500, 1000, 2000, 5000];

/// How [`RabbitQueue`] names and uses its queues.
#[derive(Debug, Clone)]
pub struct RabbitQueueOptions {
    /// Queue names are `{prefix}.{kind}`, `{prefix}.{kind}.retry`, `{prefix}.{kind}.dead`.
    pub prefix: String,
    /// Unacknowledged deliveries the broker sends one consumer at a time.
    pub prefetch: u16,
    /// How long a claimed job stays with its worker without a heartbeat.
    pub lease: Duration,
    /// Attempts to re-establish a dropped connection before an operation fails.
    pub reconnect_attempts: usize,
}

impl Default for RabbitQueueOptions {
    fn default() -> Self {
        RabbitQueueOptions {
            prefix: "hivesync.jobs".into(),
            prefetch: 8,
            lease: Duration::from_secs(60),
            reconnect_attempts: 30,
        }
    }
}

fn broker(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError::Broker(format!("{what}: {e}"))
}

struct Link {
    conn: Connection,
    channel: Channel,
}

struct Sub {
    link: Link,
    kinds: Vec<String>,
    consumers: SelectAll<Consumer>,
}

/// The RabbitMQ job queue. One instance consumes through one connection (serialised `next`
/// calls); run several instances for parallel workers.
pub struct RabbitQueue {
    url: String,
    options: RabbitQueueOptions,
    jobs: JobStore,
    publisher: Mutex<Option<Link>>,
    consumer: Mutex<Option<Sub>>,
}

impl RabbitQueue {
    /// Connects the publisher (a wrong URL or an absent broker fails here).
    pub async fn connect(
        url: &str,
        jobs: JobStore,
        options: RabbitQueueOptions,
    ) -> Result<Self, QueueError> {
        let link = open(url, "hivesync jobs publisher").await?;
        Ok(RabbitQueue {
            url: url.to_string(),
            options,
            jobs,
            publisher: Mutex::new(Some(link)),
            consumer: Mutex::new(None),
        })
    }

    pub fn queue_name(&self, kind: &str) -> String {
        format!("{}.{kind}", self.options.prefix)
    }

    pub fn retry_queue_name(&self, kind: &str) -> String {
        format!("{}.{kind}.retry", self.options.prefix)
    }

    pub fn dead_queue_name(&self, kind: &str) -> String {
        format!("{}.{kind}.dead", self.options.prefix)
    }

    /// Closes both connections as a broker restart would (operators and tests); the next
    /// operation reconnects.
    pub async fn close_connections(&self) {
        if let Some(link) = self.publisher.lock().await.as_ref() {
            let _ = link.conn.close(320, "closed on request".into()).await;
        }
        if let Some(sub) = self.consumer.lock().await.as_ref() {
            let _ = sub.link.conn.close(320, "closed on request".into()).await;
        }
    }

    /// Deletes the three queues of each kind (tests and decommissioning).
    pub async fn delete_queues(&self, kinds: &[String]) -> Result<(), QueueError> {
        let link = open(&self.url, "hivesync jobs admin").await?;
        for kind in kinds {
            for name in [
                self.queue_name(kind),
                self.retry_queue_name(kind),
                self.dead_queue_name(kind),
            ] {
                link.channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .map_err(|e| broker("delete queue", e))?;
            }
        }
        let _ = link.conn.close(200, "done".into()).await;
        Ok(())
    }

    /// Messages waiting in a kind's dead-letter queue.
    pub async fn dead_letter_count(&self, kind: &str) -> Result<u32, QueueError> {
        let link = open(&self.url, "hivesync jobs admin").await?;
        self.declare(&link.channel, kind).await?;
        let q = link
            .channel
            .queue_declare(
                self.dead_queue_name(kind).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("inspect dead-letter queue", e))?;
        let _ = link.conn.close(200, "done".into()).await;
        Ok(q.message_count())
    }

    /// Declares the work, retry and dead-letter queues of `kind` (idempotent).
    async fn declare(&self, channel: &Channel, kind: &str) -> Result<(), QueueError> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let work = self.queue_name(kind);
        channel
            .queue_declare(work.as_str().into(), durable, FieldTable::default())
            .await
            .map_err(|e| broker("declare work queue", e))?;
        let mut retry_args = FieldTable::default();
        retry_args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        retry_args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(work.as_str().into()),
        );
        channel
            .queue_declare(
                self.retry_queue_name(kind).as_str().into(),
                durable,
                retry_args,
            )
            .await
            .map_err(|e| broker("declare retry queue", e))?;
        channel
            .queue_declare(
                self.dead_queue_name(kind).as_str().into(),
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("declare dead-letter queue", e))?;
        Ok(())
    }

    /// Publishes `job_id` to `queue` (of `kind`) with a confirm, reconnecting the publisher
    /// when its connection is gone.
    async fn publish(
        &self,
        kind: &str,
        queue: &str,
        job_id: Uuid,
        delay: Option<Duration>,
    ) -> Result<(), QueueError> {
        let mut last = None;
        for attempt in 0..=self.options.reconnect_attempts {
            if attempt > 0 {
                let wait = BACKOFF[(attempt - 1).min(BACKOFF.len() - 1)];
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            let mut slot = self.publisher.lock().await;
            if slot
                .as_ref()
                .is_none_or(|l| !l.conn.status().connected() || !l.channel.status().connected())
            {
                match open(&self.url, "hivesync jobs publisher").await {
                    Ok(link) => *slot = Some(link),
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                }
            }
            let Some(link) = slot.as_ref() else { continue };
            match self
                .publish_on(&link.channel, kind, queue, job_id, delay)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "job publish failed; reconnecting");
                    *slot = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| QueueError::Broker("publish failed".into())))
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        kind: &str,
        queue: &str,
        job_id: Uuid,
        delay: Option<Duration>,
    ) -> Result<(), QueueError> {
        self.declare(channel, kind).await?;
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("text/plain".into())
            .with_message_id(job_id.to_string().into());
        if let Some(d) = delay {
            props = props.with_expiration(d.as_millis().max(1).to_string().into());
        }
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                job_id.to_string().as_bytes(),
                props,
            )
            .await
            .map_err(|e| broker("publish", e))?
            .await
            .map_err(|e| broker("publish confirm", e))?;
        if confirm.is_ack() && confirm.take_message().is_none() {
            Ok(())
        } else {
            Err(QueueError::Broker(format!(
                "the broker did not accept job {job_id} for {queue}"
            )))
        }
    }

    /// Opens the consumer connection for `kinds` (declaring their queues).
    async fn subscribe(&self, kinds: &[String]) -> Result<Sub, QueueError> {
        let link = open(&self.url, "hivesync jobs consumer").await?;
        link.channel
            .basic_qos(self.options.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| broker("prefetch", e))?;
        let mut consumers = SelectAll::new();
        for kind in kinds {
            self.declare(&link.channel, kind).await?;
            let consumer = link
                .channel
                .basic_consume(
                    self.queue_name(kind).as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| broker("consume", e))?;
            consumers.push(consumer);
        }
        Ok(Sub {
            link,
            kinds: kinds.to_vec(),
            consumers,
        })
    }

    /// Files a failed job's id in its kind's dead-letter queue (the table holds its error).
    async fn dead_letter(&self, job: &Job) -> Result<(), QueueError> {
        self.publish(&job.kind, &self.dead_queue_name(&job.kind), job.id, None)
            .await
    }

    async fn ack_message(acker: Option<lapin::Acker>) {
        if let Some(acker) = acker
            && let Err(e) = acker.ack(BasicAckOptions::default()).await
        {
            // The channel is gone; the broker redelivers, and the table decides again.
            tracing::info!(error = %e, "job acknowledgement not delivered");
        }
    }
}

/// One connection with one confirming channel.
async fn open(url: &str, name: &str) -> Result<Link, QueueError> {
    let conn = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(name.into()),
    )
    .await
    .map_err(|e| broker("cannot connect to RabbitMQ", e))?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|e| broker("channel", e))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| broker("publisher confirms", e))?;
    Ok(Link { conn, channel })
}

#[async_trait]
impl Queue for RabbitQueue {
    fn backend(&self) -> &'static str {
        "rabbitmq"
    }

    fn jobs(&self) -> &JobStore {
        &self.jobs
    }

    async fn enqueue(&self, job_id: Uuid, kind: &str) -> Result<(), QueueError> {
        self.publish(kind, &self.queue_name(kind), job_id, None)
            .await?;
        self.jobs.mark_published(job_id).await
    }

    async fn republish_unpublished(&self, older_than: Duration) -> Result<usize, QueueError> {
        let due = self.jobs.unpublished(older_than, 1000).await?;
        for (id, kind) in &due {
            self.enqueue(*id, kind).await?;
        }
        Ok(due.len())
    }

    async fn next(&self, kinds: &[String]) -> Result<Delivery, QueueError> {
        let mut failures = 0usize;
        let mut slot = self.consumer.lock().await;
        loop {
            if slot.as_ref().is_none_or(|s| s.kinds != kinds) {
                if let Some(old) = slot.take() {
                    let _ = old.link.conn.close(200, "resubscribing".into()).await;
                }
                if failures > 0 {
                    let wait = BACKOFF[(failures - 1).min(BACKOFF.len() - 1)];
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                match self.subscribe(kinds).await {
                    Ok(sub) => *slot = Some(sub),
                    Err(e) => {
                        failures += 1;
                        if failures > self.options.reconnect_attempts {
                            return Err(e);
                        }
                        tracing::warn!(error = %e, "job consumer not connected; retrying");
                        continue;
                    }
                }
            }
            let Some(sub) = slot.as_mut() else { continue };
            let delivery = match sub.consumers.next().await {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "job consumer lost its connection; reconnecting");
                    *slot = None;
                    failures += 1;
                    continue;
                }
                None => {
                    *slot = None;
                    failures += 1;
                    continue;
                }
            };
            failures = 0;
            let acker = Some(delivery.acker);
            let Some(id) = std::str::from_utf8(&delivery.data)
                .ok()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
            else {
                tracing::warn!("dropping a job message that is not a job id");
                Self::ack_message(acker).await;
                continue;
            };
            match self.jobs.claim_id(id, self.options.lease).await? {
                ClaimById::Claimed(job) => return Ok(Delivery { job, acker }),
                ClaimById::Finished(_) | ClaimById::Missing => {
                    Self::ack_message(acker).await;
                }
                ClaimById::Exhausted(job) => {
                    tracing::warn!(job_id = %job.id, kind = %job.kind,
                        "job failed: its worker stopped answering on the last attempt");
                    self.dead_letter(&job).await?;
                    Self::ack_message(acker).await;
                }
                ClaimById::Busy { retry_in } => {
                    // Its worker holds a live lease: look again once the lease may have passed.
                    let kind = delivery.routing_key.as_str();
                    let kind = kind
                        .strip_prefix(&format!("{}.", self.options.prefix))
                        .unwrap_or(kind)
                        .to_string();
                    self.publish(&kind, &self.retry_queue_name(&kind), id, Some(retry_in))
                        .await?;
                    Self::ack_message(acker).await;
                }
            }
        }
    }

    async fn ack(&self, delivery: Delivery, result: Value) -> Result<Job, QueueError> {
        let job = self.jobs.complete(delivery.job.id, &result).await?;
        Self::ack_message(delivery.acker).await;
        Ok(job)
    }

    async fn nack(&self, delivery: Delivery, error: &str) -> Result<FailOutcome, QueueError> {
        let job = &delivery.job;
        let outcome = self.jobs.fail(job.id, error).await?;
        match &outcome {
            FailOutcome::Retry { after, .. } => {
                self.publish(
                    &job.kind,
                    &self.retry_queue_name(&job.kind),
                    job.id,
                    Some(*after),
                )
                .await?;
                self.jobs.mark_published(job.id).await?;
            }
            FailOutcome::Failed(failed) => self.dead_letter(failed).await?,
            FailOutcome::NotRunning(_) => {}
        }
        Self::ack_message(delivery.acker).await;
        Ok(outcome)
    }

    async fn give_up(&self, delivery: Delivery, error: &str) -> Result<Job, QueueError> {
        let job = self.jobs.fail_now(delivery.job.id, error).await?;
        // Not when it was cancelled or finished meanwhile: only failures are dead letters.
        if job.status == JobStatus::Failed {
            self.dead_letter(&job).await?;
        }
        Self::ack_message(delivery.acker).await;
        Ok(job)
    }
}
