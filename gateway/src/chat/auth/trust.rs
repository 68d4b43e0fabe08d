//! `chat.security.mode = trust-headers`: development mode. The ids clients present are believed
//! (headers for REST, handshake fields for Socket.IO), as the system we replace did — which is
//! why it listens only on loopback unless `chat.security.allow-insecure` (see
//! [`super::config::SecurityConfig::check`]).
//!
//! Authorization still applies to whoever the client says it is. A customer or agent who says
//! nothing at all is a *bearer* ([`Principal::bearer`]): the conversation id it holds is its
//! capability, as in the old contract where customer endpoints carried no identity and agent
//! messages and closes defaulted to the assigned agent. A bearer cannot accept, list or
//! connect a socket as an agent: those need someone to be.

use livechat_core::store::{AuthProvider, Credentials};
use livechat_core::{ChatParticipant, Principal, Role};

use super::AuthError;
use crate::chat::ids::new_uuid;

/// Believes the presented ids. Logged at start as development mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustHeaders;

impl AuthProvider for TrustHeaders {
    type Error = AuthError;

    fn authenticate(&self, c: &Credentials) -> Result<Principal, AuthError> {
        let role = match c.role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            None => Role::Customer,
            Some(r) => Role::parse(r).ok_or_else(|| {
                AuthError::Invalid(format!("unknown role {r:?} (customer, agent or admin)"))
            })?,
        };
        let named = non_empty(&c.participant_id).or(non_empty(&c.token));
        let (id, bearer) = match (role, named, non_empty(&c.fingerprint)) {
            (_, Some(id), _) => (id.to_owned(), false),
            (Role::Customer, None, Some(fp)) => (format!("anon-{fp}"), false),
            // Nobody named: the conversation id is the capability (see the module comment).
            (Role::Customer, None, None) | (Role::Agent, None, _) => (new_uuid(), true),
            (Role::Admin, None, _) => {
                return Err(AuthError::Invalid(
                    "admins must identify themselves (X-Agent-Id or the token field)".into(),
                ))
            }
        };
        let default_name = match role {
            Role::Customer => "Guest",
            Role::Agent => "Agent",
            Role::Admin => "Admin",
        };
        let name = non_empty(&c.display_name).unwrap_or(default_name);
        let mut p = Principal::new(ChatParticipant::new(id, role.kind(), name), role);
        p.bearer = bearer;
        Ok(p)
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use livechat_core::ParticipantKind;

    fn creds(role: Option<&str>, token: Option<&str>, fp: Option<&str>) -> Credentials {
        Credentials {
            role: role.map(Into::into),
            token: token.map(Into::into),
            fingerprint: fp.map(Into::into),
            ..Credentials::default()
        }
    }

    #[test]
    fn customers_fall_back_to_fingerprint_then_a_bearer() {
        let p = TrustHeaders
            .authenticate(&creds(None, Some("c1"), None))
            .unwrap();
        assert_eq!(
            (
                p.id(),
                p.participant.kind,
                p.participant.display_name.as_str(),
                p.bearer
            ),
            ("c1", ParticipantKind::Customer, "Guest", false)
        );
        let p = TrustHeaders
            .authenticate(&creds(None, None, Some("fp")))
            .unwrap();
        assert_eq!((p.id(), p.bearer), ("anon-fp", false));
        let p = TrustHeaders.authenticate(&creds(None, None, None)).unwrap();
        assert_eq!((p.id().len(), p.bearer), (36, true));
        // A named id wins over the token field.
        let p = TrustHeaders
            .authenticate(&Credentials {
                participant_id: Some("named".into()),
                ..creds(None, Some("t"), None)
            })
            .unwrap();
        assert_eq!(p.id(), "named");
    }

    #[test]
    fn unnamed_agents_are_bearers_admins_need_an_id_and_roles_are_known() {
        let p = TrustHeaders
            .authenticate(&creds(Some("AGENT"), Some("a1"), None))
            .unwrap();
        assert_eq!(
            (p.role, p.participant.kind),
            (Role::Agent, ParticipantKind::Agent)
        );
        assert_eq!(
            TrustHeaders
                .authenticate(&creds(Some("admin"), Some("boss"), None))
                .unwrap()
                .role,
            Role::Admin
        );
        let unnamed = TrustHeaders
            .authenticate(&creds(Some("agent"), None, Some("fp")))
            .unwrap();
        assert!(unnamed.bearer && unnamed.role == Role::Agent);
        assert!(TrustHeaders
            .authenticate(&creds(Some("admin"), None, None))
            .is_err());
        assert!(TrustHeaders
            .authenticate(&creds(Some("robot"), Some("x"), None))
            .is_err());
    }
}
