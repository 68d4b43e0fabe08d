//! The opaque id of one executor (one pinned thread, one core).

use std::fmt;

/// Identifies one executor of this node. Only `livechat-shard-router` creates these; other
/// crates compare, hash, log and route by them but never do arithmetic on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutorId(pub(crate) u16);

impl ExecutorId {
    /// The index of this executor in `0..count`; meant for logs, metrics and test hooks.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for ExecutorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ex{}", self.0)
    }
}
