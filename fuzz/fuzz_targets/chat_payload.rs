//! Fuzzes the JSON the chat accepts from clients and stores: the `chat:message` payload and
//! the CONNECT auth object (`gateway/src/chat/socket.rs`), the REST bodies
//! (`gateway/src/chat/api.rs`), the input guards they run first (`chat/input.rs`:
//! `json_depth`, id and name shapes) and the contract's decoders (`chat/wire/`: `decode::<T>`
//! for every `WireType`, i.e. what is read back from Redis and the REST/socket replies).
//!
//! The socket / REST body structs are private to the gateway, so this target declares the
//! same serde shapes (see `Incoming`, `SendBody` … below; keep them in step, or better make the
//! gateway's own public, as fuzz/README.md lists) and runs the same steps the handlers run.
//!
//! Properties checked besides "no panic":
//! - `json_depth` agrees with the real nesting depth of every input serde_json accepts (it is
//!   the guard in front of the parser, so a miscount either lets deep JSON through or refuses
//!   legal JSON);
//! - a `chat:message` that passes the handler's checks and `core::compose` becomes a
//!   `ChatMessage` whose contract JSON reads back (`wire::decode`) as the same message: what a
//!   client may send can always be stored and re-read;
//! - `wire::decode::<T>` → `Json` → `decode` again succeeds and encoding is stable (the second
//!   encoding equals the first), and the value read back equals the first one read.
//!
//! Input: the first byte picks the parser (see `MODES`), the rest is the JSON bytes.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use livechat_core::{
    compose, ChatMessage, ChatParticipant, ConversationMetadata, ConversationStatus, MessageType,
    Metadata, Notice, ParticipantKind, QueueEntry, QueuePosition, Timestamp,
};
use livechat_gateway::chat::config::{LimitsConfig, MessageConfig};
use livechat_gateway::chat::input;
use livechat_gateway::chat::wire::{decode, Json, WireType};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Number of parsers the first byte selects from.
const MODES: u8 = 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, json)) = data.split_first() else {
        return;
    };
    depth_agrees(json);
    match mode % MODES {
        0 => chat_message(json),
        1 => connect_auth(json),
        2 => rest_start(json),
        3 => rest_body::<SendBody>(json),
        4 => rest_body::<AcceptBody>(json),
        5 => rest_body::<CloseBody>(json),
        6 => rest_body::<ChannelBody>(json),
        7 => wire::<ChatMessage>(json),
        8 => wire::<ConversationMetadata>(json),
        9 => wire::<ChatParticipant>(json),
        10 => wire::<QueueEntry>(json),
        11 => wire::<QueuePosition>(json),
        12 => wire::<Notice>(json),
        13 => wire::<Timestamp>(json),
        14 => wire::<Vec<ChatMessage>>(json),
        15 => wire::<Option<ChatParticipant>>(json),
        16 => wire::<ConversationStatus>(json),
        17 => wire::<MessageType>(json),
        18 => wire::<ParticipantKind>(json),
        _ => wire::<Vec<QueueEntry>>(json),
    }
});

/// `input::json_depth` against the depth of what serde_json actually parsed.
fn depth_agrees(json: &[u8]) {
    let Ok(Depth(d)) = serde_json::from_slice::<Depth>(json) else {
        return;
    };
    assert!(
        input::json_depth(json, d).is_ok(),
        "depth {d} refused at max {d}"
    );
    if d > 0 {
        assert!(
            input::json_depth(json, d - 1).is_err(),
            "depth {d} accepted at max {}",
            d - 1
        );
    }
}

/// The nesting depth of a JSON text as parsed (arrays and objects), every member counted:
/// not via `Value`, whose maps keep only the last of duplicate keys (`{"":{},"":""}` is
/// depth 2 as sent, depth 1 as a `Value`).
struct Depth(usize);

