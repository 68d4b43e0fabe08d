//! Random ids that say which executor owns them.
//!
//! SO_REUSEPORT spreads the HTTP requests of one Engine.IO session over all executors, and
//! chat logic addresses sockets from whichever executor owns a conversation. Both need to find
//! the owner from the id alone, without a shared table: the first two characters encode the
//! owner executor, the other 18 are random (108 bits from the OS CSPRNG, so ids cannot be
//! guessed to hijack a session).

use std::cell::RefCell;

use crate::ExecutorId;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Length of every id made here.
pub const ID_LEN: usize = 20;
const RANDOM_LEN: usize = ID_LEN - 2;
const POOL: usize = RANDOM_LEN * 32;

/// Makes ids owned by one executor.
///
/// Lives on: the executor whose ids it makes (not `Sync`; one per executor).
#[derive(Debug)]
pub struct OwnedIds {
    owner: ExecutorId,
    pool: RefCell<(Vec<u8>, usize)>,
}

impl OwnedIds {
    /// An id maker for ids owned by `owner`.
    pub fn new(owner: ExecutorId) -> Self {
        Self {
            owner,
            pool: RefCell::new((vec![0; POOL], POOL)),
        }
    }

    /// A fresh id owned by this executor.
    pub fn next_id(&self) -> String {
        let mut out = String::with_capacity(ID_LEN);
        let e = self.owner.index();
        out.push(ALPHABET[(e >> 6) & 63] as char);
        out.push(ALPHABET[e & 63] as char);
        let mut pool = self.pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + RANDOM_LEN > bytes.len() {
            // The OS CSPRNG only fails on broken systems; refusing to hand out guessable
            // session ids is the right reaction there.
            #[allow(clippy::expect_used)]
            getrandom::fill(bytes).expect("OS random number generator failed");
            *used = 0;
        }
        for &b in &bytes[*used..*used + RANDOM_LEN] {
            out.push(ALPHABET[usize::from(b & 63)] as char);
        }
        *used += RANDOM_LEN;
        out
    }

    /// The executor that owns `id`, if `id` has the shape of an id made here.
    pub fn owner_of(id: &str) -> Option<ExecutorId> {
        let b = id.as_bytes();
        if b.len() != ID_LEN {
            return None;
        }
        let digit = |c: u8| ALPHABET.iter().position(|&a| a == c);
        let hi = digit(b[0])?;
        let lo = digit(b[1])?;
        if !b[2..].iter().all(|c| ALPHABET.contains(c)) {
            return None;
        }
        u16::try_from((hi << 6) | lo).ok().map(ExecutorId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_name_their_owner_and_do_not_repeat() {
        for e in [0u16, 1, 5, 63, 64, 4095] {
            let ids = OwnedIds::new(ExecutorId(e));
            let mut seen = HashSet::new();
            for _ in 0..1000 {
                let id = ids.next_id();
                assert_eq!(id.len(), ID_LEN);
                assert_eq!(OwnedIds::owner_of(&id), Some(ExecutorId(e)));
                assert!(seen.insert(id));
            }
        }
    }

    #[test]
    fn foreign_shapes_have_no_owner() {
        for bad in [
            "",
            "abc",
            "AAAAAAAAAAAAAAAAAAA",
            "AA!AAAAAAAAAAAAAAAAA",
            "ÄAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(OwnedIds::owner_of(bad), None, "{bad}");
        }
    }
}
