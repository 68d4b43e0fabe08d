//! `Timestamp` in JSON: a string, ISO-8601 UTC with exactly three millisecond digits
//! (`2025-11-13T11:36:03.351Z`, core's `Display`); read from any RFC 3339 timestamp
//! (`Timestamp::parse_iso`: offsets converted to UTC, impossible dates refused).

use std::borrow::Cow;

use livechat_core::Timestamp;
use serde::{Deserialize, Deserializer, Serializer};

use super::wire_type::WireType;

/// Writes `t` as its ISO-8601 string.
pub fn serialize<S: Serializer>(t: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(t)
}

/// Reads an RFC 3339 string.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
    let s = <Cow<'de, str>>::deserialize(deserializer)?;
    Timestamp::parse_iso(&s)
        .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
}

impl WireType for Timestamp {
    fn encode<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self, serializer)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use livechat_core::Timestamp;

    use crate::chat::wire::{decode, Json};

    #[test]
    fn written_with_millis_and_z() {
        let t = Timestamp(1_763_033_763_351);
        assert_eq!(
            serde_json::to_string(&Json(&t)).unwrap(),
            "\"2025-11-13T11:36:03.351Z\""
        );
        assert_eq!(
            serde_json::to_string(&Json(&Timestamp(0))).unwrap(),
            "\"1970-01-01T00:00:00.000Z\""
        );
        assert_eq!(
            serde_json::to_string(&Json(&Timestamp(-1))).unwrap(),
            "\"1969-12-31T23:59:59.999Z\""
        );
    }

    #[test]
    fn round_trips_through_json() {
        // ±10^13 ms is 1653..2286.
        for ms in (-10_000_000_000_000i64..10_000_000_000_000).step_by(77_777_777_777) {
            let t = Timestamp(ms);
            let json = serde_json::to_vec(&Json(&t)).unwrap();
            assert_eq!(decode::<Timestamp>(&json).unwrap(), t, "{t}");
        }
    }

    #[test]
    fn reads_any_rfc3339_and_refuses_the_rest() {
        let utc = Timestamp(1_763_033_763_351);
        for s in [
            "\"2025-11-13T11:36:03.351Z\"",
            "\"2025-11-13T13:36:03.351+02:00\"",
            "\"2025-11-13t11:36:03.3519z\"",
        ] {
            assert_eq!(decode::<Timestamp>(s.as_bytes()).unwrap(), utc, "{s}");
        }
        let e = decode::<Timestamp>(b"\"2024-02-31T00:00:00Z\"").unwrap_err();
        assert!(
            e.to_string().contains("expected an RFC 3339 timestamp"),
            "{e}"
        );
        let e = decode::<Timestamp>(b"12").unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
        // Escaped strings (not borrowable from the input) read the same.
        assert_eq!(
            decode::<Timestamp>(b"\"2025-11-13T11:36:03.351\\u005A\"").unwrap(),
            utc
        );
    }
}
