//! Shared fixtures for the criterion benchmarks in `benches/benches/`: realistic chat messages,
//! drafts, UUID-like ids, Socket.IO packet texts and Engine.IO payloads, plus the run-time
//! budget every bench uses and a paired, interleaved A/B timer that says which of two variants
//! is faster.
//!
//! The benchmarks measure the gateway's hot paths (codecs, JSON, shard lookup, the embedded
//! message store, the cross-executor mesh and room broadcasts) so regressions show up as
//! numbers; see each bench file's header for what it measures and why. Everything here is
//! deterministic (no clock, no OS randomness) so every run measures the same inputs.
//!
//! ```text
//! cargo bench -p livechat-benches                 # everything, about 2 minutes on 2 cores once built
//! cargo bench -p livechat-benches --bench shard_map
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use livechat_core::{
    ChatMessage, ChatParticipant, MessageDraft, MessageType, Metadata, ParticipantKind, Timestamp,
};
use livechat_gateway::engineio::Frame;

/// Warm-up time of every benchmark (kept short: the whole suite must run in a few minutes on
/// a 2-core machine).
pub const WARM_UP: Duration = Duration::from_millis(1000);
/// Measurement time of every benchmark.
pub const MEASUREMENT: Duration = Duration::from_millis(2000);
/// Samples per benchmark (criterion's minimum is 10).
pub const SAMPLES: usize = 30;

/// The 100-character text of [`sample_message`] and [`sample_draft`].
pub const CONTENT_100: &str =
    "Hi, my order #48213 arrived damaged: the box was crushed and the lid is cracked. Could you help me?!";

/// A small metadata object as clients attach it to messages.
pub fn message_metadata() -> Metadata {
    let mut m = Metadata::new();
    m.insert("channel".into(), "web".into());
    m.insert("locale".into(), "de-DE".into());
    m.insert("attachments".into(), serde_json::json!([]));
    m
}

/// The customer who sends the sample messages (participant metadata: role, tier, locale).
pub fn sample_sender() -> ChatParticipant {
    let mut extra = Metadata::new();
    extra.insert("tier".into(), "premium".into());
    extra.insert("locale".into(), "de-DE".into());
    ChatParticipant::new(
        "cust-7f3e2a9c-1b4d-4e8f-9a21-5c6d7e8f9012",
        ParticipantKind::Customer,
        "Alex Example",
    )
    .with_metadata(extra)
}

/// A realistic stored text message: customer sender, 100-char content, small metadata.
pub fn sample_message() -> ChatMessage {
    ChatMessage {
        id: "0b9c3f5e-6a1d-4c7b-8e2f-3a4b5c6d7e8f".into(),
        conversation_id: "5d2e8f1a-3b4c-4d5e-8f6a-7b8c9d0e1f2a".into(),
        seq: 42,
        kind: MessageType::Text,
        sender: sample_sender(),
        content: CONTENT_100.into(),
        metadata: message_metadata(),
        timestamp: Timestamp(1_750_000_000_123),
        client_message_id: None,
    }
}

/// The draft the lifecycle hands to the store for one customer message.
pub fn sample_draft(client_message_id: Option<String>) -> MessageDraft {
    MessageDraft {
        kind: MessageType::Text,
        sender: sample_sender(),
        content: CONTENT_100.into(),
        metadata: message_metadata(),
        client_message_id,
    }
}

/// SplitMix64: a deterministic stream for fixtures (benchmarks must not depend on the OS RNG).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` distinct version-4-shaped UUID strings (like the conversation ids the gateway makes).
pub fn uuid_like_ids(n: usize) -> Vec<String> {
    let mut s = 0x5EED_u64;
    (0..n)
        .map(|_| {
            let (a, b) = (splitmix(&mut s), splitmix(&mut s));
            format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                0x8000 | (b >> 48) & 0x3fff,
                b & 0xffff_ffff_ffff
            )
        })
        .collect()
}

/// Socket.IO EVENT as a client sends `chat:message` (after the Engine.IO `4`).
pub const SIO_EVENT: &str = r#"2["chat:message",{"conversationId":"5d2e8f1a-3b4c-4d5e-8f6a-7b8c9d0e1f2a","content":"Hi, can you help me with my order?","clientMessageId":"c-1718000000-17"}]"#;
/// Socket.IO BINARY_EVENT with two attachment placeholders and an ack id.
pub const SIO_BINARY_EVENT: &str = r#"52-7["upload",{"_placeholder":true,"num":0},{"name":"photo.jpg","type":"image/jpeg"},{"_placeholder":true,"num":1}]"#;
/// Socket.IO ACK answering id 12 with one small object.
pub const SIO_ACK: &str = r#"312[{"ok":true,"seq":42}]"#;

