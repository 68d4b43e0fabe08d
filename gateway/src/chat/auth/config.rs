//! `chat.security.*`: how callers prove who they are.
//!
//! ```toml
//! [chat.security]
//! mode = "jwt"                      # or "trust-headers" (development only)
//! anonymous-customers = true        # customers without a token get a server-issued id + token
//! [chat.security.jwt]
//! public-key-file = "/etc/livechat/jwt.pem"   # or secret = "..." (HS256), jwks-file = "..."
//! issuer = "https://auth.example.com/"
//! audience = "livechat"
//! ```
//! Environment: `LIVECHAT_CHAT_SECURITY_MODE`, `LIVECHAT_CHAT_SECURITY_JWT_SECRET`,
//! `LIVECHAT_CHAT_SECURITY_JWT_PUBLIC_KEY_FILE`, … (`_JWT_` selects the `jwt` table).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::chat::config::duration;
use crate::error::GatewayError;

/// `chat.security.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityMode {
    /// Development: the ids clients present are believed (the system we replace).
    TrustHeaders,
    /// Production: identities come from verified JSON Web Tokens only.
    Jwt,
}

impl SecurityMode {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrustHeaders => "trust-headers",
            Self::Jwt => "jwt",
        }
    }
}

/// `chat.security.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecurityConfig {
    /// The mode; unset: `jwt` when a JWT key is configured, else `trust-headers`.
    pub mode: Option<SecurityMode>,
    /// Lets `trust-headers` listen on a non-loopback address (see [`SecurityConfig::check`]).
    pub allow_insecure: bool,
    /// `jwt` mode: customers without a token may start a conversation; they get a
    /// server-issued id and a token for it (`X-Participant-Token` / `auth:token`).
    pub anonymous_customers: bool,
    /// HS256 key of server-issued customer tokens (default: `jwt.secret`). Every node of a
    /// cluster needs the same one.
    pub anonymous_secret: Option<String>,
    /// Lifetime of a server-issued customer token.
    #[serde(deserialize_with = "duration")]
    pub anonymous_token_ttl: Duration,
    /// `chat.security.jwt.*`.
    pub jwt: JwtConfig,
    /// `chat.security.rate.*`.
    pub rate: RateConfig,
}

/// `chat.security.rate.*`: each socket's token bucket over the events it sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RateConfig {
    /// Sustained client events per second per socket.
    pub events_per_second: f64,
    /// Events a socket may send at once after being quiet.
    pub burst: u32,
    /// Refusals in a row after which the socket is disconnected (far over the limit).
    pub disconnect_after: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            events_per_second: 20.0,
            burst: 40,
            disconnect_after: 200,
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            mode: None,
            allow_insecure: false,
            anonymous_customers: false,
            anonymous_secret: None,
            anonymous_token_ttl: Duration::from_secs(24 * 3600),
            jwt: JwtConfig::default(),
            rate: RateConfig::default(),
        }
    }
}

