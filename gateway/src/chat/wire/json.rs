//! The JSON text of core values, both ways: [`Json`] wraps a value for writing (hand it to
//! `emit`, `ack.send`, `serde_json::to_string` ...), [`decode`] reads one from bytes, and
//! [`Decoded`] is the owned form for a serde field or `serde_json::from_*`.
//!
//! Why wrappers: `livechat-core` has no serde impls, and Rust's orphan rule keeps the gateway
//! from adding them to core's types; a local wrapper is where the contract's spelling attaches.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::wire_type::WireType;

/// A core value as the contract's JSON: `socket.emit("chat:message", &Json(&message))`.
#[derive(Debug)]
pub struct Json<'a, T>(pub &'a T);

impl<T> Clone for Json<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Json<'_, T> {}

impl<T: WireType> Serialize for Json<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.encode(serializer)
    }
}

/// A core value read from the contract's JSON (owned): `serde_json::from_str::<Decoded<T>>`,
/// or a field of a gateway struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T>(pub T);

impl<'de, T: WireType> Deserialize<'de> for Decoded<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::decode(deserializer).map(Decoded)
    }
}

/// Reads one `T` from JSON bytes: `decode::<ChatMessage>(bytes)`.
pub fn decode<T: WireType>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice::<Decoded<T>>(bytes).map(|d| d.0)
}
