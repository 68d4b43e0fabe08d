//! HTTP responses: a status, a few headers and a body, serialized in one buffer.

use crate::config::Cors;
use crate::error::GatewayError;

/// A response about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers (Content-Length is added when writing).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Close the connection after writing.
    pub close: bool,
}

impl Response {
    /// A response with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
            close: false,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body.into())
    }

    /// A plain text response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain; charset=UTF-8", body.into())
    }

    /// An empty response.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// 404 with the API's error shape.
    pub fn not_found(path: &str) -> Self {
        let msg = serde_json::to_string(&format!("no route for {path}")).unwrap_or_default();
        Self::json(404, format!(r#"{{"error":{msg},"code":"not_found"}}"#))
    }

    /// The answer for an error, with its status and body (see `GatewayError::status`).
    pub fn engine_error(err: &GatewayError) -> Self {
        let mut r = Self::json(err.status(), err.body());
        // After a framing error we cannot know where the next request starts.
        r.close = matches!(
            err,
            GatewayError::MalformedHttp(_)
                | GatewayError::HeadTooLarge
                | GatewayError::BodyTooLarge
        );
        r
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds CORS headers for a request from `origin`, when the policy allows it.
    pub fn with_cors(mut self, cors: &Cors, origin: Option<&str>) -> Self {
        if let Some(allowed) = origin.and_then(|o| cors.allow(o)) {
            let any = allowed == "*";
            self.headers
                .push(("Access-Control-Allow-Origin", allowed.to_owned()));
            // Browsers hide response headers from scripts unless listed.
            self.headers.push((
                "Access-Control-Expose-Headers",
                "X-Participant-Token, Retry-After, WWW-Authenticate".into(),
            ));
            if !any {
                self.headers
                    .push(("Access-Control-Allow-Credentials", "true".into()));
                self.headers.push(("Vary", "Origin".into()));
            }
        }
        self
    }

    /// The full response bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        self.write_to(&mut out);
        out
    }

    /// Appends the full response bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(self.body.len().to_string().as_bytes());
        if self.close {
            out.extend_from_slice(b"\r\nConnection: close");
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
    }
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_status_headers_body() {
        let r = Response::text(200, "ok");
        assert_eq!(
            r.to_bytes(),
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 2\r\n\r\nok"
        );
    }

    #[test]
    fn framing_errors_close_the_connection() {
        let r = Response::engine_error(&GatewayError::HeadTooLarge);
        assert_eq!(r.status, 431);
        assert!(r.close);
        assert!(String::from_utf8(r.to_bytes())
            .unwrap()
            .contains("Connection: close"));
    }

    #[test]
    fn cors_headers_only_for_allowed_origins() {
        let cors = Cors {
            origins: vec!["https://a.example".into()],
        };
        let r = Response::empty(204).with_cors(&cors, Some("https://a.example"));
        assert!(r
            .headers
            .contains(&("Access-Control-Allow-Origin", "https://a.example".into())));
        let r = Response::empty(204).with_cors(&cors, Some("https://evil.example"));
        assert!(r.headers.is_empty());
    }
}
