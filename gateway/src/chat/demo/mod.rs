//! The built-in demo (`chat.demo.enabled`): a customer chat widget at `/`, an agent console at
//! `/agent`, and their files under `/demo/{file}`, so a fresh `livechat serve` shows the whole
//! flow in a browser within its first five minutes.
//!
//! The pages are plain HTML, CSS and JavaScript under `assets/`, compiled into the binary with
//! `include_bytes!`: no build step, no npm, no third-party code. The browser side talks to the
//! server through a small Socket.IO v5 / Engine.IO v4 client written for the demo
//! (`assets/sio.js`, WebSocket transport only, acks, ping/pong, reconnect with backoff) rather
//! than the npm `socket.io-client`, so the binary carries nothing it did not write and nothing
//! needs bundling. The pages identify people the development way (`trust-headers`: the ids
//! they present are believed); under `jwt` the demo is off unless enabled explicitly, and then
//! the pages say they cannot sign in.
//!
//! These routes are not part of the REST contract: [`is_demo_path`] is checked by
//! `api::Api` before its route table, so the table (and anything generated from it) stays the
//! contract's alone.

use serde::Deserialize;

use super::config::{ChatConfig, SecurityConfig, SecurityMode};
use super::ids::now;
use crate::error::GatewayError;
use crate::http::{RequestHead, Response};

/// `chat.demo.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct DemoConfig {
    /// Serve the demo pages; unset: on, except under `chat.security.mode = "jwt"` (the pages
    /// sign in with development-mode ids, which a production server does not believe).
    pub enabled: Option<bool>,
}

impl DemoConfig {
    /// Whether the demo is served under `security`.
    pub fn enabled(&self, security: &SecurityConfig) -> bool {
        self.enabled.unwrap_or(security.mode() != SecurityMode::Jwt)
    }
}

/// One file of the demo.
struct Asset {
    /// Request path.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Content hash, the ETag: a rebuilt binary with a changed file gets a new one, an
    /// unchanged file keeps its tag across builds (so browsers keep their copy).
    hash: u64,
}

/// FNV-1a, evaluated at compile time over each embedded file.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $file)),
            hash: fnv1a(include_bytes!(concat!("assets/", $file))),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("/", "customer.html", HTML),
    asset!("/agent", "agent.html", HTML),
    asset!("/demo/demo.css", "demo.css", "text/css; charset=utf-8"),
    asset!("/demo/sio.js", "sio.js", JS),
    asset!("/demo/ui.js", "ui.js", JS),
    asset!("/demo/customer.js", "customer.js", JS),
    asset!("/demo/agent.js", "agent.js", JS),
];

/// Whether `path` belongs to the demo (whether or not it is enabled, and whether or not the
/// file exists: an unknown `/demo/...` is the demo's 404).
pub fn is_demo_path(path: &str) -> bool {
    path == "/" || path == "/agent" || path.starts_with("/demo/")
}

/// Answers a demo request: the file with its type and caching headers, 304 when the browser's
/// copy is current, 404 when the demo is off or there is no such file.
pub fn serve(cfg: &ChatConfig, req: &RequestHead) -> Response {
    let asset = ASSETS.iter().find(|a| a.path == req.path);
    let Some(asset) = asset.filter(|_| cfg.demo.enabled(&cfg.security)) else {
        return Response::not_found(&req.path);
    };
    if req.method != http::Method::GET {
        let e = GatewayError::MethodNotAllowed(format!(
            "method {} not allowed on {}",
            req.method, req.path
        ));
        return Response::json(e.status(), e.api_body(now())).with_header("Allow", "GET");
    }
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = req
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    // `no-cache`: the paths are not versioned, so browsers revalidate (a cheap 304) and never
    // run a stale page against a newer server.
    let mut resp = if fresh {
        Response::empty(304)
    } else {
        Response::new(200, asset.content_type, asset.body.to_vec())
    };
    resp = resp
        .with_header("ETag", etag)
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Content-Type-Options", "nosniff");
    if asset.content_type == HTML {
        // Everything the pages use is their own: no inline script, no other origin.
        resp = resp
            .with_header(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                 base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
            )
            .with_header("Referrer-Policy", "no-referrer");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_head;

    fn get(cfg: &ChatConfig, path: &str, extra: &str) -> Response {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        let (head, _) = parse_head(raw.as_bytes()).unwrap().unwrap();
        serve(cfg, &head)
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn config(toml: &str) -> ChatConfig {
        ChatConfig::parse(toml, std::iter::empty()).unwrap()
    }

    #[test]
    fn pages_and_files_serve_with_their_content_types() {
        let cfg = config("");
        for (path, ty) in [
            ("/", HTML),
            ("/agent", HTML),
            ("/demo/demo.css", "text/css; charset=utf-8"),
            ("/demo/sio.js", JS),
            ("/demo/ui.js", JS),
            ("/demo/customer.js", JS),
            ("/demo/agent.js", JS),
        ] {
            assert!(is_demo_path(path), "{path}");
            let r = get(&cfg, path, "");
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(header(&r, "content-type"), Some(ty), "{path}");
            assert!(!r.body.is_empty(), "{path}");
            assert!(header(&r, "etag").is_some_and(|t| t.len() == 18), "{path}");
        }
        assert!(String::from_utf8_lossy(&get(&cfg, "/", "").body).contains("/demo/customer.js"));
        assert!(header(&get(&cfg, "/", ""), "content-security-policy").is_some());
    }

    #[test]
    fn a_current_copy_gets_304_and_unknown_files_404() {
        let cfg = config("");
        let tag = header(&get(&cfg, "/demo/sio.js", ""), "etag")
            .unwrap()
            .to_owned();
        let again = get(&cfg, "/demo/sio.js", &format!("If-None-Match: {tag}\r\n"));
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        let stale = get(&cfg, "/demo/sio.js", "If-None-Match: \"0\"\r\n");
        assert_eq!(stale.status, 200);
        assert_eq!(get(&cfg, "/demo/nope.js", "").status, 404);
        assert!(!is_demo_path("/api/conversations") && !is_demo_path("/agents"));
    }

    #[test]
    fn only_get() {
        let raw = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        let (head, _) = parse_head(raw.as_bytes()).unwrap().unwrap();
        let r = serve(&config(""), &head);
        assert_eq!(r.status, 405);
        assert_eq!(header(&r, "allow"), Some("GET"));
    }

    #[test]
    fn the_setting_turns_it_off_and_jwt_defaults_to_off() {
        let off = config("[chat.demo]\nenabled = false\n");
        assert_eq!(get(&off, "/", "").status, 404);
        assert_eq!(get(&off, "/demo/sio.js", "").status, 404);
        let env = [("LIVECHAT_CHAT_DEMO_ENABLED".to_owned(), "false".to_owned())];
        let off = ChatConfig::parse("", env.into_iter()).unwrap();
        assert_eq!(get(&off, "/agent", "").status, 404);
        let jwt = config("[chat.security.jwt]\nsecret = \"s\"\n");
        assert_eq!(get(&jwt, "/", "").status, 404);
        let jwt_on = config("[chat.demo]\nenabled = true\n[chat.security.jwt]\nsecret = \"s\"\n");
        assert_eq!(get(&jwt_on, "/", "").status, 200);
    }
}
