//! Analytics events: every lifecycle step and stored message, as JSON envelopes, to Kafka
//! (`chat.lifecycle`, `chat.messages`), or without Kafka to a JSONL file or the debug log; and
//! to the host's in-process [`EventListener`].
//!
//! [`Events`] is the executors' handle (`Send + Clone`): `publish` calls the listener, then
//! hands the event to a bounded channel without waiting — full means dropped and counted,
//! never a slower or failed chat action. The sinks run on the IO pool and serialise there, so
//! the executors pay one channel send per event. Each event is published once, by the node
//! that committed its step.
//!
//! - [`config`]: `chat.kafka.*`, `chat.events.*`.
//! - [`kafka`]: the rdkafka producer (idempotent, compressed, lingering) and topic creation.
//! - [`probe`]: whether the brokers answer (`/readyz`).
//! - [`file`]: the JSONL sink.
//! - [`stats`]: published / delivered / dropped.

pub mod config;
pub mod file;
pub mod kafka;
pub mod probe;
pub mod stats;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use livechat_core::store::{EventListener, EventSink};
use livechat_core::ChatEvent;

pub use config::{EventsConfig, KafkaConfig};
pub use stats::{EventSnapshot, EventStats};

use crate::error::GatewayError;
use crate::iopool::IoPool;

/// How long a sink pauses after a burst before it waits on the channel again, so that events
/// gather without waking it one by one (see [`crate::iopool::Stop::pause`]): the latency it
/// adds is small next to the producer's linger.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// The most events a sink takes from the channel at once.
pub const BURST: usize = 4096;

/// Where this node's events go.
#[derive(Clone)]
pub struct Events {
    tx: Option<flume::Sender<ChatEvent>>,
    stats: Arc<EventStats>,
    listener: Option<Arc<dyn EventListener + Send + Sync>>,
    probe: Option<Arc<probe::KafkaProbe>>,
    /// Stops the sink (closing the channel lets it flush and end).
    kind: &'static str,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("sink", &self.kind)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

impl Events {
    /// Starts the sink `kafka` / `events` call for on `io` (a service: it drains and flushes at
    /// the pool's shutdown): Kafka when brokers are set, else the file, else the log.
    pub fn start(
        kafka: &KafkaConfig,
        events: &EventsConfig,
        io: &IoPool,
    ) -> Result<Self, GatewayError> {
        let stats = Arc::new(EventStats::default());
        let (tx, rx) = flume::bounded(events.buffer.max(1));
        if kafka.brokers.is_some() {
            let probe = probe::KafkaProbe::new(kafka.lifecycle_topic.clone(), io.handle().clone());
            // Built on a pool thread: librdkafka's threads inherit its lower priority.
            let sink = {
                let (kafka, stats, probe) = (kafka.clone(), stats.clone(), probe.clone());
                io.run_on_pool(move || kafka::KafkaSink::new(&kafka, stats, probe))??
            };
            io.spawn_service(sink.run(kafka.clone(), rx, io.stop_signal()));
            let mut events = Self::with(Some(tx), stats, "kafka");
            events.probe = Some(probe);
            return Ok(events);
        }
        if let Some(path) = &events.file {
            let file = file::open(path)?;
            io.spawn_service(file::run(
                file,
                path.clone(),
                rx,
                stats.clone(),
                kafka.clone(),
                io.stop_signal(),
            ));
            return Ok(Self::with(Some(tx), stats, "file"));
        }
        Ok(Self::with(None, stats, "log"))
    }

    /// Events to the debug log only (no IO pool needed).
    pub fn log() -> Self {
        Self::with(None, Arc::new(EventStats::default()), "log")
    }

    fn with(
        tx: Option<flume::Sender<ChatEvent>>,
        stats: Arc<EventStats>,
        kind: &'static str,
    ) -> Self {
        Self {
            tx,
            stats,
            listener: None,
            probe: None,
            kind,
        }
    }

    /// Also hands every event to `listener` (in-process, on the committing executor).
    pub fn with_listener(mut self, listener: Arc<dyn EventListener + Send + Sync>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Whether publishing does anything: a sink, a listener, or the debug log enabled. The
    /// engine skips building events otherwise (the zero-config default's hot path).
    pub fn wanted(&self) -> bool {
        self.tx.is_some()
            || self.listener.is_some()
            || tracing::enabled!(target: "livechat::events", tracing::Level::DEBUG)
    }

    /// `kafka`, `file` or `log`.
    pub fn sink(&self) -> &'static str {
        self.kind
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<EventStats> {
        &self.stats
    }

    /// Whether the Kafka brokers answer (`None`: no Kafka configured).
    pub async fn probe(&self) -> Option<Result<(), String>> {
        Some(self.probe.as_ref()?.check().await)
    }
}

impl EventSink for Events {
    fn publish(&self, event: ChatEvent) {
        if let Some(l) = &self.listener {
            l.on_event(&event);
        }
        self.stats
            .published
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &self.tx {
            Some(tx) => {
                if tx.try_send(event).is_err() {
                    self.stats.drop_records(1, "the event buffer is full");
                }
            }
            None => tracing::debug!(
                target: "livechat::events",
                event = event.kind.as_str(),
                conversation = %event.conversation_id(),
                seq = event.seq(),
                "chat event"
            ),
        }
    }
}

/// The envelope's `eventId` of `event` on `topic`: a UUID (v5) of the topic and the event's
/// identity, so every retry of one step carries the same id and consumers can drop duplicates.
pub fn event_id(topic: &str, event: &ChatEvent) -> uuid::Uuid {
    let name = format!("{topic}\n{}", event.identity());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes())
}
