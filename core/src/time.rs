//! Time as the domain sees it: milliseconds since the Unix epoch, given by the caller.
//!
//! The core never reads a clock; the gateway passes `now` into every transition. Formatting is
//! ISO-8601 UTC with milliseconds (`2025-11-13T11:36:03.351Z`), the one format instants are
//! shown in; parsing takes any RFC 3339 timestamp (offsets included) and rejects impossible dates.
//! Calendar arithmetic is `chrono`'s (proleptic Gregorian), used only as a pure converter
//! between milliseconds and calendar fields: nothing here reads its clock.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// An instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// `self + ms` milliseconds.
    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Parses an RFC 3339 timestamp: `2025-11-13T11:36:03.351Z`, `2025-11-13T11:36:03Z`,
    /// `2025-11-13T13:36:03+02:00` (converted to UTC). Fractional seconds of any length are
    /// truncated to milliseconds. `None` for impossible dates (`2024-02-31`, `2023-02-29`),
    /// out-of-range fields and anything that is not RFC 3339. Like RFC 3339 itself, this also
    /// takes a lower-case `t` / `z` and a space between date and time; years are 0000..=9999.
    /// A leap second (`23:59:60`) reads as the first millisecond of the next minute.
    pub fn parse_iso(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            // In UTC too (an offset or a leap second can carry 9999-12-31 or 0000-01-01 out
            // of range), so whatever is read is written back in the same form and reads again
            // (found by fuzzing: `9999-12-31T23:59:60.999Z`, `0000-01-01T00:00:00+01:00`).
            .map(|t| t.timestamp_millis())
            .filter(|&ms| {
                DateTime::<Utc>::from_timestamp_millis(ms)
                    .is_some_and(|t| (0..=9999).contains(&t.year()))
            })
            .map(Self)
    }
}

/// The layout: always three millisecond digits and `Z`.
const ISO_MILLIS_UTC: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // chrono covers about ±262,000 years, an i64 of milliseconds ±292 million; no real
        // instant gets that far, and printing the nearest representable instant keeps
        // `Display` infallible (`to_string` panics on a formatting error).
        let t = DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        });
        if (0..=9999).contains(&t.year()) {
            // The common case without chrono's format-string interpreter (measured: 1 % of a
            // busy server's CPU went to parsing the same format string per timestamp).
            return write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.timestamp_subsec_millis()
            );
        }
        write!(f, "{}", t.format(ISO_MILLIS_UTC))
    }
}

