//! Why the domain refuses a command. The gateway maps each to an HTTP status and a Socket.IO
//! error code in one place (`gateway/src/chat/error.rs`).

/// A refused lifecycle command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The conversation is closed (410).
    #[error("conversation is closed")]
    Closed,
    /// Accept on a conversation that is not waiting in the queue (410).
    #[error("conversation is no longer queued")]
    NotQueued,
    /// Accept on a conversation another agent holds (409).
    #[error("conversation is assigned to another agent")]
    AssignedToOther(String),
    /// The agent already holds the maximum number of conversations (429).
    #[error("agent already holds {0} conversations")]
    AgentAtCapacity(usize),
    /// Empty or blank message (400).
    #[error("content must not be empty")]
    EmptyContent,
    /// Message longer than the limit (400).
    #[error("content is longer than {0} characters")]
    ContentTooLong(usize),
    /// Control characters other than line breaks and tabs (400).
    #[error("content must not contain control characters other than line breaks and tabs")]
    ControlCharacters,
    /// Clients may not send SYSTEM messages (400).
    #[error("SYSTEM messages are reserved for the server")]
    SystemReserved,
}
