//! Who is calling: the development-mode authentication provider that trusts the ids clients
//! send (headers for REST, handshake fields for Socket.IO), as the system we replace did.
//! A verified-token provider will implement the same `AuthProvider` trait.

use livechat_core::store::{AuthProvider, Credentials};
use livechat_core::{ChatParticipant, ParticipantKind};

use super::ids::new_uuid;

/// Trusts the presented ids. Logged at start as development mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustHeaders;

/// A credential set this provider cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

impl AuthProvider for TrustHeaders {
    type Error = AuthError;

    fn authenticate(&self, c: &Credentials) -> Result<ChatParticipant, AuthError> {
        let kind = match c.role.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("customer") => ParticipantKind::Customer,
            Some("agent") => ParticipantKind::Agent,
            Some(other) => {
                return Err(AuthError(format!(
                    "unknown role {other:?} (customer or agent)"
                )))
            }
        };
        let id = match (kind, non_empty(&c.token), non_empty(&c.fingerprint)) {
            (_, Some(token), _) => token.to_owned(),
            (ParticipantKind::Customer, None, Some(fp)) => format!("anon-{fp}"),
            (ParticipantKind::Customer, None, None) => new_uuid(),
            _ => return Err(AuthError("agents must identify themselves (token)".into())),
        };
        let default_name = if kind == ParticipantKind::Agent {
            "Agent"
        } else {
            "Guest"
        };
        let name = non_empty(&c.display_name).unwrap_or(default_name);
        Ok(ChatParticipant::new(id, kind, name))
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(role: Option<&str>, token: Option<&str>, fp: Option<&str>) -> Credentials {
        Credentials {
            role: role.map(Into::into),
            token: token.map(Into::into),
            display_name: None,
            fingerprint: fp.map(Into::into),
        }
    }

    #[test]
    fn customers_fall_back_to_fingerprint_then_random() {
        let p = TrustHeaders
            .authenticate(&creds(None, Some("c1"), None))
            .unwrap();
        assert_eq!(
            (p.id.as_str(), p.kind, p.display_name.as_str()),
            ("c1", ParticipantKind::Customer, "Guest")
        );
        assert_eq!(
            TrustHeaders
                .authenticate(&creds(None, None, Some("fp")))
                .unwrap()
                .id,
            "anon-fp"
        );
        assert_eq!(
            TrustHeaders
                .authenticate(&creds(None, None, None))
                .unwrap()
                .id
                .len(),
            36
        );
    }

    #[test]
    fn agents_need_an_id() {
        assert_eq!(
            TrustHeaders
                .authenticate(&creds(Some("AGENT"), Some("a1"), None))
                .unwrap()
                .kind,
            ParticipantKind::Agent
        );
        assert!(TrustHeaders
            .authenticate(&creds(Some("agent"), None, None))
            .is_err());
        assert!(TrustHeaders
            .authenticate(&creds(Some("robot"), Some("x"), None))
            .is_err());
    }
}
