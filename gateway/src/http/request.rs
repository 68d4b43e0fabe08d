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
///
/// Framing is as strict as RFC 9112 wherever a proxy in front of us could read the same bytes
/// differently (request smuggling): see [`check_line_endings`] and [`body_framing`].
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, GatewayError> {
    // httparse accepts bare LF line endings and we must not (a proxy that only splits on CRLF
    // would see one header where we see two), so the raw bytes are checked first — also on a
    // partial head, so a bad line is refused as soon as it ends.
    // Only the head: what follows its empty line is body (or the next request).
    let scan = &buf[..buf.len().min(MAX_HEAD + 4)];
    let head_end = scan
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(scan.len(), |i| i + 4);
    check_line_endings(&scan[..head_end])?;
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
    let body = body_framing(&map, version)?;
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

/// Refuses a bare LF (`\n` not preceded by `\r`), a bare CR (`\r` not followed by `\n`) and
/// obs-fold (a line starting with SP or HTAB: a continuation some parsers join to the previous
/// header and others read as a header of its own). RFC 9112 lets a server accept the first
/// and replace the last with a space; both leave room for a proxy to disagree with us, so
/// both are a 400.
pub fn check_line_endings(head: &[u8]) -> Result<(), GatewayError> {
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\n' if i == 0 || head[i - 1] != b'\r' => {
                return Err(GatewayError::MalformedHttp("bare LF in request head"))
            }
            b'\r' if head.get(i + 1).is_some_and(|&n| n != b'\n') => {
                return Err(GatewayError::MalformedHttp("bare CR in request head"))
            }
            // A line (not the empty one ending the head) that starts with whitespace.
            b'\n' if head.get(i + 1).is_some_and(|&n| n == b' ' || n == b'\t') => {
                return Err(GatewayError::MalformedHttp("obs-fold in request head"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The body framing of a head, refusing every shape two parsers could disagree on:
///
/// - `Content-Length` must appear once, as 1*DIGIT (no sign, no inner whitespace, no comma
///   list). Repeated headers are refused even when identical: RFC 9112 §6.3 allows accepting
///   identical copies, but refusing is the simpler rule and no client we serve sends two.
/// - `Transfer-Encoding` must appear once and be exactly `chunked` (any case): we decode no
///   other coding, and a list (`gzip, chunked`, `chunked, identity`) or a repetition is where
///   front ends differ. It is refused in HTTP/1.0 requests (§6.1: such framing is faulty).
/// - Both at once is the classic smuggling shape: refused.
pub fn body_framing(headers: &http::HeaderMap, version: u8) -> Result<BodyFraming, GatewayError> {
    let mut te = headers.get_all(http::header::TRANSFER_ENCODING).iter();
    let mut cl = headers.get_all(http::header::CONTENT_LENGTH).iter();
    match (te.next(), cl.next()) {
        (None, None) => Ok(BodyFraming::None),
        (Some(_), Some(_)) => Err(GatewayError::MalformedHttp(
            "both Content-Length and Transfer-Encoding",
        )),
        (Some(coding), None) => {
            if te.next().is_some() {
                return Err(GatewayError::MalformedHttp(
                    "several Transfer-Encoding headers",
                ));
            }
            if version == 0 {
                return Err(GatewayError::MalformedHttp(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
            if !coding.as_bytes().eq_ignore_ascii_case(b"chunked") {
                return Err(GatewayError::MalformedHttp(
                    "Transfer-Encoding other than chunked",
                ));
            }
            Ok(BodyFraming::Chunked)
        }
        (None, Some(length)) => {
            if cl.next().is_some() {
                return Err(GatewayError::MalformedHttp(
                    "several Content-Length headers",
                ));
            }
            let n = parse_content_length(length.as_bytes())
                .ok_or(GatewayError::MalformedHttp("invalid Content-Length"))?;
            // A length that does not fit is refused as too large, not as malformed.
            let n = usize::try_from(n).map_err(|_| GatewayError::BodyTooLarge)?;
            Ok(if n == 0 {
                BodyFraming::None
            } else {
                BodyFraming::Length(n)
            })
        }
    }
}

/// `1*DIGIT` (httparse has already trimmed the surrounding whitespace), at most 19 digits so
/// it fits a `u64` without overflow checks.
fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Longest chunk-size line accepted (size, extensions and CRLF).
pub const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of chunk extensions accepted over one body. Nobody we serve sends extensions;
/// the bound stops a body made of tiny chunks with long extensions from costing far more than
/// its size.
pub const MAX_CHUNK_EXTENSIONS: usize = 4 * 1024;

/// Where a chunked body decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data: bytes still to come.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// An incremental, strict decoder of a chunked body (RFC 9112 §7.1).
///
/// Incremental because a client may trickle the body: re-parsing the whole buffer on every
/// read (as a one-shot decoder must) costs quadratic time in the body size. [`feed`] consumes
/// what it can and keeps its place, so every byte is looked at once.
///
/// Strict: the chunk size is `1*HEXDIG` (no sign, `0x`, whitespace), lines end in CRLF, the
/// data is followed by CRLF, extensions are `;token[=token|quoted-string]` without whitespace
/// and bounded, trailers are `name:value` lines (discarded) bounded like a head.
///
/// [`feed`]: ChunkedDecoder::feed
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    body: Vec<u8>,
    limit: usize,
    extension_bytes: usize,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder for a body of at most `limit` bytes (413 beyond).
    pub fn new(limit: usize) -> Self {
        Self {
            state: ChunkState::Size,
            body: Vec::new(),
            limit,
            extension_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// Whether the whole body (and its trailers) has been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// The decoded body (complete once [`is_done`](Self::is_done)).
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Consumes what it can of `buf` and returns how many bytes it used; the caller drops
    /// them and feeds the rest with whatever arrives next. Stops right after the body, so
    /// the bytes of a pipelined next request are left alone.
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, GatewayError> {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match self.state {
                ChunkState::Done => return Ok(pos),
                ChunkState::Size => {
                    let Some(line) = line(rest, MAX_CHUNK_LINE, "chunk-size line too long")? else {
                        return Ok(pos);
                    };
                    let size = self.chunk_size(&rest[..line])?;
                    pos += line + 2;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let n = left.min(rest.len());
                    self.body.extend_from_slice(&rest[..n]);
                    pos += n;
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => match rest {
                    [] | [b'\r'] => return Ok(pos),
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = ChunkState::Size;
                    }
                    _ => return Err(GatewayError::MalformedHttp("chunk not followed by CRLF")),
                },
                ChunkState::Trailers => {
                    let room = MAX_HEAD.saturating_sub(self.trailer_bytes);
                    let Some(line) = line(rest, room, "trailers too large")? else {
                        return Ok(pos);
                    };
                    self.trailer_bytes += line + 2;
                    if self.trailer_bytes > MAX_HEAD {
                        return Err(GatewayError::MalformedHttp("trailers too large"));
                    }
                    if line == 0 {
                        self.state = ChunkState::Done;
                    } else {
                        check_trailer(&rest[..line])?;
                    }
                    pos += line + 2;
                }
            }
        }
    }

    /// The size of a chunk-size line (without its CRLF), checking its extensions and the
    /// body limit.
    fn chunk_size(&mut self, line: &[u8]) -> Result<usize, GatewayError> {
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(GatewayError::MalformedHttp("invalid chunk size"));
        }
        let mut size: usize = 0;
        for &d in &line[..digits] {
            let v = (d as char).to_digit(16).unwrap_or(0) as usize;
            // Past the limit is refused before it can overflow (leading zeros are allowed).
            size = size
                .checked_mul(16)
                .and_then(|s| s.checked_add(v))
                .filter(|&s| self.body.len().saturating_add(s) <= self.limit)
                .ok_or(GatewayError::BodyTooLarge)?;
        }
        let ext = &line[digits..];
        if !ext.is_empty() {
            self.extension_bytes += ext.len();
            if self.extension_bytes > MAX_CHUNK_EXTENSIONS {
                return Err(GatewayError::MalformedHttp("chunk extensions too long"));
            }
            check_extensions(ext)?;
        }
        Ok(size)
    }
}

/// The length of the CRLF-terminated line at the start of `buf` (without the CRLF).
/// `Ok(None)`: not complete yet. A bare LF, a CR inside the line or a line longer than `max`
/// is refused (`too_long` names the latter).
fn line(buf: &[u8], max: usize, too_long: &'static str) -> Result<Option<usize>, GatewayError> {
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    match window.iter().position(|&b| b == b'\n') {
        Some(0) => Err(GatewayError::MalformedHttp("bare LF in chunked framing")),
        Some(nl) if window[nl - 1] != b'\r' => {
            Err(GatewayError::MalformedHttp("bare LF in chunked framing"))
        }
        Some(nl) if window[..nl - 1].contains(&b'\r') => {
            Err(GatewayError::MalformedHttp("bare CR in chunked framing"))
        }
        Some(nl) => Ok(Some(nl - 1)),
        None if window.len() > max => Err(GatewayError::MalformedHttp(too_long)),
        None => Ok(None),
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `*( ";" token [ "=" ( token / quoted-string ) ] )`, without the optional whitespace the
/// grammar allows (BWS): no client we serve sends extensions at all, and whitespace and
/// quoted strings in them are where chunk parsers have disagreed.
fn check_extensions(mut ext: &[u8]) -> Result<(), GatewayError> {
    let bad = || GatewayError::MalformedHttp("invalid chunk extension");
    while !ext.is_empty() {
        ext = ext.strip_prefix(b";").ok_or_else(bad)?;
        let name = ext.iter().take_while(|&&b| is_tchar(b)).count();
        if name == 0 {
            return Err(bad());
        }
        ext = &ext[name..];
        if let Some(value) = ext.strip_prefix(b"=") {
            let used = if let Some(quoted) = value.strip_prefix(b"\"") {
                quoted_string_len(quoted).ok_or_else(bad)? + 1
            } else {
                value.iter().take_while(|&&b| is_tchar(b)).count()
            };
            if used == 0 {
                return Err(bad());
            }
            ext = &value[used..];
        }
    }
    Ok(())
}

/// The length of a quoted string's rest after its opening quote, closing quote included.
/// Only visible ASCII, space and tab (and `\` escapes of those) are allowed inside.
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    let ok = |b: u8| b == b'\t' || (b' '..=b'~').contains(&b);
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' if s.get(i + 1).is_some_and(|&n| ok(n)) => i += 2,
            b'\\' => return None,
            b if ok(b) => i += 1,
            _ => return None,
        }
    }
    None
}

/// A trailer line: `name:value`, not folded. Its content is discarded.
fn check_trailer(line: &[u8]) -> Result<(), GatewayError> {
    let name = line.iter().take_while(|&&b| is_tchar(b)).count();
    if name == 0 || line.get(name) != Some(&b':') {
        return Err(GatewayError::MalformedHttp("invalid trailer"));
    }
    Ok(())
}

/// Decodes a complete chunked body at the start of `buf`. `Ok(None)`: incomplete. On success
/// returns the body and the bytes consumed (trailers included). Bodies over `limit` are refused.
/// (A one-shot wrapper around [`ChunkedDecoder`]; the connection loop feeds one incrementally.)
pub fn decode_chunked(buf: &[u8], limit: usize) -> Result<Option<(Vec<u8>, usize)>, GatewayError> {
    let mut d = ChunkedDecoder::new(limit);
    let used = d.feed(buf)?;
    Ok(d.is_done().then(|| (d.into_body(), used)))
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

    fn refused(raw: &[u8]) -> bool {
        matches!(parse_head(raw), Err(GatewayError::MalformedHttp(_)))
    }

    fn post_with(headers: &str) -> Vec<u8> {
        format!("POST /x HTTP/1.1\r\nHost: a\r\n{headers}\r\n").into_bytes()
    }

    #[test]
    fn content_length_must_be_plain_digits() {
        for v in [
            "+17",
            "-17",
            "1 7",
            "17a",
            "0x11",
            "",
            "1,1",
            "17, 17",
            "1_000",
            "\u{663}",
            "99999999999999999999",
        ] {
            let raw = post_with(&format!("Content-Length: {v}\r\n"));
            assert!(refused(&raw), "Content-Length: {v:?}");
        }
        // Surrounding whitespace is the header's OWS, not part of the value.
        let raw = post_with("Content-Length:  17 \r\n");
        let head = parse_head(&raw).unwrap().unwrap().0;
        assert_eq!(head.body, BodyFraming::Length(17));
        let raw = post_with("Content-Length: 000\r\n");
        assert_eq!(parse_head(&raw).unwrap().unwrap().0.body, BodyFraming::None);
    }

    #[test]
    fn several_content_lengths_are_refused_even_identical() {
        for h in [
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: 5, 5\r\n",
            "content-length: 5\r\nCONTENT-LENGTH: 5\r\n",
        ] {
            assert!(refused(&post_with(h)), "{h:?}");
        }
    }

    #[test]
    fn transfer_encoding_must_be_exactly_chunked() {
        for h in [
            "Transfer-Encoding: chunked, identity\r\n",
            "Transfer-Encoding: identity\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked, chunked\r\n",
            "Transfer-Encoding: xchunked\r\n",
            "Transfer-Encoding: chunked;q=1\r\n",
            "Transfer-Encoding: \"chunked\"\r\n",
            "Transfer-Encoding:\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "Content-Length: 3\r\nTransfer-Encoding: identity\r\n",
        ] {
            assert!(refused(&post_with(h)), "{h:?}");
        }
        for ok in [
            "Transfer-Encoding: chunked\r\n",
            "Transfer-Encoding: CHUNKED \r\n",
        ] {
            let head = parse_head(&post_with(ok)).unwrap().unwrap().0;
            assert_eq!(head.body, BodyFraming::Chunked, "{ok:?}");
        }
        // HTTP/1.0 has no chunked framing.
        assert!(refused(
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
    }

    #[test]
    fn bare_line_endings_and_obs_fold_are_refused() {
        for raw in [
            &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\r\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nX: a\rY: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\n",
            b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        ] {
            assert!(refused(raw), "{:?}", String::from_utf8_lossy(raw));
        }
        // Refused as soon as the bad line is there, before the head is complete.
        assert!(refused(b"GET / HTTP/1.1\r\nHost: a\nX"));
        // A body that starts with whitespace or holds bare LFs is not part of the head.
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n a\nb";
        let (head, n) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.body, BodyFraming::Length(4));
        assert_eq!(&raw[n..], b" a\nb");
    }

    #[test]
    fn header_names_with_whitespace_are_refused() {
        assert!(parse_head(b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n").is_err());
        assert!(parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n").is_err());
    }

    fn chunked(raw: &[u8]) -> Result<Option<(Vec<u8>, usize)>, GatewayError> {
        decode_chunked(raw, 1000)
    }

    #[test]
    fn chunk_size_lines_are_strict() {
        for bad in [
            &b"+5\r\nhello\r\n0\r\n\r\n"[..],
            b"-5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5\rx\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello0\r\n\r\n",
        ] {
            assert!(
                matches!(chunked(bad), Err(GatewayError::MalformedHttp(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A size past the limit (or one that would overflow) is 413 as soon as it is read.
        assert!(matches!(
            chunked(b"3e9\r\n"),
            Err(GatewayError::BodyTooLarge)
        ));
        assert!(matches!(
            chunked(b"ffffffffffffffffffffffff\r\n"),
            Err(GatewayError::BodyTooLarge)
        ));
        // Leading zeros are fine.
        let (body, _) = chunked(b"0005\r\nhello\r\n000\r\n\r\n").unwrap().unwrap();
        assert_eq!(body, b"hello");
        // A size line that never ends is refused once it is longer than any sane one.
        let long = vec![b'0'; MAX_CHUNK_LINE + 3];
        assert!(matches!(
            chunked(&long),
            Err(GatewayError::MalformedHttp(_))
        ));
        assert!(chunked(&long[..MAX_CHUNK_LINE]).unwrap().is_none());
    }

    #[test]
    fn chunk_extensions_are_checked_and_bounded() {
        let ok = b"5;a=b;c;d=\"x y\\\"z\"\r\nhello\r\n0;last\r\n\r\n";
        assert_eq!(chunked(ok).unwrap().unwrap().0, b"hello");
        for bad in [
            &b"5;\r\nhello\r\n0\r\n\r\n"[..],
            b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
            b"5; a=b\r\nhello\r\n0\r\n\r\n",
            b"5;a =b\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"open\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
            b"5;a=b,c\r\nhello\r\n0\r\n\r\n",
            b"5x\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                matches!(chunked(bad), Err(GatewayError::MalformedHttp(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Many tiny chunks each dragging a long extension: refused past the budget.
        let ext = "a".repeat(200);
        let mut abuse = Vec::new();
        for _ in 0..(MAX_CHUNK_EXTENSIONS / 200 + 2) {
            abuse.extend_from_slice(format!("1;{ext}\r\nx\r\n").as_bytes());
        }
        assert!(matches!(
            decode_chunked(&abuse, 1_000_000),
            Err(GatewayError::MalformedHttp("chunk extensions too long"))
        ));
    }

    #[test]
    fn trailers_are_strict_and_bounded() {
        let raw = b"1\r\na\r\n0\r\nX-T: 1\r\nY:2\r\n\r\nNEXT";
        let (body, n) = chunked(raw).unwrap().unwrap();
        assert_eq!((&body[..], &raw[n..]), (&b"a"[..], &b"NEXT"[..]));
        for bad in [
            &b"0\r\nno colon\r\n\r\n"[..],
            b"0\r\n: v\r\n\r\n",
            b"0\r\nX: a\r\n folded\r\n\r\n",
            b"0\r\nX: a\n\r\n",
        ] {
            assert!(
                matches!(chunked(bad), Err(GatewayError::MalformedHttp(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut huge = b"0\r\n".to_vec();
        while huge.len() < MAX_HEAD + 100 {
            huge.extend_from_slice(b"X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(
            chunked(&huge),
            Err(GatewayError::MalformedHttp(_))
        ));
    }

    #[test]
    fn chunked_decoder_is_incremental() {
        let raw = b"4;e=1\r\nabcd\r\n2\r\nef\r\n0\r\nT: x\r\n\r\nNEXT";
        // Fed one byte at a time (the caller keeps what was not consumed), every split
        // point gives the same body and stops right before the next request.
        let mut d = ChunkedDecoder::new(100);
        let mut pending: Vec<u8> = Vec::new();
        let mut consumed = 0;
        for &b in raw.iter() {
            pending.push(b);
            let used = d.feed(&pending).unwrap();
            pending.drain(..used);
            consumed += used;
            if d.is_done() {
                break;
            }
        }
        assert!(d.is_done());
        assert_eq!(&raw[consumed..], b"NEXT");
        assert_eq!(d.into_body(), b"abcdef");
    }
}
