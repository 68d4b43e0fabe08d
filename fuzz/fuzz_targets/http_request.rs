//! Fuzzes the HTTP/1.1 request parser (`gateway/src/http/request.rs`): `parse_head` on
//! arbitrary bytes, then the body the head announces (`Content-Length` or chunked, through
//! `decode_chunked`), and the query helpers (`query_param`, `percent_decode`) on what it parsed.
//!
//! Properties checked besides "no panic":
//! - a parsed head never claims more bytes than given, nor more than `MAX_HEAD`;
//! - the head is a function of its own bytes: re-parsing exactly the `n` bytes it took gives
//!   the same head and `n`, and any strict prefix of them is "incomplete", never an error or a
//!   different head (the connection loop re-parses growing buffers);
//! - "incomplete" is only answered below `MAX_HEAD` (beyond it: 431);
//! - `decode_chunked` never claims more bytes than given, never returns a body over its limit,
//!   is prefix-stable the same way, and a body it returned re-encodes as chunks that decode to
//!   the same body;
//! - `percent_decode` of a value we percent-encoded gives the value back.
//!
//! Input: the first byte picks the mode (even: a request head + body; odd: a chunked body on
//! its own, with a limit from the second byte), the rest is the wire bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechat_gateway::http::request::{decode_chunked, parse_head, MAX_HEAD};
use livechat_gateway::http::{percent_decode, query_param, query_params, BodyFraming};

/// Body limit used for the request mode (the gateway's default `maxPayload` is 1 MB).
const LIMIT: usize = 1_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let Some((&l, body)) = rest.split_first() else {
            return;
        };
        check_chunked(body, usize::from(l) * 4);
        return;
    }
    check_request(rest);
});

fn check_request(buf: &[u8]) {
    let parsed = parse_head(buf);
    let (head, n) = match parsed {
        Err(_) => return,
        Ok(None) => {
            assert!(
                buf.len() < MAX_HEAD,
                "incomplete answered at {} bytes",
                buf.len()
            );
            return;
        }
        Ok(Some(x)) => x,
    };
    assert!(
        n > 0 && n <= buf.len(),
        "head claims {n} of {} bytes",
        buf.len()
    );
    assert!(n <= MAX_HEAD, "head of {n} bytes accepted");
    assert!(
        !head.path.contains('?'),
        "path keeps the query: {:?}",
        head.path
    );

    // Same bytes, same head.
    let (again, n2) = parse_head(&buf[..n])
        .expect("the head's own bytes parse")
        .expect("the head's own bytes are complete");
    assert_eq!(n, n2);
    assert_eq!(head.method, again.method);
    assert_eq!(head.path, again.path);
    assert_eq!(head.query, again.query);
    assert_eq!(head.headers, again.headers);
    assert_eq!(head.keep_alive, again.keep_alive);
    assert_eq!(head.body, again.body);

    // A strict prefix is "read more" (checked at a few cut points to stay cheap).
    for cut in [n - 1, n / 2, 1] {
        if cut == 0 || cut >= n {
            continue;
        }
        match parse_head(&buf[..cut]) {
            Ok(None) => {}
            Ok(Some((_, m))) => panic!("prefix of {cut} bytes parsed as a head of {m}"),
            Err(e) => panic!("prefix of {cut} bytes (of a {n}-byte head) refused: {e}"),
        }
    }

    // Helpers the routes call on what was parsed.
    let _ = head.is_websocket_upgrade();
    let _ = head.header("content-type");
    let _ = percent_decode(&head.path);
    for name in ["EIO", "transport", "sid", "limit", "after", "status"] {
        let first = query_param(&head.query, name);
        let all = query_params(&head.query, name);
        // `query_param` is the first value that decodes, as `query_params` lists them.
        assert_eq!(
            first.as_ref(),
            all.first(),
            "query {:?} name {name}",
            head.query
        );
    }
    for pair in head.query.split('&') {
        if let Some(v) = percent_decode(pair) {
            let enc = percent_encode(&v);
            assert_eq!(percent_decode(&enc).as_deref(), Some(v.as_str()), "{enc:?}");
        }
    }

    let body = &buf[n..];
    match head.body {
        BodyFraming::None => {}
        BodyFraming::Length(len) => assert!(len > 0, "Length(0) instead of None"),
        BodyFraming::Chunked => check_chunked(body, LIMIT),
    }
}

fn check_chunked(buf: &[u8], limit: usize) {
    let (body, used) = match decode_chunked(buf, limit) {
        Err(_) | Ok(None) => return,
        Ok(Some(x)) => x,
    };
    assert!(
        used <= buf.len(),
        "chunked body claims {used} of {} bytes",
        buf.len()
    );
    assert!(
        body.len() <= limit,
        "body of {} over limit {limit}",
        body.len()
    );
    assert!(body.len() <= used);

    let (again, used2) = decode_chunked(&buf[..used], limit)
        .expect("the body's own bytes decode")
        .expect("the body's own bytes are complete");
    assert_eq!((&body, used), (&again, used2));
    for cut in [used - 1, used / 2] {
        if cut >= used {
            continue;
        }
        match decode_chunked(&buf[..cut], limit) {
            Ok(None) => {}
            Ok(Some((b, m))) => panic!(
                "prefix of {cut} bytes decoded as {} bytes of body ({m} used)",
                b.len()
            ),
            Err(e) => panic!("prefix of {cut} bytes (of a {used}-byte body) refused: {e}"),
        }
    }

    // Re-encode as chunks of at most 7 bytes (plus a trailer) and decode again.
    let mut enc = Vec::new();
    for c in body.chunks(7) {
        enc.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        enc.extend_from_slice(c);
        enc.extend_from_slice(b"\r\n");
    }
    enc.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
    let (round, n) = decode_chunked(&enc, limit)
        .expect("re-encoded body decodes")
        .expect("re-encoded body is complete");
    assert_eq!(round, body);
    assert_eq!(n, enc.len());
}

/// Percent-encodes everything but unreserved characters (the inverse `percent_decode` expects).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
