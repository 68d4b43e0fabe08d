//! HTTP/1.1 request heads and bodies, parsed from byte slices (no sockets).
//!
//! The connection loop feeds whatever it has read; these functions say "need more", "here is
//! the request" or which 4xx it deserves.

use crate::error::GatewayError;

/// Largest request head accepted (431 beyond).
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// How the body of a request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Method.
    pub method: http::Method,
    /// Path without the query.
    pub path: String,
    /// Query string without `?` (empty when none).
    pub query: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Body framing.
    pub body: BodyFraming,
}

impl RequestHead {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether this is a WebSocket upgrade request.
    pub fn is_websocket_upgrade(&self) -> bool {
        let has_token = |name: &str, token: &str| {
            self.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        self.method == http::Method::GET
            && has_token("upgrade", "websocket")
            && has_token("connection", "upgrade")
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)`: incomplete, read more.
/// On success returns the head and the number of bytes it took.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, GatewayError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(GatewayError::HeadTooLarge),
        Err(_) => return Err(GatewayError::MalformedHttp("invalid request head")),
    };
    let len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() >= MAX_HEAD => {
            return Err(GatewayError::HeadTooLarge)
        }
        httparse::Status::Partial => return Ok(None),
    };
    if len > MAX_HEAD {
        return Err(GatewayError::HeadTooLarge);
    }
    let method = req
        .method
        .and_then(|m| http::Method::from_bytes(m.as_bytes()).ok())
        .ok_or(GatewayError::MalformedHttp("invalid method"))?;
    let target = req
        .path
        .ok_or(GatewayError::MalformedHttp("missing path"))?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let version = req.version.unwrap_or(1);
    let mut map = http::HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = http::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| GatewayError::MalformedHttp("invalid header name"))?;
        let value = http::HeaderValue::from_bytes(h.value)
            .map_err(|_| GatewayError::MalformedHttp("invalid header value"))?;
        map.append(name, value);
    }
    let connection = map
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let keep_alive = if version == 0 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let chunked = map
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("chunked"))
        });
    let lengths: Vec<_> = map.get_all(http::header::CONTENT_LENGTH).iter().collect();
    let body = if chunked {
        if !lengths.is_empty() {
            // Both framings at once is the classic request-smuggling shape: refuse it.
            return Err(GatewayError::MalformedHttp(
                "both Content-Length and chunked",
            ));
        }
        BodyFraming::Chunked
    } else {
        match lengths.as_slice() {
            [] => BodyFraming::None,
            [one] => {
                let n = one
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<usize>().ok())
                    .ok_or(GatewayError::MalformedHttp("invalid Content-Length"))?;
                if n == 0 {
                    BodyFraming::None
                } else {
                    BodyFraming::Length(n)
                }
            }
            _ => {
                return Err(GatewayError::MalformedHttp(
                    "several Content-Length headers",
                ))
            }
        }
    };
    Ok(Some((
        RequestHead {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers: map,
            keep_alive,
            body,
        },
        len,
    )))
}

/// Decodes a complete chunked body at the start of `buf`. `Ok(None)`: incomplete. On success
/// returns the body and the bytes consumed (trailers included). Bodies over `limit` are refused.
pub fn decode_chunked(buf: &[u8], limit: usize) -> Result<Option<(Vec<u8>, usize)>, GatewayError> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(x)) => x,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(GatewayError::MalformedHttp("invalid chunk size")),
        };
        let size = usize::try_from(size).map_err(|_| GatewayError::BodyTooLarge)?;
        if body.len().saturating_add(size) > limit {
            return Err(GatewayError::BodyTooLarge);
        }
        pos += size_len;
        if size == 0 {
            // Trailers: lines until an empty one.
            loop {
                let rest = &buf[pos..];
                let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        if &buf[pos..pos + 2] != b"\r\n" {
            return Err(GatewayError::MalformedHttp("chunk not followed by CRLF"));
        }
        pos += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get_with_query() {
        let raw = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\nrest";
        let (head, n) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.method, http::Method::GET);
        assert_eq!(head.path, "/socket.io/");
        assert_eq!(head.query, "EIO=4&transport=polling");
        assert!(head.keep_alive);
        assert_eq!(head.body, BodyFraming::None);
        assert_eq!(&raw[n..], b"rest");
    }

    #[test]
    fn incomplete_then_too_large() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost:").unwrap().is_none());
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert!(matches!(parse_head(&big), Err(GatewayError::HeadTooLarge)));
    }

    #[test]
    fn malformed_heads_are_refused() {
        for bad in [
            &b"\x00\x01\x02 garbage\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad), Err(GatewayError::MalformedHttp(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keep_alive_rules() {
        let h = |raw: &[u8]| parse_head(raw).unwrap().unwrap().0.keep_alive;
        assert!(!h(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!h(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(h(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn websocket_upgrade_detection() {
        let raw = b"GET /socket.io/ HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\r\n";
        assert!(parse_head(raw).unwrap().unwrap().0.is_websocket_upgrade());
    }

    #[test]
    fn chunked_bodies() {
        let raw = b"4\r\n4hel\r\n2\r\nlo\r\n0\r\n\r\nNEXT";
        let (body, n) = decode_chunked(raw, 100).unwrap().unwrap();
        assert_eq!(body, b"4hello");
        assert_eq!(&raw[n..], b"NEXT");
        assert!(decode_chunked(&raw[..8], 100).unwrap().is_none());
        assert!(matches!(
            decode_chunked(raw, 3),
            Err(GatewayError::BodyTooLarge)
        ));
        assert!(matches!(
            decode_chunked(b"zz\r\n", 10),
            Err(GatewayError::MalformedHttp(_))
        ));
        assert!(matches!(
            decode_chunked(b"1\r\nab\r\n", 10),
            Err(GatewayError::MalformedHttp(_))
        ));
    }
}
