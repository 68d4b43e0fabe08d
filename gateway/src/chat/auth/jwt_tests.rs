//! The verifier against every kind of bad token, with real keys (`testdata/`, made for these
//! tests): HS256, RS256 from a PEM, RS256 and ES256 from a JWKS, server-issued tokens.

use std::path::PathBuf;

use jsonwebtoken::{encode, EncodingKey};
use serde_json::json;

use super::*;
use crate::chat::ChatConfig;

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/chat/auth/testdata")
        .join(name)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn config(toml: &str) -> SecurityConfig {
    ChatConfig::parse(toml, std::iter::empty())
        .unwrap()
        .security
}

fn hs(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn rs(claims: serde_json::Value, kid: Option<&str>) -> String {
    let key = EncodingKey::from_rsa_pem(&std::fs::read(data("rsa-private.pem")).unwrap()).unwrap();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(Into::into);
    encode(&h, &claims, &key).unwrap()
}

fn es(claims: serde_json::Value, kid: Option<&str>) -> String {
    let key = EncodingKey::from_ec_pem(&std::fs::read(data("ec-private.pem")).unwrap()).unwrap();
    let mut h = Header::new(Algorithm::ES256);
    h.kid = kid.map(Into::into);
    encode(&h, &claims, &key).unwrap()
}

fn token(t: &str) -> Credentials {
    Credentials {
        token: Some(t.into()),
        ..Credentials::default()
    }
}

fn hs_verifier() -> JwtVerifier {
    JwtVerifier::new(&config(&format!(
        "[chat.security]\nmode = \"jwt\"\n[chat.security.jwt]\nsecret = \"{SECRET}\"\nissuer = \"https://auth.test\"\naudience = \"livechat\"\n"
    )))
    .unwrap()
}

fn good() -> serde_json::Value {
    json!({"sub": "a1", "name": "Ann", "role": "agent", "exp": now() + 600,
           "iss": "https://auth.test", "aud": "livechat"})
}

fn refused(v: &JwtVerifier, t: &str) -> String {
    match v.authenticate(&token(t)) {
        Err(AuthError::Unauthorized(m)) => m,
        other => panic!("expected unauthorized, got {other:?}"),
    }
}

#[test]
fn a_valid_token_gives_its_identity_and_headers_cannot_override_it() {
    let v = hs_verifier();
    let creds = Credentials {
        participant_id: Some("someone-else".into()),
        role: Some("customer".into()),
        display_name: Some("Mallory".into()),
        ..token(&hs(good()))
    };
    let p = v.authenticate(&creds).unwrap();
    assert_eq!(
        (p.id(), p.role, p.participant.display_name.as_str()),
        ("a1", Role::Agent, "Ann")
    );
    assert!(!p.bearer);
    assert!(p.expires_at.is_some());
}

#[test]
fn every_bad_token_kind_is_refused() {
    let v = hs_verifier();
    let with = |k: &str, val: serde_json::Value| {
        let mut c = good();
        c[k] = val;
        hs(c)
    };
    assert!(refused(&v, &with("exp", json!(now() - 3600))).contains("expired"));
    assert!(refused(&v, &with("nbf", json!(now() + 3600))).contains("not valid yet"));
    assert!(refused(&v, &with("iss", json!("https://evil.test"))).contains("issuer"));
    assert!(refused(&v, &with("aud", json!("other"))).contains("audience"));
    let mut no_exp = good();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(refused(&v, &hs(no_exp)).contains("exp"));
    // Signed with another secret.
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &good(),
        &EncodingKey::from_secret(b"not-the-secret-not-the-secret-xx"),
    )
    .unwrap();
    assert!(refused(&v, &forged).contains("signature"));
    // A tampered payload under the original signature.
    let t = hs(good());
    let parts: Vec<&str> = t.split('.').collect();
    let mut claims = good();
    claims["role"] = json!("admin");
    let body = base64_url(&serde_json::to_vec(&claims).unwrap());
    assert!(refused(&v, &format!("{}.{}.{}", parts[0], body, parts[2])).contains("signature"));
    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        base64_url(&serde_json::to_vec(&good()).unwrap())
    );
    assert!(refused(&v, &none).contains("malformed"));
    // Another algorithm family than the key's (RS256 against an HS256 secret).
    assert!(refused(&v, &rs(good(), None)).contains("no configured key"));
    assert!(refused(&v, "not-a-token").contains("malformed"));
    // No token at all.
    assert!(matches!(
        v.authenticate(&Credentials::default()),
        Err(AuthError::Unauthorized(_))
    ));
    // Unknown role and missing subject.
    assert!(refused(&v, &with("role", json!("root"))).contains("unknown role"));
    let mut no_sub = good();
    no_sub.as_object_mut().unwrap().remove("sub");
    assert!(refused(&v, &hs(no_sub)).contains("sub"));
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn rs256_from_a_pem_public_key() {
    let v = JwtVerifier::new(&config(&format!(
        "[chat.security.jwt]\npublic-key-file = \"{}\"\n",
        data("rsa-public.pem").display()
    )))
    .unwrap();
    let claims = json!({"sub": "c1", "exp": now() + 60, "conversations": ["x", "y"]});
    let p = v.authenticate(&token(&rs(claims.clone(), None))).unwrap();
    assert_eq!((p.id(), p.role), ("c1", Role::Customer));
    assert_eq!(p.conversations, ["x", "y"]);
    // The RSA public key used as an HMAC secret (the classic confusion) verifies nothing.
    let pem = std::fs::read(data("rsa-public.pem")).unwrap();
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&pem),
    )
    .unwrap();
    assert!(refused(&v, &confused).contains("no configured key"));
}

