//! Shared fixtures for the criterion benchmarks in `benches/benches/`: realistic chat messages,
//! drafts, UUID-like ids, Socket.IO packet texts and Engine.IO payloads, plus the run-time
//! budget every bench uses and a helper that prints which of two measured variants was faster.
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

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

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

/// Where criterion writes its results: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, or
/// `<target>/criterion` derived from this bench binary's path (`<target>/release/deps/<bin>`).
fn criterion_home() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("CRITERION_HOME") {
        return Some(v.into());
    }
    if let Some(v) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(v).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.ancestors().nth(3)?.join("criterion"))
}

/// Criterion's directory-name spelling of a group or function id.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '?' | '"' | '/' | '\\' | '*' | '<' | '>' | ':' | '|' | '^' => '_',
            c => c,
        })
        .collect()
}

/// The mean time (ns) criterion measured for `group/function` in this process's run, if any.
pub fn measured_mean_ns(group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()?
        .join(safe(group))
        .join(safe(function))
        .join("new")
        .join("estimates.json");
    // Results older than this run belong to an earlier (possibly filtered) run.
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// Prints `group: <faster> is N.NNx faster than <slower> (a ns vs b ns)` when both variants
/// were measured in this run, so the BENCHMARKS table can quote the winner.
pub fn print_winner(group: &str, a: &str, b: &str, since: SystemTime) {
    let (Some(ta), Some(tb)) = (
        measured_mean_ns(group, a, since),
        measured_mean_ns(group, b, since),
    ) else {
        return;
    };
    let (fast, tf, slow, ts) = if ta <= tb {
        (a, ta, b, tb)
    } else {
        (b, tb, a, ta)
    };
    println!(
        "WINNER {group}: {fast} is {:.2}x faster than {slow} ({tf:.0} ns vs {ts:.0} ns mean)",
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
}