/// `chat.security.jwt.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct JwtConfig {
    /// HS256 shared secret (env `LIVECHAT_CHAT_SECURITY_JWT_SECRET`).
    #[serde(deserialize_with = "text")]
    pub secret: Option<String>,
    /// PEM public key (RSA → RS256, EC P-256 → ES256).
    pub public_key_file: Option<PathBuf>,
    /// A local JWKS file (`{"keys":[...]}`); a token's `kid` picks the key.
    pub jwks_file: Option<PathBuf>,
    /// Accepted algorithms (default: what the configured keys sign with).
    #[serde(deserialize_with = "list")]
    pub algorithms: Vec<String>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` / `nbf`.
    #[serde(deserialize_with = "duration")]
    pub leeway: Duration,
    /// Claim holding the participant id.
    pub claim_id: String,
    /// Claim holding the display name.
    pub claim_name: String,
    /// Claim holding the role (`customer` | `agent` | `admin`, or an array of them).
    pub claim_role: String,
    /// Claim holding the conversation ids a customer token grants besides its own.
    pub claim_conversations: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            secret: None,
            public_key_file: None,
            jwks_file: None,
            algorithms: Vec::new(),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            claim_id: "sub".into(),
            claim_name: "name".into(),
            claim_role: "role".into(),
            claim_conversations: "conversations".into(),
        }
    }
}

impl JwtConfig {
    /// Whether any verification key is configured.
    pub fn has_key(&self) -> bool {
        self.secret.is_some() || self.public_key_file.is_some() || self.jwks_file.is_some()
    }
}

impl SecurityConfig {
    /// The effective mode (see [`SecurityConfig::mode`]).
    pub fn mode(&self) -> SecurityMode {
        self.mode.unwrap_or(if self.jwt.has_key() {
            SecurityMode::Jwt
        } else {
            SecurityMode::TrustHeaders
        })
    }

    /// The start-up rule: `trust-headers` believes any id a client writes, so it may listen only
    /// on loopback addresses (127.0.0.0/8, ::1) unless `allow-insecure = true`. An unspecified
    /// address (`0.0.0.0`, `::`) counts as non-loopback.
    pub fn check(&self, listen: &[SocketAddr]) -> Result<(), GatewayError> {
        if self.mode() != SecurityMode::TrustHeaders || self.allow_insecure {
            return Ok(());
        }
        match listen.iter().find(|a| !a.ip().is_loopback()) {
            None => Ok(()),
            Some(a) => Err(GatewayError::Config(format!(
                "chat.security.mode = trust-headers believes whatever participant id a client \
                 sends, so it listens only on loopback addresses; {a} is not one. Configure \
                 chat.security.jwt (see README, \"Security\"), or set \
                 chat.security.allow-insecure = true (LIVECHAT_CHAT_SECURITY_ALLOW_INSECURE=true) \
                 for a trusted network"
            ))),
        }
    }
}

/// A string, also from a number (an environment variable of digits arrives as one).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Text(String),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|r| match r {
        Raw::Int(n) => n.to_string(),
        Raw::Text(t) => t,
    }))
}

/// A list, also from one comma-separated string (the environment's spelling).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(v) => v,
        Raw::Text(t) => t
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatConfig;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<SecurityConfig, GatewayError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        ChatConfig::parse(text, env).map(|c| c.security)
    }

    #[test]
    fn unknown_modes_are_start_up_errors() {
        let err = parse("[chat.security]\nmode = \"trust-everyone\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        assert!(parse("", &[("LIVECHAT_CHAT_SECURITY_MODE", "none")]).is_err());
    }

    #[test]
    fn jwt_is_the_default_once_a_key_is_configured() {
        assert_eq!(parse("", &[]).unwrap().mode(), SecurityMode::TrustHeaders);
        let c = parse("", &[("LIVECHAT_CHAT_SECURITY_JWT_SECRET", "12345")]).unwrap();
        assert_eq!(c.mode(), SecurityMode::Jwt);
        assert_eq!(c.jwt.secret.as_deref(), Some("12345"));
        let c = parse(
            "",
            &[
                ("LIVECHAT_CHAT_SECURITY_JWT_ALGORITHMS", "RS256, ES256"),
                ("LIVECHAT_CHAT_SECURITY_JWT_CLAIM_ROLE", "roles"),
                ("LIVECHAT_CHAT_SECURITY_MODE", "trust-headers"),
            ],
        )
        .unwrap();
        assert_eq!(c.jwt.algorithms, ["RS256", "ES256"]);
        assert_eq!(c.jwt.claim_role, "roles");
        assert_eq!(c.mode(), SecurityMode::TrustHeaders);
    }

    #[test]
    fn trust_headers_listens_on_loopback_unless_allowed() {
        let loopback: Vec<SocketAddr> =
            vec!["127.0.0.1:80".parse().unwrap(), "[::1]:80".parse().unwrap()];
        let public: Vec<SocketAddr> = vec!["0.0.0.0:80".parse().unwrap()];
        let dev = parse("", &[]).unwrap();
        assert!(dev.check(&loopback).is_ok());
        let err = dev.check(&public).unwrap_err();
        assert!(err.to_string().contains("allow-insecure"), "{err}");
        let allowed = parse("", &[("LIVECHAT_CHAT_SECURITY_ALLOW_INSECURE", "true")]).unwrap();
        assert!(allowed.check(&public).is_ok());
        let jwt = parse("[chat.security.jwt]\nsecret = \"s\"\n", &[]).unwrap();
        assert!(jwt.check(&public).is_ok());
    }
}
