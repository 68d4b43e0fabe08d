//! `chat.security.mode = jwt`: identities from verified JSON Web Tokens (`jsonwebtoken`, ring).
//!
//! Keys are loaded once at start (a shared secret, a PEM public key, or a local JWKS file) and
//! held in memory, so verifying never does IO. Each key carries the algorithms it may verify
//! (its family's, narrowed by `chat.security.jwt.algorithms`): a token naming an algorithm of
//! another family, or `none`, matches no key and is refused — the RS256-public-key-as-HS256-
//! secret confusion cannot happen. `exp` is required; `nbf`, `iss` and `aud` are checked when
//! present / configured, with `leeway`.
//!
//! Anonymous customers (`chat.security.anonymous-customers`): a customer who presents no token
//! gets a fresh id and an HS256 token for it signed with `anonymous-secret` (`kid`
//! `livechat-anonymous`, issuer `livechat`, role customer), which this verifier accepts on
//! later requests and reconnects.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use livechat_core::store::{AuthProvider, Credentials};
use livechat_core::{ChatParticipant, Principal, Role, Timestamp};
use serde_json::{Map, Value};

use super::config::{JwtConfig, SecurityConfig};
use super::AuthError;
use crate::chat::ids::new_uuid;
use crate::error::GatewayError;

/// `kid` of the tokens this node issues to anonymous customers.
pub const ANONYMOUS_KID: &str = "livechat-anonymous";
/// `iss` of those tokens.
pub const ANONYMOUS_ISSUER: &str = "livechat";

/// One verification key with what it may verify.
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// Server-issued customer tokens.
struct Anonymous {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

/// Verifies tokens against the configured keys.
pub struct JwtVerifier {
    keys: Vec<Key>,
    anonymous: Option<Anonymous>,
    claims: JwtConfig,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("anonymous", &self.anonymous.is_some())
            .finish()
    }
}

fn config_error(msg: impl Into<String>) -> GatewayError {
    GatewayError::Config(msg.into())
}

