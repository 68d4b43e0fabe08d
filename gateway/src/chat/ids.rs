//! Ids and the clock for the chat engine (the core gets both from here).

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

/// A random (v4) UUID from the OS CSPRNG: conversation ids are capabilities (a customer
/// rejoins by id), so they must not be guessable.
pub fn secure_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Fall back to the fast generator rather than refusing to start a chat.
        b = fastrand::u128(..).to_le_bytes();
    }
    format_uuid(b)
}

/// A random (v4) UUID from a fast non-cryptographic generator (message and event ids).
pub fn fast_uuid() -> String {
    format_uuid(fastrand::u128(..).to_le_bytes())
}

fn format_uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(byte >> 4)] as char);
        s.push(HEX[usize::from(byte & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_v4_shape() {
        for u in [secure_uuid(), fast_uuid()] {
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
            assert_eq!(u.matches('-').count(), 4);
        }
        assert_ne!(secure_uuid(), secure_uuid());
    }
}
