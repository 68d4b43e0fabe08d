//! Errors of the shard router.

use crate::ExecutorId;

/// Everything that can go wrong when routing to another executor.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    /// The destination's mailbox is full: backpressure, the caller answers 503 / an error.
    #[error("mailbox of {0} is full")]
    Full(ExecutorId),
    /// The destination executor has stopped (shutdown in progress).
    #[error("executor {0} has stopped")]
    Disconnected(ExecutorId),
    /// An id was asked to route to an executor this node does not have.
    #[error("no executor {0} on this node")]
    NoSuchExecutor(usize),
    /// The executors could not be started.
    #[error("cannot start executor: {0}")]
    Launch(String),
}
