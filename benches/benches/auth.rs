//! Authentication and the per-socket rate limit, per call: what a REST request (every one) and a
//! Socket.IO connection (once) pay to prove who they are, by mode — development mode (ids
//! believed), HS256, RS256 from a PEM key, ES256 from a JWKS — and what every client event
//! pays for its token bucket. The keys are the tests' (`gateway/src/chat/auth/testdata`).

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use livechat_benches::{MEASUREMENT, SAMPLES, WARM_UP};
use livechat_core::store::Credentials;
use livechat_gateway::chat::auth::Auth;
use livechat_gateway::chat::config::RateConfig;
use livechat_gateway::chat::rate::TokenBucket;
use livechat_gateway::chat::ChatConfig;

const SECRET: &str = "a-benchmark-secret-of-32-bytes!!";

fn testdata(name: &str) -> String {
    format!(
        "{}/../gateway/src/chat/auth/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn auth(toml: &str) -> Auth {
    let cfg = ChatConfig::parse(toml, std::iter::empty()).expect("config");
    Auth::from_config(&cfg.security).expect("auth")
}

fn claims() -> serde_json::Value {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("bench setup")
        .as_secs()
        + 3600;
    serde_json::json!({"sub": "agent-42", "name": "Ann", "role": "agent", "exp": exp})
}

fn token(alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> Credentials {
    let mut h = Header::new(alg);
    h.kid = kid.map(Into::into);
    Credentials {
        token: Some(encode(&h, &claims(), key).expect("sign")),
        ..Credentials::default()
    }
}

fn authenticate(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth/authenticate");
    let trust = auth("");
    let creds = Credentials {
        role: Some("agent".into()),
        participant_id: Some("agent-42".into()),
        display_name: Some("Ann".into()),
        ..Credentials::default()
    };
    g.bench_function("trust_headers", |b| {
        b.iter(|| black_box(trust.authenticate(black_box(&creds)).expect("bench setup")))
    });
    let hs = auth(&format!("[chat.security.jwt]\nsecret = \"{SECRET}\"\n"));
    let creds = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
    );
    g.bench_function("jwt_hs256", |b| {
        b.iter(|| black_box(hs.authenticate(black_box(&creds)).expect("bench setup")))
    });
    let rs = auth(&format!(
        "[chat.security.jwt]\npublic-key-file = \"{}\"\n",
        testdata("rsa-public.pem")
    ));
    let rsa = std::fs::read(testdata("rsa-private.pem")).expect("rsa key");
    let creds = token(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(&rsa).expect("bench setup"),
        None,
    );
    g.bench_function("jwt_rs256_pem", |b| {
        b.iter(|| black_box(rs.authenticate(black_box(&creds)).expect("bench setup")))
    });
    let jwks = auth(&format!(
        "[chat.security.jwt]\njwks-file = \"{}\"\n",
        testdata("jwks.json")
    ));
    let ec = std::fs::read(testdata("ec-private.pem")).expect("ec key");
    let creds = token(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(&ec).expect("bench setup"),
        Some("ec-1"),
    );
    g.bench_function("jwt_es256_jwks", |b| {
        b.iter(|| black_box(jwks.authenticate(black_box(&creds)).expect("bench setup")))
    });
    g.finish();
}

fn token_bucket(c: &mut Criterion) {
    let cfg = RateConfig::default();
    let bucket = TokenBucket::new(&cfg, 0);
    let mut now = 0i64;
    c.bench_function("auth/token_bucket_take", |b| {
        b.iter(|| {
            // One event per 50 ms of simulated time: always allowed, always refilling.
            now += 50;
            black_box(bucket.take(&cfg, black_box(now)))
        })
    });
}

/// This file's benchmarks with the suite's time budget.
fn benches() {
    let mut c = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .configure_from_args();
    authenticate(&mut c);
    token_bucket(&mut c);
}
criterion_main!(benches);
