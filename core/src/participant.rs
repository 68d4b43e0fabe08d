//! Who takes part in a conversation: customers, agents and the system itself.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Free-form string-keyed metadata supplied by clients and hosts.
pub type Metadata = BTreeMap<String, serde_json::Value>;

/// The kind of a participant, canonically spelled `CUSTOMER`, `AGENT`, `SYSTEM`.
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
    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "CUSTOMER",
            Self::Agent => "AGENT",
            Self::System => "SYSTEM",
        }
    }

    /// The `role` metadata value (lower case, as clients send it in the handshake).
    pub fn role(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::System => "system",
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

    /// Accepts the canonical spelling in any case (`agent` and `AGENT` both come from real
    /// clients).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "CUSTOMER" => Ok(Self::Customer),
            "AGENT" => Ok(Self::Agent),
            "SYSTEM" => Ok(Self::System),
            _ => Err(ParticipantKindError(s.to_owned())),
        }
    }
}

/// A participant: id, kind, display name and metadata; [`ChatParticipant::new`] puts `role` in
/// the metadata and [`ChatParticipant::with_metadata`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatParticipant {
    /// Stable id (customer id, agent id, `system`).
    pub id: String,
    /// Customer, agent or system.
    pub kind: ParticipantKind,
    /// Name shown to the other side.
    pub display_name: String,
    /// Free-form metadata, with `role`.
    pub metadata: Metadata,
}

impl ChatParticipant {
    /// A participant with `role` metadata set from its kind.
    pub fn new(
        id: impl Into<String>,
        kind: ParticipantKind,
        display_name: impl Into<String>,
    ) -> Self {
        let mut metadata = Metadata::new();
        metadata.insert("role".into(), kind.role().into());
        Self {
            id: id.into(),
            kind,
            display_name: display_name.into(),
            metadata,
        }
    }

    /// Adds metadata (keeping `role`).
    pub fn with_metadata(mut self, extra: Metadata) -> Self {
        for (k, v) in extra {
            if k != "role" {
                self.metadata.insert(k, v);
            }
        }
        self
    }

    /// The backend itself: `{id:"system", type:SYSTEM, displayName:"System"}`.
    pub fn system() -> Self {
        Self::new("system", ParticipantKind::System, "System")
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

    #[test]
    fn role_is_always_set() {
        let mut extra = Metadata::new();
        extra.insert("role".into(), "admin".into());
        extra.insert("team".into(), "billing".into());
        let p = ChatParticipant::new("a1", ParticipantKind::Agent, "Ann").with_metadata(extra);
        assert_eq!(p.metadata["role"], "agent");
        assert_eq!(p.metadata["team"], "billing");
    }
}
