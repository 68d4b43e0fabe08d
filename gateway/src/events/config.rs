//! `chat.kafka.*` and `chat.events.*`: where analytics events go.
//!
//! ```toml
//! [chat.kafka]
//! brokers = "kafka-1:9092,kafka-2:9092"   # env LIVECHAT_CHAT_KAFKA_BROKERS
//! lifecycle-topic = "chat.lifecycle"
//! messages-topic = "chat.messages"
//!
//! [chat.events]
//! file = "/var/log/livechat/events.jsonl"   # used when no Kafka is configured
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::chat::config::duration;

/// `chat.kafka.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`; unset = no Kafka.
    pub brokers: Option<String>,
    /// Topic of lifecycle events (and a summary of every message).
    pub lifecycle_topic: String,
    /// Topic of every stored message, whole.
    pub messages_topic: String,
    /// Create both topics at start when they do not exist (needs the broker's permission;
    /// otherwise create them beforehand, see README).
    pub create_topics: bool,
    /// Partitions of created topics.
    pub partitions: i32,
    /// Replication factor of created topics (3 on a production cluster).
    pub replication_factor: i32,
    /// How long the producer waits to fill a batch (`linger.ms`). 50 ms, not librdkafka's
    /// 5 ms: at 3,000 messages/s on 6 partitions per topic, 5 ms batches carry two or three
    /// records per partition, and librdkafka's broker thread spent ~35 µs of node CPU per
    /// stored message (two records) on requests; at 50 ms it is ~10 µs, the broker's own CPU
    /// falls from ~77 to ~20 µs, and analytics consumers see events 50 ms later
    /// (benches/durable.sh, BENCHMARKS.md).
    #[serde(deserialize_with = "duration")]
    pub linger: Duration,
    /// `compression.type`: `lz4`, `gzip`, `snappy` or `none`.
    pub compression: String,
    /// How long an event may wait for the broker before it is given up and counted as dropped
    /// (`message.timeout.ms`): a broker down for less than this loses nothing.
    #[serde(deserialize_with = "duration")]
    pub message_timeout: Duration,
    /// `client.id`.
    pub client_id: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            lifecycle_topic: "chat.lifecycle".into(),
            messages_topic: "chat.messages".into(),
            create_topics: true,
            partitions: 6,
            replication_factor: 1,
            linger: Duration::from_millis(50),
            compression: "lz4".into(),
            message_timeout: Duration::from_secs(30),
            client_id: "livechat".into(),
        }
    }
}

/// `chat.events.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct EventsConfig {
    /// Without Kafka: append every event as one JSON line to this file (else they are logged at
    /// debug level, target `livechat::events`).
    pub file: Option<PathBuf>,
    /// Events waiting between the executors and the sink at most; beyond, an event is dropped
    /// and counted (a user action never waits for analytics).
    pub buffer: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            file: None,
            buffer: 65_536,
        }
    }
}