impl JwtVerifier {
    /// Loads the keys `cfg` names; any unreadable key, unknown algorithm or contradiction is a
    /// start-up error.
    pub fn new(cfg: &SecurityConfig) -> Result<Self, GatewayError> {
        let j = &cfg.jwt;
        let allowed: Option<Vec<Algorithm>> = if j.algorithms.is_empty() {
            None
        } else {
            Some(
                j.algorithms
                    .iter()
                    .map(|a| {
                        Algorithm::from_str(a.trim()).map_err(|_| {
                            config_error(format!(
                                "chat.security.jwt.algorithms: {a:?} is not a supported algorithm \
                                 (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            )
        };
        // (kid, key, the algorithms its family and size suggest)
        let mut found: Vec<(Option<String>, DecodingKey, Vec<Algorithm>)> = Vec::new();
        if let Some(secret) = &j.secret {
            if secret.len() < 32 {
                tracing::warn!(
                    "chat.security.jwt.secret is shorter than 32 bytes: use a longer random secret"
                );
            }
            found.push((
                None,
                DecodingKey::from_secret(secret.as_bytes()),
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            ));
        }
        if let Some(path) = &j.public_key_file {
            let pem = std::fs::read(path).map_err(|e| {
                config_error(format!(
                    "chat.security.jwt.public-key-file {}: {e}",
                    path.display()
                ))
            })?;
            let key = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                (
                    k,
                    vec![
                        Algorithm::RS256,
                        Algorithm::RS384,
                        Algorithm::RS512,
                        Algorithm::PS256,
                        Algorithm::PS384,
                        Algorithm::PS512,
                    ],
                )
            } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
                (k, vec![Algorithm::ES256, Algorithm::ES384])
            } else if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
                (k, vec![Algorithm::EdDSA])
            } else {
                return Err(config_error(format!(
                    "chat.security.jwt.public-key-file {}: not a PEM RSA, EC or Ed25519 public key",
                    path.display()
                )));
            };
            found.push((None, key.0, key.1));
        }
        if let Some(path) = &j.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                config_error(format!(
                    "chat.security.jwt.jwks-file {}: {e}",
                    path.display()
                ))
            })?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                config_error(format!(
                    "chat.security.jwt.jwks-file {}: {e}",
                    path.display()
                ))
            })?;
            for jwk in &set.keys {
                let algs = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                    (Some(a), _) => vec![Algorithm::from_str(&a.to_string()).map_err(|_| {
                        config_error(format!(
                            "jwks key {:?}: algorithm {a:?} cannot verify tokens",
                            jwk.common.key_id
                        ))
                    })?],
                    (None, AlgorithmParameters::RSA(_)) => vec![Algorithm::RS256],
                    (None, AlgorithmParameters::EllipticCurve(p)) => match p.curve {
                        EllipticCurve::P384 => vec![Algorithm::ES384],
                        _ => vec![Algorithm::ES256],
                    },
                    (None, AlgorithmParameters::OctetKeyPair(_)) => vec![Algorithm::EdDSA],
                    (None, AlgorithmParameters::OctetKey(_)) => vec![Algorithm::HS256],
                };
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| config_error(format!("jwks key {:?}: {e}", jwk.common.key_id)))?;
                found.push((jwk.common.key_id.clone(), key, algs));
            }
        }
        let mut keys = Vec::new();
        for (kid, key, algs) in found {
            let algs: Vec<Algorithm> = match &allowed {
                None => algs.into_iter().take(1).collect(),
                Some(allowed) => algs.into_iter().filter(|a| allowed.contains(a)).collect(),
            };
            if algs.is_empty() {
                continue;
            }
            keys.push(Key {
                kid,
                key,
                validation: validation(&algs, j),
            });
        }
        let anonymous = if cfg.anonymous_customers {
            let secret = cfg
                .anonymous_secret
                .as_ref()
                .or(j.secret.as_ref())
                .ok_or_else(|| {
                    config_error(
                    "chat.security.anonymous-customers needs chat.security.anonymous-secret (or \
                     chat.security.jwt.secret) to sign the tokens it issues",
                )
                })?;
            let mut v = Validation::new(Algorithm::HS256);
            v.leeway = j.leeway.as_secs();
            v.validate_nbf = true;
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp", "iss", "sub"]);
            v.set_issuer(&[ANONYMOUS_ISSUER]);
            Some(Anonymous {
                encoding: EncodingKey::from_secret(secret.as_bytes()),
                decoding: DecodingKey::from_secret(secret.as_bytes()),
                validation: v,
                ttl: cfg.anonymous_token_ttl,
            })
        } else {
            None
        };
        if keys.is_empty() && anonymous.is_none() {
            return Err(config_error(
                "chat.security.mode = jwt needs a key: chat.security.jwt.secret (HS256), \
                 public-key-file (RS256/ES256) or jwks-file — and algorithms that match it",
            ));
        }
        Ok(Self {
            keys,
            anonymous,
            claims: j.clone(),
        })
    }

    /// The claims of `token`, verified.
    fn verify(&self, token: &str) -> Result<(Map<String, Value>, bool), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Unauthorized(format!("malformed token: {e}")))?;
        if let (Some(anon), Some(ANONYMOUS_KID)) = (&self.anonymous, header.kid.as_deref()) {
            return jsonwebtoken::decode::<Map<String, Value>>(
                token,
                &anon.decoding,
                &anon.validation,
            )
            .map(|d| (d.claims, true))
            .map_err(refusal);
        }
        let mut last = None;
        for k in &self.keys {
            if header.kid.is_some() && k.kid.is_some() && header.kid != k.kid {
                continue;
            }
            if !k.validation.algorithms.contains(&header.alg) {
                continue;
            }
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &k.validation) {
                Ok(d) => return Ok((d.claims, false)),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => refusal(e),
            None => AuthError::Unauthorized(format!(
                "no configured key verifies {:?} tokens{}",
                header.alg,
                header
                    .kid
                    .map(|k| format!(" with kid {k:?}"))
                    .unwrap_or_default()
            )),
        })
    }

    fn principal(
        &self,
        claims: &Map<String, Value>,
        anonymous: bool,
        c: &Credentials,
    ) -> Result<Principal, AuthError> {
        let names = &self.claims;
        let id_claim = if anonymous {
            "sub"
        } else {
            names.claim_id.as_str()
        };
        let id = match claims.get(id_claim) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(AuthError::Unauthorized(format!(
                    "the token has no {id_claim} claim"
                )))
            }
        };
        let role = if anonymous {
            Role::Customer
        } else {
            match claims.get(&names.claim_role) {
                None | Some(Value::Null) => Role::Customer,
                Some(Value::String(s)) => Role::parse(s).ok_or_else(|| {
                    AuthError::Unauthorized(format!(
                        "unknown role {s:?} in the token (customer, agent or admin)"
                    ))
                })?,
                // A list of roles (identity providers often give several): the highest known.
                Some(Value::Array(v)) => v
                    .iter()
                    .filter_map(|r| r.as_str().and_then(Role::parse))
                    .max()
                    .unwrap_or(Role::Customer),
                Some(other) => {
                    return Err(AuthError::Unauthorized(format!(
                        "the {} claim must be a string, not {other}",
                        names.claim_role
                    )))
                }
            }
        };
        let name = claims
            .get(&names.claim_name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            // The token names no one: the client's label is only a label.
            .or_else(|| c.display_name.clone().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| default_name(role).to_owned());
        let mut p = Principal::new(ChatParticipant::new(id, role.kind(), name), role);
        if role == Role::Customer && !anonymous {
            if let Some(Value::Array(v)) = claims.get(&names.claim_conversations) {
                p.conversations = v
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
            }
        }
        // A socket lives past its token's `exp` by the same leeway the check allowed.
        let leeway = self.claims.leeway.as_millis() as i64;
        p.expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .map(|s| Timestamp(s.saturating_mul(1000).saturating_add(leeway)));
        Ok(p)
    }
}

