//! The event sinks without a broker: the JSONL file (what a record looks like on each topic,
//! ids stable across retries), the host listener, and a full buffer counted as drops. Kafka
//! itself is tested end to end against a real broker (`tests/python/test_durable_events.py`).

use std::sync::{Arc, Mutex};

use livechat_core::store::{EventListener, EventSink};
use livechat_core::{
    events_of, ChatEventType, ChatParticipant, ConversationMetadata, MessageDraft, MessageType,
    Metadata, ParticipantKind, Timestamp,
};

use super::{Events, EventsConfig, KafkaConfig};
use crate::iopool::IoPool;

fn conversation() -> ConversationMetadata {
    livechat_core::start(
        "c1".into(),
        ChatParticipant::new("cust", ParticipantKind::Customer, "Cy"),
        Metadata::new(),
        Timestamp(1_700_000_000_000),
    )
    .conversation
}

fn step_events() -> Vec<livechat_core::ChatEvent> {
    let c = conversation();
    let mut m = MessageDraft {
        kind: MessageType::Text,
        sender: c.customer.clone(),
        content: "hello".into(),
        metadata: Metadata::new(),
        client_message_id: None,
    }
    .into_message("m1".into(), "c1", 1, Timestamp(1_700_000_000_001));
    m.seq = 1;
    events_of(
        &[
            ChatEventType::ConversationStarted,
            ChatEventType::MessageReceived,
        ],
        Some(&c),
        vec![m],
    )
    .collect()
}

#[test]
fn the_file_sink_writes_each_record_as_a_line_with_stable_event_ids() {
    let io = IoPool::new(1, 0).unwrap();
    let dir = std::env::temp_dir().join(format!("lc-events-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.jsonl");
    let cfg = EventsConfig {
        file: Some(path.clone()),
        ..EventsConfig::default()
    };
    let events = Events::start(&KafkaConfig::default(), &cfg, &io).unwrap();
    assert_eq!(events.sink(), "file");
    for e in step_events() {
        events.publish(e);
    }
    // The same step published again (a retry): the same ids.
    for e in step_events() {
        events.publish(e);
    }
    // Shutdown drains what is queued and ends the sink (the handle may still be alive).
    assert!(io.shutdown(std::time::Duration::from_secs(5)));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    let topics: Vec<&str> = lines[..3]
        .iter()
        .map(|l| l["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        topics,
        ["chat.lifecycle", "chat.lifecycle", "chat.messages"]
    );
    let started = &lines[0]["record"];
    assert_eq!(started["type"], "CONVERSATION_STARTED");
    assert_eq!(started["conversationId"], "c1");
    assert_eq!(started["payload"]["status"], "OPEN");
    assert!(started.get("seq").is_none());
    let summary = &lines[1]["record"];
    assert_eq!(summary["type"], "MESSAGE_RECEIVED");
    assert_eq!(summary["seq"], 1);
    assert!(summary["payload"].get("content").is_none());
    let full = &lines[2]["record"];
    assert_eq!(full["payload"]["content"], "hello");
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["record"]["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(ids[..3], ids[3..], "a retried step keeps its ids");
    let unique: std::collections::HashSet<&&str> = ids[..3].iter().collect();
    assert_eq!(unique.len(), 3, "one id per record");
    assert!(uuid::Uuid::parse_str(ids[0]).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

struct Collect(Mutex<Vec<(ChatEventType, String)>>);

impl EventListener for Collect {
    fn on_event(&self, e: &livechat_core::ChatEvent) {
        if let Ok(mut v) = self.0.lock() {
            v.push((e.kind, e.conversation_id().to_owned()));
        }
    }
}

#[test]
fn the_listener_sees_every_event_even_the_ones_a_full_buffer_drops() {
    let (tx, rx) = flume::bounded(1);
    let listener = Arc::new(Collect(Mutex::new(Vec::new())));
    let events = Events::with(Some(tx), Arc::default(), "test").with_listener(listener.clone());
    for e in step_events() {
        events.publish(e);
    }
    let seen = listener.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (ChatEventType::ConversationStarted, "c1".to_owned()),
            (ChatEventType::MessageReceived, "c1".to_owned()),
        ]
    );
    let s = events.stats().snapshot();
    assert_eq!((s.published, s.dropped), (2, 1), "the buffer holds one");
    assert_eq!(rx.len(), 1);
}
