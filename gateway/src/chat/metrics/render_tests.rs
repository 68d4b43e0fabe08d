//! Tests of [`super::render`]: the contract's names carry the summed values; unknown gauges
//! are left out.

use super::*;
use crate::metrics::ExecutorSnapshot;

/// The value of the sample `line_start` (name and labels exactly as printed).
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn scrape() -> Inputs {
    let mut total = ExecutorSnapshot {
        messages_stored: 4,
        deliveries: 9,
        acks: 3,
        accepts: [1, 1, 0, 0],
        websocket: 2,
        sockets: 2,
        rooms: 1,
        conversations: Some([0, 1, 1, 2]),
        queue: Some((1, 2500)),
        ..ExecutorSnapshot::default()
    };
    total.redis_latency.counts[3] = 2;
    total.redis_latency.sum_us = 1500;
    Inputs {
        gathered: Gathered {
            total,
            missing: 1,
            mailbox_depths: vec![0, 3],
        },
        counters: CountersSnapshot {
            mesh_full: 5,
            http_rate_limited: 2,
            chat_rate_limited: 7,
            ..CountersSnapshot::default()
        },
        events: EventSnapshot {
            dropped: 6,
            ..EventSnapshot::default()
        },
        sink: "log",
        durable: None,
        redis: true,
    }
}

#[test]
fn the_contract_names_carry_the_summed_values() {
    let text = render(&scrape());
    let want = [
        ("livechat_mesh_full_total", 5.0),
        ("livechat_events_dropped_total", 6.0),
        ("livechat_kafka_events_dropped_total", 6.0),
        ("livechat_connections{transport=\"websocket\"}", 2.0),
        ("livechat_connections{transport=\"polling\"}", 0.0),
        ("livechat_sockets", 2.0),
        ("livechat_rooms", 1.0),
        ("livechat_conversations{status=\"QUEUED\"}", 1.0),
        ("livechat_conversations{status=\"CLOSED\"}", 2.0),
        ("livechat_queue_length", 1.0),
        ("livechat_queue_oldest_wait_seconds", 2.5),
        ("livechat_messages_stored_total", 4.0),
        ("livechat_deliveries_total", 9.0),
        ("livechat_acks_total", 3.0),
        ("livechat_accepts_total{outcome=\"accepted\"}", 1.0),
        ("livechat_accepts_total{outcome=\"conflict\"}", 1.0),
        ("livechat_accepts_total{outcome=\"cap\"}", 0.0),
        ("livechat_rate_limited_total{scope=\"http\"}", 2.0),
        ("livechat_rate_limited_total{scope=\"socket\"}", 7.0),
        ("livechat_http_rate_limited_total", 2.0),
        ("livechat_pubsub_messages_total{direction=\"in\"}", 0.0),
        ("livechat_backend_errors_total{backend=\"redis\"}", 0.0),
        (
            "livechat_backend_command_duration_seconds_bucket{backend=\"redis\",le=\"0.001\"}",
            2.0,
        ),
        (
            "livechat_backend_command_duration_seconds_count{backend=\"redis\"}",
            2.0,
        ),
        ("livechat_executor_mailbox_depth{executor=\"1\"}", 3.0),
        ("livechat_scrape_executors_missing", 1.0),
    ];
    for (name, v) in want {
        assert_eq!(sample(&text, name), Some(v), "{name} in\n{text}");
    }
    let version = format!(
        "livechat_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), Some(1.0));
    assert!(text.contains("# TYPE livechat_backend_command_duration_seconds histogram"));
    assert!(!text.contains("backend=\"postgres\""), "not configured");
    assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
}

#[test]
fn unknown_gauges_are_left_out_rather_than_zero() {
    let mut i = scrape();
    i.gathered.total.conversations = None;
    i.gathered.total.queue = None;
    i.redis = false;
    let text = render(&i);
    assert!(!text.contains("livechat_conversations"), "{text}");
    assert!(!text.contains("livechat_queue_length"));
    assert!(!text.contains("livechat_pubsub_messages"));
    assert!(!text.contains("backend=\"redis\""));
}
