//! `GET /readyz`: whether a balancer should send this node traffic. 200 only when the node is
//! not draining, every executor is running (its heartbeat is recent — see
//! `runtime::health`) and every configured backend answers (the application's own checks,
//! [`LocalApp::readiness`]: Redis, PostgreSQL, Kafka); 503 otherwise. The body names every
//! check either way, so the operator reading a probe failure sees which part failed:
//! `{"ready":false,"checks":{"draining":"ok","executors":"ok","redis":"ok","database":"..."}}`.
//!
//! `/healthz` is the other probe: the process answers at all (liveness). A node that is not
//! ready is still alive: restarting it would not bring a database back.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::Response;
use crate::runtime::{LocalApp, NodeHealth, ResponseFuture};

/// The `/readyz` answer, once the application's checks are in.
pub fn respond(health: Arc<NodeHealth>, app: Rc<dyn LocalApp>) -> ResponseFuture {
    Box::pin(async move {
        let mut checks: Vec<(&'static str, Result<(), String>)> = Vec::with_capacity(5);
        checks.push((
            "draining",
            if health.is_draining() {
                Err("the node is shutting down".into())
            } else {
                Ok(())
            },
        ));
        let silent = health.silent(Instant::now());
        checks.push((
            "executors",
            if silent.is_empty() {
                Ok(())
            } else {
                Err(silent
                    .iter()
                    .map(|(i, quiet)| {
                        format!("executor {i} has not run for {} ms", quiet.as_millis())
                    })
                    .collect::<Vec<_>>()
                    .join("; "))
            },
        ));
        checks.extend(app.readiness().await);
        answer(&checks)
    })
}

/// 200 or 503 with every check's outcome.
fn answer(checks: &[(&'static str, Result<(), String>)]) -> Response {
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let mut body = serde_json::Map::new();
    for (name, r) in checks {
        let v = match r {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.clone(),
        };
        body.insert((*name).to_owned(), serde_json::Value::String(v));
    }
    let json = serde_json::json!({ "ready": ready, "checks": body });
    Response::json(if ready { 200 } else { 503 }, json.to_string())
        .with_header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_failed_check_makes_503_and_every_check_is_named() {
        let ok = answer(&[("draining", Ok(())), ("redis", Ok(()))]);
        assert_eq!(ok.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&ok.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ready": true, "checks": {"draining": "ok", "redis": "ok"}})
        );
        let bad = answer(&[("draining", Ok(())), ("database", Err("timed out".into()))]);
        assert_eq!(bad.status, 503);
        let body: serde_json::Value = serde_json::from_slice(&bad.body).unwrap();
        assert_eq!(body["ready"], false);
        assert_eq!(body["checks"]["database"], "timed out");
    }
}