/// Binary attachment size used in Engine.IO payload fixtures.
pub const ATTACHMENT_LEN: usize = 256;

/// A polling exchange of `n` packets, as frames and as the encoded `\x1e`-joined body.
///
/// Every tenth packet (index 9, 19, ...) is a binary attachment (`b` + base64 of
/// [`ATTACHMENT_LEN`] bytes) preceded by its `451-[...]` BINARY_EVENT text; the others are
/// `42["chat:message",...]` texts. With `n == 1` the payload is one text packet; with
/// `n >= 10` it includes binaries.
pub fn engineio_payload(n: usize) -> (Vec<Frame>, Vec<u8>) {
    let attachment = Bytes::from((0..ATTACHMENT_LEN).map(|i| i as u8).collect::<Vec<_>>());
    let frames: Vec<Frame> = (0..n)
        .map(|i| match i % 10 {
            9 => Frame::Binary(attachment.clone()),
            8 if n >= 10 => Frame::message(r#"451-["upload",{"_placeholder":true,"num":0}]"#),
            _ => Frame::message(SIO_EVENT),
        })
        .collect();
    let mut body = Vec::new();
    livechat_gateway::engineio::packet::encode_payload(&frames, &mut body);
    (frames, body)
}

/// Mean time per call of `a` and of `b` (ns), measured interleaved: `rounds` rounds, each
/// timing `calls` calls of `a` then `calls` of `b` (order swapped every round); returns the
/// median per-call time of each over the rounds.
///
/// On a shared 2-core VM the speed drifts by tens of percent within a minute, so two
/// criterion benchmarks run one after the other can disagree on which of two variants is
/// faster; interleaving exposes both to the same conditions, and the median drops the rounds
/// that were disturbed.
pub fn paired_medians(
    mut a: impl FnMut(),
    mut b: impl FnMut(),
    rounds: usize,
    calls: usize,
) -> (f64, f64) {
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        start.elapsed().as_nanos() as f64 / calls as f64
    };
    let (mut ta, mut tb) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for r in 0..rounds {
        if r % 2 == 0 {
            ta.push(time(&mut a));
            tb.push(time(&mut b));
        } else {
            tb.push(time(&mut b));
            ta.push(time(&mut a));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut ta), median(&mut tb))
}

/// Prints `WINNER <what>: <faster> is N.NNx faster than <slower> (...)` from
/// [`paired_medians`] times, so the BENCHMARKS table can quote the winner.
pub fn print_winner(what: &str, (name_a, ta): (&str, f64), (name_b, tb): (&str, f64)) {
    let ((fast, tf), (slow, ts)) = if ta <= tb {
        ((name_a, ta), (name_b, tb))
    } else {
        ((name_b, tb), (name_a, ta))
    };
    println!(
        "WINNER {what}: {fast} is {:.2}x faster than {slow} \
         ({tf:.0} ns vs {ts:.0} ns, medians of interleaved rounds)",
        ts / tf
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_what_the_benches_claim() {
        assert_eq!(CONTENT_100.chars().count(), 100);
        let ids = uuid_like_ids(1000);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 36 && &id[14..15] == "4"));
        let (frames, body) = engineio_payload(100);
        let decoded = livechat_gateway::engineio::packet::decode_payload(&body).unwrap();
        assert_eq!(decoded.len(), frames.len());
        assert_eq!(
            frames
                .iter()
                .filter(|f| matches!(f, Frame::Binary(_)))
                .count(),
            10
        );
        for p in [SIO_EVENT, SIO_BINARY_EVENT, SIO_ACK] {
            livechat_gateway::socketio::packet::decode(p).unwrap();
        }
    }

    #[test]
    fn both_json_libraries_write_the_same_wire_bytes() {
        use livechat_gateway::chat::wire::Json;
        let msg = sample_message();
        let serde = serde_json::to_vec(&Json(&msg)).unwrap();
        assert_eq!(simd_json::serde::to_vec(&Json(&msg)).unwrap(), serde);
        assert!(serde.len() > 400, "about 500 bytes, as the bench says");
    }
}
