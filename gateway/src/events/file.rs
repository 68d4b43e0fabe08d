//! The JSONL sink (`chat.events.file`, when no Kafka is configured): one envelope per line, the
//! `chat.lifecycle` form (message events as summaries plus a `chat.messages` line with the whole
//! message), appended and flushed after each burst. Runs on: the IO pool.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use livechat_core::{ChatEvent, ChatEventType};

use super::stats::EventStats;
use super::{event_id, KafkaConfig};
use crate::chat::wire::event::Envelope;
use crate::error::GatewayError;
use crate::iopool::Stop;

/// Opens `path` for appending (created if missing): a bad path stops the start.
pub fn open(path: &Path) -> Result<std::fs::File, GatewayError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| GatewayError::Config(format!("chat.events.file {}: {e}", path.display())))
}

/// One event as the lines it becomes: `(topic, line)`.
pub fn lines(event: &ChatEvent, topics: &KafkaConfig) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::with_capacity(2);
    let mut push = |topic: &str, full: bool| {
        let id = event_id(topic, event).hyphenated().to_string();
        let env = Envelope {
            event,
            event_id: &id,
            full,
        };
        if let Ok(bytes) = serde_json::to_vec(&env) {
            out.push((topic.to_owned(), bytes));
        }
    };
    push(&topics.lifecycle_topic, false);
    if event.kind == ChatEventType::MessageReceived {
        push(&topics.messages_topic, true);
    }
    out
}

/// Writes events until shutdown (what is queued then is written too).
pub async fn run(
    file: std::fs::File,
    path: PathBuf,
    rx: flume::Receiver<ChatEvent>,
    stats: Arc<EventStats>,
    topics: KafkaConfig,
    mut stop: Stop,
) {
    let mut out = std::io::BufWriter::new(file);
    while let Some(first) = stop.next(&rx).await {
        let mut n = 0u64;
        let mut burst = vec![first];
        burst.extend(rx.try_iter().take(1023));
        for e in &burst {
            for (topic, line) in lines(e, &topics) {
                let ok = out
                    .write_all(br#"{"topic":""#)
                    .and_then(|_| out.write_all(topic.as_bytes()))
                    .and_then(|_| out.write_all(br#"","record":"#))
                    .and_then(|_| out.write_all(&line))
                    .and_then(|_| out.write_all(b"}\n"));
                if ok.is_ok() {
                    n += 1;
                } else {
                    stats.drop_records(1, "the events file cannot be written");
                }
            }
        }
        if let Err(e) = out.flush() {
            tracing::warn!(path = %path.display(), error = %e, "events file not flushed");
        }
        stats
            .delivered
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    let _ = out.flush();
}
