//! The Kafka sink: an idempotent rdkafka producer (`enable.idempotence=true`: acks from all
//! in-sync replicas, ordered retries, no duplicates from retries), compressed, with a small
//! linger so bursts share batches. Record key = conversation id, so one conversation's events
//! keep their order within a partition. Runs on: the IO pool; librdkafka's own threads do the
//! network IO and report deliveries to [`Reports`].
//!
//! Best effort: `send` never waits. A full producer queue, or a record the broker did not take
//! within `chat.kafka.message-timeout` (broker down), is counted as dropped; librdkafka
//! reconnects by itself, so events flow again when the broker is back.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use livechat_core::ChatEvent;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::{ClientContext, Message};

use super::file::each_line;
use super::probe::KafkaProbe;
use super::stats::EventStats;
use super::KafkaConfig;
use crate::error::GatewayError;
use crate::iopool::Stop;

/// The longest a stopping node waits for the broker to take what is still buffered.
pub const FLUSH_AT_STOP: Duration = Duration::from_secs(5);

/// Counts delivery reports (librdkafka's thread), and notes when records time out: then the
/// producer is rebuilt before the next send (see [`KafkaSink::run`]).
pub struct Reports {
    stats: Arc<EventStats>,
    stalled: Arc<AtomicBool>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.stats.delivered.fetch_add(1, Relaxed);
                // librdkafka stamped the record (CreateTime) when it was produced: no clock
                // read and no opaque per record to carry a start instant.
                if let Some(at) = m.timestamp().to_millis() {
                    let now = crate::chat::ids::now().millis();
                    let took = u64::try_from(now.saturating_sub(at)).unwrap_or(0);
                    self.stats
                        .kafka_latency
                        .observe(Duration::from_millis(took));
                }
            }
            Err((e, _)) => {
                if matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::Fatal)
                ) {
                    self.stalled.store(true, Relaxed);
                }
                self.stats.kafka_errors.fetch_add(1, Relaxed);
                self.stats.drop_records(1, &format!("not delivered: {e}"))
            }
        }
    }
}

/// The producer and what it needs to run.
pub struct KafkaSink {
    producer: Arc<ThreadedProducer<Reports>>,
    probe: Arc<KafkaProbe>,
    stats: Arc<EventStats>,
    stalled: Arc<AtomicBool>,
    config: ClientConfig,
}

fn client_config(cfg: &KafkaConfig) -> Result<ClientConfig, GatewayError> {
    let brokers = cfg
        .brokers
        .as_deref()
        .ok_or_else(|| GatewayError::Config("chat.kafka.brokers is not set".into()))?;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", &cfg.client_id);
    Ok(c)
}

