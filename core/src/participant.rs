//! Who takes part in a conversation: customers, agents and the system itself.

use std::fmt;
use std::str::FromStr;

/// The kind of a participant, as the wire contract spells it (`CUSTOMER`, `AGENT`, `SYSTEM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantKind {
    /// The person who opened the chat.
    Customer,
    /// A support agent.
    Agent,
    /// The backend itself (close notices, queue timeouts).
    System,
}

/// A participant kind that is not one of the three known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown participant type {0:?} (expected CUSTOMER, AGENT or SYSTEM)")]
pub struct ParticipantKindError(pub String);

impl ParticipantKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "CUSTOMER",
            Self::Agent => "AGENT",
            Self::System => "SYSTEM",
        }
    }
}

impl fmt::Display for ParticipantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ParticipantKind {
    type Err = ParticipantKindError;

    /// Accepts the wire spelling in any case (`agent` and `AGENT` both come from real clients).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "CUSTOMER" => Ok(Self::Customer),
            "AGENT" => Ok(Self::Agent),
            "SYSTEM" => Ok(Self::System),
            _ => Err(ParticipantKindError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown() {
        for k in [
            ParticipantKind::Customer,
            ParticipantKind::Agent,
            ParticipantKind::System,
        ] {
            assert_eq!(k.as_str().parse::<ParticipantKind>(), Ok(k));
            assert_eq!(k.as_str().to_lowercase().parse::<ParticipantKind>(), Ok(k));
        }
        assert!("robot".parse::<ParticipantKind>().is_err());
    }
}
