//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the REST API, `docs/openapi.json`
//! embedded at build time, so a binary serves the description of exactly the API it runs.
//!
//! The tests hold the description's paths and methods equal to the routers' tables
//! ([`super::api::ROUTES`], [`crate::http::conn::HTTP_ROUTES`]): a route added to either
//! without its description (or described but not routed) fails them. `scripts/schemathesis.sh`
//! checks the rest (parameters, bodies, statuses, headers) against a running server.

use crate::http::Response;

/// The description, as written in `docs/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

/// 200 with the description.
pub fn response() -> Response {
    Response::json(200, OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::OPENAPI_JSON;

    /// The methods an OpenAPI path item may have.
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn spec() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("docs/openapi.json is JSON")
    }

    /// Every `(path, METHOD)` the description has.
    fn described(spec: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let paths = spec["paths"].as_object().expect("paths is an object");
        for (path, item) in paths {
            let item = item.as_object().expect("a path item is an object");
            for m in METHODS.iter().filter(|m| item.contains_key(**m)) {
                out.insert((path.clone(), m.to_uppercase()));
            }
        }
        out
    }

    /// Every `(path, METHOD)` the routers answer (the Engine.IO transport aside).
    fn routed() -> BTreeSet<(String, String)> {
        let api = super::super::api::ROUTES
            .iter()
            .map(|&(path, _, methods)| (path, methods));
        let http = crate::http::conn::HTTP_ROUTES
            .iter()
            .map(|&(path, _, methods)| (path, methods));
        api.chain(http)
            .flat_map(|(path, methods)| methods.iter().map(move |m| (path.into(), (*m).into())))
            .collect()
    }

    #[test]
    fn openapi_describes_exactly_the_routes() {
        let spec = spec();
        assert!(
            spec["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1.")),
            "an OpenAPI 3.1 document"
        );
        let (described, routed) = (described(&spec), routed());
        let undescribed: Vec<_> = routed.difference(&described).collect();
        let unrouted: Vec<_> = described.difference(&routed).collect();
        assert!(
            undescribed.is_empty() && unrouted.is_empty(),
            "routed but not in docs/openapi.json: {undescribed:?}; \
             in docs/openapi.json but not routed: {unrouted:?}"
        );
    }

    /// Every `$ref` points at something, every operation has an id and answers, and every
    /// path parameter of a path is declared (what a client generator would trip over).
    #[test]
    fn openapi_references_and_parameters_resolve() {
        let spec = spec();
        let mut refs = Vec::new();
        collect_refs(&spec, &mut refs);
        for r in &refs {
            let pointer = r.strip_prefix('#').expect("local references only");
            assert!(spec.pointer(pointer).is_some(), "dangling $ref {r}");
        }
        let mut ids = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let id = op["operationId"].as_str().expect("an operationId");
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{m} {path} has no responses"
                );
                let declared = item["parameters"]
                    .as_array()
                    .into_iter()
                    .chain(op["parameters"].as_array())
                    .flatten()
                    .filter_map(|p| resolve(&spec, p)["name"].as_str().map(str::to_owned))
                    .collect::<BTreeSet<_>>();
                for name in path.split('/').filter_map(|s| s.strip_prefix('{')) {
                    let name = name.trim_end_matches('}');
                    assert!(declared.contains(name), "{m} {path}: {name} not declared");
                }
            }
        }
    }

    #[test]
    fn openapi_is_served_as_json() {
        let r = super::response();
        assert_eq!(r.status, 200);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "Content-Type" && v == "application/json"));
        assert_eq!(r.body, OPENAPI_JSON.as_bytes());
    }

    fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => spec.pointer(pointer).unwrap_or(&Value::Null),
            None => v,
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