impl<'de> serde::Deserialize<'de> for Depth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Depth;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Depth, E> {
                Ok(Depth(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Depth, E> {
                Ok(Depth(0))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Depth, E> {
                Ok(Depth(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Depth, E> {
                Ok(Depth(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<Depth, E> {
                Ok(Depth(0))
            }
            fn visit_unit<E>(self) -> Result<Depth, E> {
                Ok(Depth(0))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Depth, A::Error> {
                let mut max = 0;
                while let Some(Depth(d)) = a.next_element()? {
                    max = max.max(d);
                }
                Ok(Depth(max + 1))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Depth, A::Error> {
                let mut max = 0;
                while let Some((serde::de::IgnoredAny, Depth(d))) = a.next_entry()? {
                    max = max.max(d);
                }
                Ok(Depth(max + 1))
            }
        }
        d.deserialize_any(V)
    }
}

/// `chat:message` payload (mirror of the private `Incoming` in `chat/socket.rs`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Incoming {
    conversation_id: Option<String>,
    content: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    client_message_id: Option<String>,
    metadata: Option<Box<RawValue>>,
}

/// `on_message` in `chat/socket.rs`, up to the command it sends, then the message the owner
/// would store, through its JSON and back.
fn chat_message(json: &[u8]) {
    let Ok(text) = std::str::from_utf8(json) else {
        return;
    };
    // The argument arrives as one raw JSON value of a Socket.IO packet.
    let Ok(raw) = serde_json::from_str::<&RawValue>(text) else {
        return;
    };
    let limits = LimitsConfig::default();
    let msg_cfg = MessageConfig::default();
    if input::json_depth(raw.get().as_bytes(), limits.max_json_depth).is_err() {
        return;
    }
    let Ok(i) = serde_json::from_str::<Incoming>(raw.get()) else {
        return;
    };
    let metadata: Metadata = match &i.metadata {
        None => Metadata::new(),
        Some(m) => {
            if input::object_size("metadata", m.get().len(), msg_cfg.max_metadata_bytes).is_err() {
                return;
            }
            match serde_json::from_str(m.get()) {
                Ok(m) => m,
                Err(_) => return,
            }
        }
    };
    if let Some(id) = &i.conversation_id {
        if input::conversation_id(id).is_err() {
            return;
        }
    }
    let conversation_id = i.conversation_id.unwrap_or_else(|| "c-joined".to_owned());
    let kind = match i.kind.as_deref().map(MessageType::parse) {
        None => MessageType::Text,
        Some(Some(k)) => k,
        Some(None) => return,
    };
    let sender = ChatParticipant::new("u-1", ParticipantKind::Customer, "Cy");
    let content = i.content.unwrap_or_default();
    let Ok(draft) = compose(
        sender,
        content.clone(),
        kind,
        metadata,
        i.client_message_id,
        msg_cfg.max_length,
    ) else {
        return;
    };
    assert!(!draft.content.trim().is_empty());
    assert!(draft.content.chars().count() <= msg_cfg.max_length);
    assert_ne!(draft.kind, MessageType::System);

    // What the owner stores and emits.
    let message = ChatMessage {
        id: "m-1".to_owned(),
        conversation_id,
        seq: 1,
        kind: draft.kind,
        sender: draft.sender,
        content: draft.content,
        metadata: draft.metadata,
        timestamp: Timestamp(1_763_033_763_351),
        client_message_id: None,
    };
    let out = serde_json::to_vec(&Json(&message)).expect("a composed message serializes");
    let back = decode::<ChatMessage>(&out)
        .unwrap_or_else(|e| panic!("stored message {:?} does not read back: {e}", lossy(&out)));
    assert_eq!(back, message);
}

/// The CONNECT auth object as `Hello::read` in `chat/socket.rs` reads it.
fn connect_auth(json: &[u8]) {
    let Ok(text) = std::str::from_utf8(json) else {
        return;
    };
    let Ok(raw) = serde_json::from_str::<&RawValue>(text) else {
        return;
    };
    if input::json_depth(raw.get().as_bytes(), LimitsConfig::default().max_json_depth).is_err() {
        return;
    }
    let auth: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw.get()).unwrap_or_default();
    let field = |k: &str| match auth.get(k) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    for k in ["role", "token", "displayName", "scope"] {
        let _ = field(k);
    }
    if let Some(v) = field("lastSeq") {
        let _ = v.trim().parse::<u64>();
    }
    if let Some(id) = field("conversationId") {
        if input::conversation_id(&id).is_ok() {
            assert!(!id.is_empty() && id.len() <= input::MAX_CONVERSATION_ID);
        }
    }
    if let Some(fp) = field("fingerprint") {
        if input::participant_id(&fp).is_ok() {
            // Characters, not bytes: the limit is `maxLength` in the API's schema.
            assert!(!fp.is_empty() && fp.chars().count() <= input::MAX_PARTICIPANT_ID);
            assert!(!fp.chars().any(|c| c.is_control() || c.is_whitespace()));
        }
    }
    if let Some(n) = field("displayName") {
        let _ = input::display_name(&n);
    }
}

/// `POST /conversations`: the attributes object, which must name a channel; the conversation
/// made from it is stored as JSON and must read back.
fn rest_start(json: &[u8]) {
    let limits = LimitsConfig::default();
    if input::object_size("attributes", json.len(), limits.max_attributes_bytes).is_err()
        || input::json_depth(json, limits.max_json_depth).is_err()
    {
        return;
    }
    let Ok(attrs) = json_body::<Metadata>(json, true) else {
        return;
    };
    match attrs.get("channel") {
        Some(serde_json::Value::String(c)) if !c.trim().is_empty() => {}
        _ => return,
    }
    let name = attrs
        .get("displayName")
        .and_then(|v| v.as_str())
        .unwrap_or("Cy");
    let meta = ConversationMetadata {
        id: "c-1".to_owned(),
        status: ConversationStatus::Open,
        customer: ChatParticipant::new("u-1", ParticipantKind::Customer, name),
        agent: None,
        created_at: Timestamp(1_763_033_763_351),
        updated_at: Timestamp(1_763_033_763_351),
        accepted_at: None,
        closed_at: None,
        closed_by: None,
        close_reason: None,
        tags: Vec::new(),
        attributes: attrs,
        version: 1,
    };
    let out = serde_json::to_vec(&Json(&meta)).expect("metadata serializes");
    let back = decode::<ConversationMetadata>(&out).unwrap_or_else(|e| {
        panic!(
            "stored conversation {:?} does not read back: {e}",
            lossy(&out)
        )
    });
    assert_eq!(back, meta);
}

/// `json_body` in `chat/api.rs`.
fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    required: bool,
) -> Result<T, ()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required { Err(()) } else { Ok(T::default()) };
    }
    serde_json::from_slice(body).map_err(|_| ())
}

/// A REST body: the guards `Api` runs, then the body's own checks.
fn rest_body<T: serde::de::DeserializeOwned + Default + Checked>(json: &[u8]) {
    if input::json_depth(json, LimitsConfig::default().max_json_depth).is_err() {
        return;
    }
    if let Ok(b) = json_body::<T>(json, false) {
        b.check();
    }
}

/// The field checks a handler runs on a parsed body (must not panic).
trait Checked {
    fn check(&self);
}

/// Mirror of `SendBody` in `chat/api.rs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SendBody {
    content: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    sender_type: Option<String>,
    sender_id: Option<String>,
    sender_display_name: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    client_message_id: Option<String>,
}

impl Checked for SendBody {
    fn check(&self) {
        if let Some(n) = &self.sender_display_name {
            let _ = input::display_name(n);
        }
        if let Some(id) = &self.sender_id {
            let _ = input::participant_id(id);
        }
        let _ = self.kind.as_deref().map(MessageType::parse);
        let _ = self
            .sender_type
            .as_deref()
            .map(str::parse::<ParticipantKind>);
        let len = serde_json::to_vec(&self.metadata).map_or(usize::MAX, |v| v.len());
        let _ = input::object_size("metadata", len, MessageConfig::default().max_metadata_bytes);
        if let Some(content) = &self.content {
            let _ = compose(
                ChatParticipant::new("u-1", ParticipantKind::Customer, "Cy"),
                content.clone(),
                MessageType::Text,
                self.metadata.clone(),
                self.client_message_id.clone(),
                MessageConfig::default().max_length,
            );
        }
    }
}

/// Mirror of `AcceptBody` in `chat/api.rs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct AcceptBody {
    agent_id: Option<String>,
    display_name: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

impl Checked for AcceptBody {
    fn check(&self) {
        if let Some(id) = &self.agent_id {
            let _ = input::participant_id(id);
        }
        if let Some(n) = &self.display_name {
            let _ = input::display_name(n);
        }
    }
}

/// Mirror of `CloseBody` in `chat/api.rs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct CloseBody {
    agent_id: Option<String>,
    display_name: Option<String>,
    reason: Option<String>,
}

impl Checked for CloseBody {
    fn check(&self) {
        if let Some(id) = &self.agent_id {
            let _ = input::participant_id(id);
        }
        if let Some(n) = &self.display_name {
            let _ = input::display_name(n);
        }
    }
}

/// Mirror of `ChannelBody` in `chat/api.rs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ChannelBody {
    channel: Option<String>,
}

impl Checked for ChannelBody {
    fn check(&self) {}
}

/// Whether a decoded value can be compared with what its own JSON reads back as (a
/// `ChatMessage`'s `clientMessageId` is never written, and `seq` 0 is left out).
trait Comparable: Sized {
    fn comparable(&self) -> Option<Self>;
}

macro_rules! comparable_as_is {
    ($($t:ty),*) => {$(
        impl Comparable for $t {
            fn comparable(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

comparable_as_is!(
    ConversationMetadata,
    ChatParticipant,
    QueueEntry,
    QueuePosition,
    Notice,
    Timestamp,
    ConversationStatus,
    MessageType,
    ParticipantKind
);

impl Comparable for ChatMessage {
    fn comparable(&self) -> Option<Self> {
        // A message without its seq is never read back (stored messages always have one).
        (self.seq != 0).then(|| ChatMessage {
            client_message_id: None,
            ..self.clone()
        })
    }
}

impl<T: Comparable> Comparable for Vec<T> {
    fn comparable(&self) -> Option<Self> {
        self.iter().map(Comparable::comparable).collect()
    }
}

impl<T: Comparable> Comparable for Option<T> {
    fn comparable(&self) -> Option<Self> {
        match self {
            None => Some(None),
            Some(v) => v.comparable().map(Some),
        }
    }
}

/// `decode` → `Json` → `decode`: the second read equals the first, the encoding is stable.
fn wire<T: WireType + Comparable + PartialEq + Debug>(json: &[u8]) {
    let Ok(v) = decode::<T>(json) else {
        return;
    };
    let Some(expected) = v.comparable() else {
        return;
    };
    let out = serde_json::to_vec(&Json(&v)).expect("a decoded value serializes");
    let back = match decode::<T>(&out) {
        Ok(b) => b,
        Err(e) => panic!(
            "{} read from {:?}, written as {:?}, does not read back: {e}",
            std::any::type_name::<T>(),
            lossy(json),
            lossy(&out)
        ),
    };
    assert_eq!(back, expected, "written as {:?}", lossy(&out));
    let again = serde_json::to_vec(&Json(&back)).expect("serializes");
    assert_eq!(lossy(&again), lossy(&out), "encoding is not stable");
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