/// Formats a duration as ISO-8601 (`PT2M`, `PT1M30S`, `PT0S`), whole seconds.
pub fn iso_duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || (h == 0 && m == 0) {
        out.push_str(&format!("{s}S"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_iso_with_millis() {
        let t = Timestamp(1_763_033_763_351);
        assert_eq!(t.to_string(), "2025-11-13T11:36:03.351Z");
        assert_eq!(Timestamp::parse_iso("2025-11-13T11:36:03.351Z"), Some(t));
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::parse_iso("2024-02-29T23:59:59Z"),
            Some(Timestamp(1_709_251_199_000))
        );
        assert_eq!(Timestamp::parse_iso("2024-13-01T00:00:00Z"), None);
        assert_eq!(Timestamp::parse_iso("nonsense"), None);
    }

    #[test]
    fn round_trips_many_instants() {
        // ±10^13 ms is 1653..2286.
        for ms in (-10_000_000_000_000i64..10_000_000_000_000).step_by(7_777_777_777) {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse_iso(&t.to_string()), Some(t), "{t}");
        }
        // Every year the format has four digits for: 0000-01-01 ..= 9999-12-31T23:59:59.999.
        let (first, last) = (-62_167_219_200_000i64, 253_402_300_799_999i64);
        assert_eq!(Timestamp(first).to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(last).to_string(), "9999-12-31T23:59:59.999Z");
        for ms in (first..=last).step_by(77_777_777_777).chain([first, last]) {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse_iso(&t.to_string()), Some(t), "{t}");
        }
    }

    #[test]
    fn display_is_total() {
        // Far outside any real instant, but printing must not fail.
        assert!(Timestamp(i64::MAX).to_string().ends_with(".999Z"));
        assert!(Timestamp(i64::MIN).to_string().ends_with(".000Z"));
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rejects_impossible_dates_and_times() {
        for s in [
            "2024-02-31T00:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-10T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-01-01T23:59:61Z",
            "2024-01-01T00:00:00",
            "2024-01-01",
            "2024-01-01T00:00:00Zjunk",
            "2024-1-01T00:00:00Z",
            "",
            "nonsense",
        ] {
            assert_eq!(Timestamp::parse_iso(s), None, "{s}");
        }
    }

    #[test]
    fn leap_years() {
        let day = |s: &str| Timestamp::parse_iso(&format!("{s}T00:00:00Z"));
        assert_eq!(day("2024-02-29"), Some(Timestamp(1_709_164_800_000)));
        assert_eq!(day("2023-02-29"), None);
        assert_eq!(day("2000-02-29"), Some(Timestamp(951_782_400_000)));
        assert_eq!(day("1900-02-29"), None);
    }

    #[test]
    fn leap_second_rolls_into_the_next_minute() {
        assert_eq!(
            Timestamp::parse_iso("2016-12-31T23:59:60Z"),
            Timestamp::parse_iso("2017-01-01T00:00:00Z")
        );
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let utc = Timestamp::parse_iso("2025-11-13T11:36:03.351Z");
        assert!(utc.is_some());
        assert_eq!(Timestamp::parse_iso("2025-11-13T13:36:03.351+02:00"), utc);
        assert_eq!(Timestamp::parse_iso("2025-11-13T06:06:03.351-05:30"), utc);
        assert_eq!(Timestamp::parse_iso("2025-11-13T11:36:03.351+00:00"), utc);
    }

    #[test]
    fn fractional_seconds_are_truncated_to_millis() {
        let at = |frac: &str| Timestamp::parse_iso(&format!("2025-11-13T11:36:03{frac}Z"));
        let base = 1_763_033_763_000;
        assert_eq!(at(""), Some(Timestamp(base)));
        assert_eq!(at(".3"), Some(Timestamp(base + 300)));
        assert_eq!(at(".35"), Some(Timestamp(base + 350)));
        assert_eq!(at(".351"), Some(Timestamp(base + 351)));
        assert_eq!(at(".3519"), Some(Timestamp(base + 351)));
        assert_eq!(at(".351999999"), Some(Timestamp(base + 351)));
        assert_eq!(at(".3519999999999"), Some(Timestamp(base + 351)));
        assert_eq!(at("."), None);
        // Before the epoch, truncation is towards the earlier millisecond too.
        assert_eq!(
            Timestamp::parse_iso("1969-12-31T23:59:59.9999Z"),
            Some(Timestamp(-1))
        );
    }

    #[test]
    fn iso_durations() {
        assert_eq!(iso_duration(120_000), "PT2M");
        assert_eq!(iso_duration(90_500), "PT1M30S");
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(3_600_000), "PT1H");
        assert_eq!(iso_duration(-5), "PT0S");
    }

    #[test]
    fn what_is_read_is_written_back_in_a_form_that_reads_again() {
        // The fuzzer's inputs (fuzz/regressions/chat_payload-{1,2}.bin).
        for s in [
            "9999-12-31T23:59:60.999Z",
            "0000-01-01T00:00:00+01:00",
            "2025-11-13T13:36:03+02:00",
        ] {
            let t = Timestamp::parse_iso(s);
            assert!(
                t.is_none() || Timestamp::parse_iso(&t.unwrap().to_string()) == t,
                "{s}"
            );
        }
        assert_eq!(Timestamp::parse_iso("9999-12-31T23:59:60.999Z"), None);
        assert_eq!(Timestamp::parse_iso("0000-01-01T00:00:00+01:00"), None);
    }
}
