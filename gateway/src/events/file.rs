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

/// One event as the lines it becomes: `f(topic, line)` for each, the line serialised into
/// `buf` (reused across calls: no allocation per record once it has grown).
pub fn each_line(
    event: &ChatEvent,
    topics: &KafkaConfig,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(&str, &[u8]),
) {
    let mut one = |topic: &str, full: bool| {
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = event_id(topic, event).hyphenated().encode_lower(&mut id);
        let env = Envelope {
            event,
            event_id: id,
            full,
        };
        buf.clear();
        if serde_json::to_writer(&mut *buf, &env).is_ok() {
            f(topic, buf);
        }
    };
    one(&topics.lifecycle_topic, false);
    if event.kind == ChatEventType::MessageReceived {
        one(&topics.messages_topic, true);
    }
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
    let mut line = Vec::new();
    while let Some(first) = stop.next(&rx).await {
        let mut n = 0u64;
        let mut burst = vec![first];
        burst.extend(rx.try_iter().take(super::BURST - 1));
        for e in &burst {
            each_line(e, &topics, &mut line, |topic, line| {
                let ok = out
                    .write_all(br#"{"topic":""#)
                    .and_then(|_| out.write_all(topic.as_bytes()))
                    .and_then(|_| out.write_all(br#"","record":"#))
                    .and_then(|_| out.write_all(line))
                    .and_then(|_| out.write_all(b"}\n"));
                if ok.is_ok() {
                    n += 1;
                } else {
                    stats.drop_records(1, "the events file cannot be written");
                }
            });
        }
        if let Err(e) = out.flush() {
            tracing::warn!(path = %path.display(), error = %e, "events file not flushed");
        }
        stats
            .delivered
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        stop.pause(super::GATHER).await;
    }
    let _ = out.flush();
}