impl KafkaSink {
    /// The producer for `cfg` (connects in the background; a bad setting stops the start).
    /// `probe` is told about every producer this sink builds.
    pub fn new(
        cfg: &KafkaConfig,
        stats: Arc<EventStats>,
        probe: Arc<KafkaProbe>,
    ) -> Result<Self, GatewayError> {
        let mut config = client_config(cfg)?;
        config
            .set("enable.idempotence", "true")
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                cfg.message_timeout.as_millis().max(1).to_string(),
            );
        let stalled = Arc::new(AtomicBool::new(false));
        let producer = Arc::new(Self::producer(&config, &stats, &stalled)?);
        probe.install(Some(producer.clone()));
        Ok(Self {
            producer,
            probe,
            stats,
            stalled,
            config,
        })
    }

    fn producer(
        config: &ClientConfig,
        stats: &Arc<EventStats>,
        stalled: &Arc<AtomicBool>,
    ) -> Result<ThreadedProducer<Reports>, GatewayError> {
        config
            .create_with_context(Reports {
                stats: stats.clone(),
                stalled: stalled.clone(),
            })
            .map_err(|e| GatewayError::Config(format!("chat.kafka: {e}")))
    }

    /// After records timed out (the broker was unreachable for a whole message timeout) or a
    /// fatal error: a new producer, the old one's queue purged (those records are counted as
    /// dropped by their reports). An idempotent producer whose broker forgot its producer id —
    /// a broker that lost its state — retries that id forever; a new one starts clean.
    async fn rebuild(&mut self) {
        let fresh = match Self::producer(&self.config, &self.stats, &self.stalled) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "Kafka producer not rebuilt; keeping the old one");
                return;
            }
        };
        self.stalled.store(false, Relaxed);
        let fresh = Arc::new(fresh);
        self.probe.install(Some(fresh.clone()));
        let old = std::mem::replace(&mut self.producer, fresh);
        tracing::warn!("Kafka records timed out: producer rebuilt");
        // Dropping a producer joins its threads: not on a runtime worker.
        let _ = tokio::task::spawn_blocking(move || {
            old.purge(PurgeConfig::default().queue().inflight());
            drop(old);
        })
        .await;
    }

    /// Hands the records of `event` to the producer (which copies them); `buf` is scratch.
    fn send(&self, event: &ChatEvent, cfg: &KafkaConfig, buf: &mut Vec<u8>) {
        each_line(event, cfg, buf, |topic, bytes| {
            let record = BaseRecord::to(topic)
                .key(event.conversation_id())
                .payload(bytes);
            if let Err((e, _)) = self.producer.send(record) {
                let why = match e {
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                        "the producer queue is full"
                    }
                    _ => "the producer refused the record",
                };
                self.stats.kafka_errors.fetch_add(1, Relaxed);
                self.stats.drop_records(1, why);
            }
        });
    }

    /// Sends events until shutdown (what is queued then is sent too), then flushes, for at most
    /// the message timeout or [`FLUSH_AT_STOP`], whichever is shorter.
    pub async fn run(mut self, cfg: KafkaConfig, rx: flume::Receiver<ChatEvent>, mut stop: Stop) {
        if cfg.create_topics {
            create_topics(&cfg).await;
        }
        let mut buf = Vec::with_capacity(1024);
        while let Some(first) = stop.next(&rx).await {
            if self.stalled.load(Relaxed) {
                self.rebuild().await;
            }
            self.send(&first, &cfg, &mut buf);
            for event in rx.try_iter().take(super::BURST) {
                self.send(&event, &cfg, &mut buf);
            }
            // The producer lingers anyway; let the next events gather without waking us.
            stop.pause(super::GATHER).await;
        }
        self.probe.install(None);
        let (producer, wait) = (self.producer, cfg.message_timeout.min(FLUSH_AT_STOP));
        let flushed = tokio::task::spawn_blocking(move || producer.flush(wait)).await;
        match flushed {
            Ok(Ok(())) => tracing::info!("analytics events flushed to Kafka"),
            Ok(Err(e)) => tracing::warn!(error = %e, "analytics events not all flushed"),
            Err(e) => tracing::warn!(error = %e, "analytics flush did not finish"),
        }
    }
}

/// Creates both topics if missing (an admin request; refusals are logged, not fatal: the
/// operator may have created them, or forbid creation).
pub async fn create_topics(cfg: &KafkaConfig) {
    let admin: AdminClient<DefaultClientContext> = match client_config(cfg).and_then(|c| {
        c.create()
            .map_err(|e| GatewayError::Config(format!("chat.kafka: {e}")))
    }) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create Kafka topics");
            return;
        }
    };
    let topics: Vec<NewTopic<'_>> = [&cfg.lifecycle_topic, &cfg.messages_topic]
        .into_iter()
        .map(|t| {
            NewTopic::new(
                t,
                cfg.partitions.max(1),
                TopicReplication::Fixed(cfg.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    match admin.create_topics(&topics, &opts).await {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(t) => tracing::info!(topic = %t, "Kafka topic created"),
                    Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        tracing::debug!(topic = %t, "Kafka topic exists")
                    }
                    Err((t, code)) => {
                        tracing::warn!(topic = %t, error = %code, "Kafka topic not created")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "Kafka topics not created (is the broker up?)"),
    }
}
