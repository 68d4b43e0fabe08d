//! `#[serde(with = "field")]`: the adapter for a field whose type is a core type (or an
//! `Option` / `Vec` of one) inside a wire definition, so the field is written and read with its
//! own [`WireType`] spelling.
//!
//! An `Option` field also needs `#[serde(default)]`: with a `with` adapter serde reports a
//! missing field as an error instead of reading it as `None`.

use serde::{Deserializer, Serializer};

use super::wire_type::WireType;

/// Writes the field with its contract spelling.
pub fn serialize<T: WireType, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    value.encode(serializer)
}

/// Reads the field with its contract spelling.
pub fn deserialize<'de, T: WireType, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    T::decode(deserializer)
}