fn default_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "Guest",
        Role::Agent => "Agent",
        Role::Admin => "Admin",
    }
}

fn validation(algs: &[Algorithm], j: &JwtConfig) -> Validation {
    let mut v = Validation::new(algs[0]);
    v.algorithms = algs.to_vec();
    v.leeway = j.leeway.as_secs();
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(iss) = &j.issuer {
        v.set_issuer(&[iss]);
        required.push("iss");
    }
    match &j.audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
    v
}

/// A verification failure, said plainly (never echoing the token).
fn refusal(e: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind::*;
    AuthError::Unauthorized(
        match e.kind() {
            ExpiredSignature => "the token has expired",
            ImmatureSignature => "the token is not valid yet (nbf)",
            InvalidIssuer => "the token's issuer is not accepted",
            InvalidAudience => "the token's audience is not accepted",
            InvalidSignature => "the token's signature does not verify",
            InvalidAlgorithm | MissingAlgorithm => "the token's algorithm is not accepted",
            MissingRequiredClaim(c) => {
                return AuthError::Unauthorized(format!("the token has no {c} claim"))
            }
            _ => return AuthError::Unauthorized(format!("invalid token: {e}")),
        }
        .into(),
    )
}

impl AuthProvider for JwtVerifier {
    type Error = AuthError;

    fn authenticate(&self, c: &Credentials) -> Result<Principal, AuthError> {
        let token = c.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
        match token {
            Some(t) => {
                let (claims, anonymous) = self.verify(t)?;
                self.principal(&claims, anonymous, c)
            }
            None if self.anonymous.is_some()
                && c.starting
                && matches!(c.role.as_deref(), None | Some("customer")) =>
            {
                let name = c
                    .display_name
                    .clone()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| "Guest".into());
                Ok(Principal::new(
                    ChatParticipant::new(
                        new_uuid(),
                        livechat_core::ParticipantKind::Customer,
                        name,
                    ),
                    Role::Customer,
                ))
            }
            None => Err(AuthError::Unauthorized(
                "a token is required (Authorization: Bearer <token>, or auth.token on Socket.IO)"
                    .into(),
            )),
        }
    }

    fn issue(&self, p: &Principal) -> Option<String> {
        let anon = self.anonymous.as_ref()?;
        if p.role != Role::Customer {
            return None;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({
            "sub": p.participant.id,
            "name": p.participant.display_name,
            "role": "customer",
            "iss": ANONYMOUS_ISSUER,
            "iat": now,
            "exp": now + anon.ttl.as_secs(),
        });
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ANONYMOUS_KID.into());
        match jsonwebtoken::encode(&header, &claims, &anon.encoding) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign an anonymous customer token");
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
