//! Who is calling: the authentication provider chosen at start (`chat.security.mode`) behind
//! core's `AuthProvider` seam, and how a request or handshake becomes its `Credentials`.
//! What a caller may then do is core's `access` rules; the REST and socket handlers ask them.
//!
//! - [`config`]: the `chat.security` settings.
//! - [`trust`]: development mode (presented ids are believed).
//! - [`jwt`]: verified JSON Web Tokens, and server-issued anonymous customer tokens.
//!
//! Shared by every executor (`Arc`): providers hold only immutable keys, so verifying needs no
//! lock and no IO.

pub mod config;
pub mod jwt;
pub mod trust;

use std::sync::Arc;

use livechat_core::store::{AuthProvider, Credentials};
use livechat_core::Principal;

use self::config::{SecurityConfig, SecurityMode};
use crate::error::GatewayError;
use crate::http::RequestHead;

/// Why credentials prove nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No proof, or a proof that does not verify (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// Development mode: the presented fields do not make an identity (400).
    #[error("{0}")]
    Invalid(String),
}

impl From<AuthError> for GatewayError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized(m) => GatewayError::Unauthorized(m),
            AuthError::Invalid(m) => GatewayError::BadRequest(m),
        }
    }
}

/// A provider the gateway can share between executors.
pub type Provider = dyn AuthProvider<Error = AuthError> + Send + Sync;

/// The node's authentication.
#[derive(Clone)]
pub struct Auth {
    provider: Arc<Provider>,
    mode: &'static str,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("mode", &self.mode).finish()
    }
}

impl Auth {
    /// The provider `cfg` selects; unreadable keys and contradictions are start-up errors.
    pub fn from_config(cfg: &SecurityConfig) -> Result<Self, GatewayError> {
        Ok(match cfg.mode() {
            SecurityMode::TrustHeaders => Self {
                provider: Arc::new(trust::TrustHeaders),
                mode: SecurityMode::TrustHeaders.as_str(),
            },
            SecurityMode::Jwt => Self {
                provider: Arc::new(jwt::JwtVerifier::new(cfg)?),
                mode: SecurityMode::Jwt.as_str(),
            },
        })
    }

    /// A host's own provider.
    pub fn custom(provider: Arc<Provider>) -> Self {
        Self {
            provider,
            mode: "custom",
        }
    }

    /// `trust-headers`, `jwt` or `custom`.
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// Whether presented ids are believed (development mode).
    pub fn trusts_headers(&self) -> bool {
        self.mode == SecurityMode::TrustHeaders.as_str()
    }

    /// The caller `c` proves (its id and name within the shapes `chat::input` allows,
    /// whichever provider made them).
    pub fn authenticate(&self, c: &Credentials) -> Result<Principal, GatewayError> {
        let p = self.provider.authenticate(c)?;
        crate::chat::input::participant_id(p.id())?;
        crate::chat::input::display_name(&p.participant.display_name)?;
        Ok(p)
    }

    /// A token for a caller the provider made up (see `AuthProvider::issue`).
    pub fn issue(&self, p: &Principal) -> Option<String> {
        self.provider.issue(p)
    }
}

/// The REST credentials of `req`: `Authorization: Bearer` (else `X-Auth-Token`) as the token;
/// `X-Agent-Id` (agent routes) or `X-Participant-Id` (customer routes) — or `named`, a body's
/// `agentId` — as the presented id; `X-Participant-Name`; `X-Device-Fingerprint`.
pub fn rest_credentials(
    req: &RequestHead,
    role: &str,
    named: Option<String>,
    display_name: Option<String>,
) -> Credentials {
    let header = |name: &str| {
        req.header(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let bearer = header("authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim().to_owned())
    });
    let id_header = if role == "customer" {
        "x-participant-id"
    } else {
        "x-agent-id"
    };
    Credentials {
        role: Some(role.to_owned()),
        token: bearer.or_else(|| header("x-auth-token")),
        participant_id: named.or_else(|| header(id_header)),
        display_name: header("x-participant-name").or(display_name),
        fingerprint: header("x-device-fingerprint"),
        starting: false,
    }
}