#[test]
fn a_jwks_file_picks_the_key_by_kid() {
    let v = JwtVerifier::new(&config(&format!(
        "[chat.security.jwt]\njwks-file = \"{}\"\nclaim-role = \"roles\"\n",
        data("jwks.json").display()
    )))
    .unwrap();
    let claims =
        json!({"sub": "boss", "roles": ["offline_access", "agent", "admin"], "exp": now() + 60});
    let p = v
        .authenticate(&token(&rs(claims.clone(), Some("rsa-1"))))
        .unwrap();
    assert_eq!(p.role, Role::Admin);
    let p = v
        .authenticate(&token(&es(claims.clone(), Some("ec-1"))))
        .unwrap();
    assert_eq!(p.id(), "boss");
    // The RSA key's signature under the EC key's id.
    assert!(v.authenticate(&token(&rs(claims, Some("ec-1")))).is_err());
}

#[test]
fn configured_algorithms_narrow_what_verifies() {
    let v = JwtVerifier::new(&config(&format!(
        "[chat.security.jwt]\njwks-file = \"{}\"\nalgorithms = [\"ES256\"]\n",
        data("jwks.json").display()
    )))
    .unwrap();
    let claims = json!({"sub": "c", "exp": now() + 60});
    assert!(v
        .authenticate(&token(&es(claims.clone(), Some("ec-1"))))
        .is_ok());
    assert!(v.authenticate(&token(&rs(claims, Some("rsa-1")))).is_err());
    assert!(JwtVerifier::new(&config(
        "[chat.security.jwt]\nsecret = \"s\"\nalgorithms = [\"none\"]\n"
    ))
    .is_err());
    assert!(JwtVerifier::new(&config("[chat.security]\nmode = \"jwt\"\n")).is_err());
    assert!(JwtVerifier::new(&config(
        "[chat.security.jwt]\npublic-key-file = \"/nonexistent.pem\"\n"
    ))
    .is_err());
}

#[test]
fn anonymous_customers_get_an_id_and_a_token_that_proves_it() {
    let v = JwtVerifier::new(&config(&format!(
        "[chat.security]\nanonymous-customers = true\n[chat.security.jwt]\nsecret = \"{SECRET}\"\n"
    )))
    .unwrap();
    let fresh = v
        .authenticate(&Credentials {
            role: Some("customer".into()),
            display_name: Some("Zoe".into()),
            starting: true,
            ..Credentials::default()
        })
        .unwrap();
    // Only when starting a conversation: elsewhere no token is no identity.
    assert!(v
        .authenticate(&Credentials {
            role: Some("customer".into()),
            ..Credentials::default()
        })
        .is_err());
    assert_eq!(
        (fresh.role, fresh.participant.display_name.as_str()),
        (Role::Customer, "Zoe")
    );
    let t = v.issue(&fresh).unwrap();
    let again = v.authenticate(&token(&t)).unwrap();
    assert_eq!((again.id(), again.role), (fresh.id(), Role::Customer));
    // No anonymous agents, and no tokens for them.
    assert!(v
        .authenticate(&Credentials {
            role: Some("agent".into()),
            starting: true,
            ..Credentials::default()
        })
        .is_err());
    assert!(v
        .issue(&Principal::new(
            ChatParticipant::new("a", livechat_core::ParticipantKind::Agent, "A"),
            Role::Agent
        ))
        .is_none());
    // A server-issued token cannot be upgraded: the role claim is ignored, the issuer checked.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(ANONYMOUS_KID.into());
    let claims = json!({"sub": "x", "role": "admin", "iss": ANONYMOUS_ISSUER, "exp": now() + 60});
    let forged_role = encode(&h, &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
    assert_eq!(
        v.authenticate(&token(&forged_role)).unwrap().role,
        Role::Customer
    );
    let wrong_iss = encode(
        &h,
        &json!({"sub": "x", "iss": "elsewhere", "exp": now() + 60}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert!(v.authenticate(&token(&wrong_iss)).is_err());
    // Without anonymous customers, a token is required.
    assert!(hs_verifier().issue(&fresh).is_none());
}
