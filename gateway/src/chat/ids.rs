//! Ids and the clock for the chat engine (the core gets both from here).
//!
//! Every id is a random (v4) UUID from a CSPRNG (`uuid`'s `fast-rng`: a ChaCha generator per
//! thread, seeded from the OS): conversation ids are capabilities (a customer rejoins by id
//! alone), so no id may come from a guessable generator, and there is no fallback to one.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use livechat_core::Timestamp;

/// Now, for the core's transitions.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// A monotonic stamp (nanoseconds since the process's first call), comparable across
/// executors: orders changes that fall in the same millisecond of [`now`] (which is all the
/// contract's timestamps resolve) and does not go back when the wall clock is adjusted.
pub fn activity_stamp() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A random (v4) UUID, hyphenated lower-case hex, from the CSPRNG (see the module comment).
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_v4_shape() {
        for u in [new_uuid(), new_uuid()] {
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
            assert_eq!(u.matches('-').count(), 4);
        }
        assert_ne!(new_uuid(), new_uuid());
    }
}
