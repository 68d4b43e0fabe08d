//! [`WireType`]: a type with a JSON spelling in the contract.
//!
//! The core types implement it next to their definitions (one file per type); here are the
//! containers the contract uses around them: `Option` (`null` when absent) and `Vec` (an
//! array), written exactly as serde writes `Option<T>` and `Vec<T>`.

use serde::{Deserialize, Deserializer, Serializer};

use super::json::{Decoded, Json};

/// A type the gateway writes and reads in the contract's JSON. Implemented by every
/// `livechat-core` type that crosses the wire, so `Json(&value)` serializes and
/// [`decode`](super::decode) reads it.
pub trait WireType: Sized {
    /// Writes `self` in the contract's spelling.
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// Reads a value in the contract's spelling.
    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

impl<T: WireType> WireType for Option<T> {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => serializer.serialize_some(&Json(value)),
            None => serializer.serialize_none(),
        }
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<Decoded<T>>::deserialize(deserializer)?.map(|d| d.0))
    }
}

impl<T: WireType> WireType for Vec<T> {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Json))
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<Decoded<T>>::deserialize(deserializer)?;
        Ok(items.into_iter().map(|d| d.0).collect())
    }
}
