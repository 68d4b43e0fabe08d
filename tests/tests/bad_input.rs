//! Bad input against the `conformance` example: malformed HTTP, refused Engine.IO requests and
//! invalid Socket.IO packets get the right status and error body, end only the offending
//! session or connection, and leave the server serving everyone else.
//!
//! Every test runs against a server with `--executors 1` and one with `--executors 2` (where a
//! session's requests may land on the executor that does not own it). Heartbeats are set to
//! 60 s so pings never interfere; waiting for the server is always a parked polling GET.

use std::net::SocketAddr;

use anyhow::{ensure, Context};
use livechat_tests::{
    get, get_request, idle_session, open_polling_session, packets, poll_until, polling_path, post,
    raw_request, sio_connect_polling, HttpConn, HttpResponse, Server, SIO_PATH,
};
use serde_json::json;

/// Runs `test` against the conformance server with 1 and with 2 executors; afterwards a fresh,
/// well-behaved client must still be served by the same server.
fn on_both_servers(test: impl Fn(SocketAddr) -> anyhow::Result<()>) -> anyhow::Result<()> {
    for executors in ["1", "2"] {
        let server = Server::conformance(executors, &[])?;
        let addr = server.addr();
        let result = test(addr)
            .context("test body failed")
            .and_then(|()| assert_healthy(addr).context("server no longer serves a good client"));
        result.with_context(|| {
            format!(
                "--executors {executors} ({addr}); server log:\n{}",
                server.stderr_log()
            )
        })?;
    }
    Ok(())
}

/// A well-behaved Socket.IO client over polling: handshake, `40`, an echoed `message`.
fn assert_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    let sid = sio_connect_polling(addr)?;
    echo_works(addr, &sid, "x")?;
    let bye = post(addr, &polling_path(&sid), "1")?;
    assert_eq!((bye.status, bye.text()), (200, "ok".into()), "POST 1");
    Ok(())
}

/// `42["message",TEXT]` on `sid` comes back as `42["message-back",TEXT]`.
fn echo_works(addr: SocketAddr, sid: &str, text: &str) -> anyhow::Result<()> {
    let arg = serde_json::to_string(text)?;
    let resp = post(addr, &polling_path(sid), format!(r#"42["message",{arg}]"#))?;
    assert_eq!(
        (resp.status, resp.text()),
        (200, "ok".into()),
        "POST message"
    );
    let want = format!(r#"42["message-back",{arg}]"#);
    poll_until(addr, sid, 10, |p| p == want)?;
    Ok(())
}

/// `resp` is a 400 with the Engine.IO error body `{"code":code,"message":message}`.
fn assert_engine_error(resp: &HttpResponse, code: u8, message: &str, what: &str) {
    assert_eq!(resp.status, 400, "{what}: status (body {:?})", resp.text());
    let body = resp.json().unwrap_or_else(|e| panic!("{what}: {e:#}"));
    assert_eq!(
        body,
        json!({ "code": code, "message": message }),
        "{what}: body"
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "{what}: content type"
    );
}

/// The session `sid` is gone: a GET gets 400 "Session ID unknown", or first a payload with the
/// close packet `1` and then that 400.
fn assert_session_closed(addr: SocketAddr, sid: &str, what: &str) -> anyhow::Result<()> {
    let first = get(addr, &polling_path(sid))?;
    if first.status == 200 {
        let ps = packets(&first.body);
        ensure!(
            ps.iter().any(|p| p == "1"),
            "{what}: session {sid} still open, GET returned {ps:?}"
        );
        let second = get(addr, &polling_path(sid))?;
        assert_engine_error(&second, 1, "Session ID unknown", what);
    } else {
        assert_engine_error(&first, 1, "Session ID unknown", what);
    }
    Ok(())
}

/// Sends `bytes` on a fresh connection; expects `status` and the connection closed after it.
fn assert_refused_and_closed(
    addr: SocketAddr,
    bytes: &[u8],
    status: u16,
    what: &str,
) -> anyhow::Result<HttpResponse> {
    let mut conn = HttpConn::connect(addr)?;
    let resp = conn.request(bytes).with_context(|| what.to_owned())?;
    assert_eq!(
        resp.status,
        status,
        "{what}: status (body {:?})",
        resp.text()
    );
    assert!(conn.is_closed()?, "{what}: connection left open");
    Ok(resp)
}

fn polling_post_head(addr: SocketAddr, sid: &str, extra: &str) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n{extra}\r\n",
        polling_path(sid)
    )
}

// --- HTTP ---------------------------------------------------------------------------------

#[test]
fn garbage_instead_of_http_gets_400_and_close() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        for garbage in [
            &b"\x00\x01\x02\x03 garbage\r\n\r\n"[..],
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
            b"GET / FTP/9.9\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        ] {
            assert_refused_and_closed(addr, garbage, 400, &format!("{garbage:?}"))?;
        }
        Ok(())
    })
}

#[test]
fn request_head_over_16k_gets_431() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        // Exactly 16 KiB of a head that has not ended yet: the server must give up on it without
        // waiting for more (and nothing is left unread, so the close is a clean FIN).
        let mut head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Filler: ").into_bytes();
        head.resize(16 * 1024, b'a');
        let resp = assert_refused_and_closed(addr, &head, 431, "16 KiB head")?;
        assert_eq!(resp.json()?["code"], "header_too_large");
        // Too many header lines is the same refusal.
        let mut many = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n");
        for i in 0..100 {
            many.push_str(&format!("X-H{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_refused_and_closed(addr, many.as_bytes(), 431, "100 headers")?;
        Ok(())
    })
}

#[test]
fn body_over_max_payload_gets_413() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let sid = idle_session(addr)?;
        // The server must refuse on the announced length, before any body byte arrives.
        let head = polling_post_head(addr, &sid, "Content-Length: 1000001\r\n");
        let resp = assert_refused_and_closed(addr, head.as_bytes(), 413, "Content-Length 1000001")?;
        assert_eq!(resp.json()?["code"], "payload_too_large");
        // The same with a chunked body announcing one chunk of 1000001 bytes.
        let mut chunked = polling_post_head(addr, &sid, "Transfer-Encoding: chunked\r\n");
        chunked.push_str("F4241\r\n");
        assert_refused_and_closed(addr, chunked.as_bytes(), 413, "chunk of 1000001")?;
        Ok(())
    })
}

#[test]
fn invalid_content_length_gets_400() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let sid = idle_session(addr)?;
        for header in [
            "Content-Length: abc\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 2x\r\n",
            "Content-Length: 99999999999999999999999\r\n",
            "Content-Length: 1\r\nContent-Length: 2\r\n",
            "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        ] {
            let head = polling_post_head(addr, &sid, header);
            assert_refused_and_closed(addr, head.as_bytes(), 400, header.trim())?;
        }
        Ok(())
    })
}

#[test]
fn chunked_post_to_a_polling_session_is_processed() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let sid = open_polling_session(addr)?;
        // `40` in two chunks, with a chunk extension and a trailer.
        let mut req = polling_post_head(addr, &sid, "Transfer-Encoding: chunked\r\n");
        req.push_str("1;ext=1\r\n4\r\n1\r\n0\r\n0\r\nX-Trailer: t\r\n\r\n");
        let resp = raw_request(addr, req.as_bytes())?;
        assert_eq!(
            (resp.status, resp.text()),
            (200, "ok".into()),
            "chunked POST"
        );
        poll_until(addr, &sid, 10, |p| p.starts_with(r#"40{"sid":"#))?;
        echo_works(addr, &sid, "after chunked")?;
        Ok(())
    })
}

#[test]
fn keep_alive_connection_answers_every_request() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let mut conn = HttpConn::connect(addr)?;
        let health = get_request(addr, "/healthz");
        let first = conn.request(&health)?;
        assert_eq!(first.status, 200, "first request");
        let hs = conn.request(&get_request(
            addr,
            &format!("{SIO_PATH}?EIO=4&transport=polling"),
        ))?;
        assert_eq!(hs.status, 200, "second request (handshake)");
        assert!(
            hs.text().starts_with("0{"),
            "handshake body {:?}",
            hs.text()
        );
        // Two requests in one write (pipelined), then a third after both answers.
        conn.send(&[health.clone(), health.clone()].concat())?;
        for i in 0..2 {
            let r = conn.read_response()?;
            assert_eq!(r.status, 200, "pipelined request {i}");
        }
        assert_eq!(
            conn.request(&health)?.status,
            200,
            "request after pipelining"
        );
        Ok(())
    })
}

#[test]
fn healthz_answers_200() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let resp = get(addr, "/healthz")?;
        assert_eq!(resp.status, 200, "body {:?}", resp.text());
        Ok(())
    })
}

#[test]
fn unknown_route_gets_404_json() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        for path in ["/nope", "/socket.io.evil/", "/healthz/extra", "/engine.io/"] {
            let resp = get(addr, path)?;
            assert_eq!(resp.status, 404, "{path}: body {:?}", resp.text());
            let body = resp.json()?;
            assert!(body["error"].is_string(), "{path}: {body}");
            assert_eq!(body["code"], "not_found", "{path}: {body}");
        }
        Ok(())
    })
}

#[test]
fn cors_preflight_from_unlisted_origin_gets_403() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let req = format!(
            "OPTIONS {SIO_PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\n\
             Origin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type\r\n\r\n"
        );
        let resp = raw_request(addr, req.as_bytes())?;
        assert_eq!(resp.status, 403, "body {:?}", resp.text());
        assert_eq!(resp.header("access-control-allow-origin"), None);
        assert_eq!(resp.header("access-control-allow-methods"), None);
        Ok(())
    })
}

// --- Engine.IO ----------------------------------------------------------------------------

#[test]
fn missing_or_unknown_transport_is_code_0() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        for query in [
            "EIO=4",
            "EIO=4&transport=",
            "EIO=4&transport=carrier-pigeon",
            "EIO=4&transport=Polling",
        ] {
            let resp = get(addr, &format!("{SIO_PATH}?{query}"))?;
            assert_engine_error(&resp, 0, "Transport unknown", query);
        }
        Ok(())
    })
}

#[test]
fn unsupported_protocol_version_is_code_5() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        for query in [
            "EIO=3&transport=polling",
            "transport=polling",
            "EIO=5&transport=polling",
            "EIO=&transport=polling",
        ] {
            let resp = get(addr, &format!("{SIO_PATH}?{query}"))?;
            assert_engine_error(&resp, 5, "Unsupported protocol version", query);
        }
        Ok(())
    })
}

#[test]
fn post_without_sid_is_code_2() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let resp = post(addr, &format!("{SIO_PATH}?EIO=4&transport=polling"), "40")?;
        assert_engine_error(&resp, 2, "Bad handshake method", "POST without sid");
        Ok(())
    })
}

#[test]
fn unknown_sid_is_code_1() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let real = idle_session(addr)?;
        // Same owner prefix, different random part: well-formed, never issued.
        let forged = format!("{}{}", &real[..2], "A".repeat(real.len() - 2));
        // A session that existed and was closed by the client.
        let closed = open_polling_session(addr)?;
        let bye = post(addr, &polling_path(&closed), "1")?;
        assert_eq!((bye.status, bye.text()), (200, "ok".into()), "POST 1");
        let malformed = [
            "nope".to_owned(),
            "!".repeat(real.len()),
            format!("{real}x"),
            // Id-shaped, but names executor 4095, which does not exist.
            format!("__{}", &real[2..]),
        ];
        // The first GET after a client's close is taken for the one that was in flight when
        // the close arrived (two executors may see them in either order): the noop a parked
        // GET gets. Any later one finds the sid unknown.
        let in_flight = get(addr, &polling_path(&closed))?;
        assert_eq!(
            (in_flight.status, in_flight.text()),
            (200, "6".into()),
            "first GET after the close"
        );
        for sid in [forged, closed].iter().chain(&malformed) {
            let what = format!("sid {sid:?}");
            let resp = get(addr, &polling_path(sid))?;
            assert_engine_error(&resp, 1, "Session ID unknown", &format!("GET, {what}"));
            let resp = post(addr, &polling_path(sid), "40")?;
            assert_engine_error(&resp, 1, "Session ID unknown", &format!("POST, {what}"));
        }
        // The real session was not disturbed.
        echo_works(addr, &real, "still here")?;
        Ok(())
    })
}

#[test]
fn duplicate_get_closes_the_session() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let sid = idle_session(addr)?;
        let path = polling_path(&sid);
        let mut a = HttpConn::connect(addr)?;
        a.send(&get_request(addr, &path))?;
        let mut b = HttpConn::connect(addr)?;
        b.send(&get_request(addr, &path))?;
        let ra = a.read_response().context("first GET")?;
        let rb = b.read_response().context("second GET")?;
        // Which GET parked first is up to the server (two connections, possibly two
        // executors); the parked one is answered `1`, the other one 400.
        let (parked, dup) = if ra.status == 200 { (ra, rb) } else { (rb, ra) };
        assert_eq!(
            (parked.status, parked.text()),
            (200, "1".into()),
            "parked GET (other: {} {:?})",
            dup.status,
            dup.text()
        );
        assert_eq!(dup.status, 400, "duplicate GET: body {:?}", dup.text());
        let after = get(addr, &path)?;
        assert_engine_error(&after, 1, "Session ID unknown", "GET after duplicate GET");
        Ok(())
    })
}

#[test]
fn invalid_engineio_packet_ends_the_session() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        for body in [&b"abc"[..], b"7", b"0{}", b"4a\x1e", b"b!!!", b"4\xff\xfe"] {
            let what = format!("POST {:?}", String::from_utf8_lossy(body));
            let sid = idle_session(addr)?;
            let resp = post(addr, &polling_path(&sid), body)?;
            assert_eq!(resp.status, 400, "{what}: body {:?}", resp.text());
            assert_session_closed(addr, &sid, &what)?;
        }
        Ok(())
    })
}

#[test]
fn octet_stream_post_gets_400() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let sid = idle_session(addr)?;
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: 2\r\n\r\n40",
            polling_path(&sid)
        );
        let resp = raw_request(addr, req.as_bytes())?;
        assert_eq!(resp.status, 400, "body {:?}", resp.text());
        Ok(())
    })
}

// --- Socket.IO over polling ---------------------------------------------------------------

#[test]
fn invalid_socketio_packet_closes_the_session() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        for body in [
            r#"42{"a":1}"#,
            "49",
            r#"4511-["a"]"#,
            "4",
            r#"43["no ack id"]"#,
            r#"42["a""#,
            r#"42[]"#,
            r#"42["disconnect"]"#,
            r#"41"x""#,
            r#"44"client-sent connect error""#,
        ] {
            let what = format!("POST {body:?}");
            let sid = idle_session(addr)?;
            let resp = post(addr, &polling_path(&sid), body)?;
            // Whether the POST itself is accepted is the server's choice (the reference server
            // answers `ok`, then closes); the session must end either way.
            assert!(
                matches!(resp.status, 200 | 400),
                "{what}: {} {:?}",
                resp.status,
                resp.text()
            );
            assert_session_closed(addr, &sid, &what)?;
        }
        Ok(())
    })
}

#[test]
fn unexpected_binary_packet_closes_the_session() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let sid = idle_session(addr)?;
        let resp = post(addr, &polling_path(&sid), "bAQID")?;
        assert!(
            matches!(resp.status, 200 | 400),
            "POST bAQID: {} {:?}",
            resp.status,
            resp.text()
        );
        assert_session_closed(addr, &sid, "POST bAQID")?;
        Ok(())
    })
}

// --- Everyone else ------------------------------------------------------------------------

#[test]
fn bystander_session_survives_all_bad_input() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let bystander = idle_session(addr)?;
        // A GET parked for the bystander while the bad input goes on, on its own connection.
        let mut parked = HttpConn::connect(addr)?;
        parked.send(&get_request(addr, &polling_path(&bystander)))?;

        let mut big = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
        big.resize(16 * 1024, b'a');
        for bytes in [
            b"\x00\x01\x02 garbage\r\n\r\n".to_vec(),
            big,
            b"POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(),
        ] {
            let _ = raw_request(addr, &bytes)?;
        }
        let bad_sid = format!("{}{}", &bystander[..2], "A".repeat(bystander.len() - 2));
        let _ = get(addr, &polling_path(&bad_sid))?;
        let _ = get(addr, &format!("{SIO_PATH}?EIO=3&transport=polling"))?;
        for body in ["abc", r#"42{"a":1}"#, "49", r#"4511-["a"]"#, "bAQID"] {
            let victim = idle_session(addr)?;
            let _ = post(addr, &polling_path(&victim), body)?;
            assert_session_closed(addr, &victim, body)?;
        }
        let dup = idle_session(addr)?;
        let mut a = HttpConn::connect(addr)?;
        a.send(&get_request(addr, &polling_path(&dup)))?;
        let _ = get(addr, &polling_path(&dup))?;
        let _ = a.read_response()?;

        // The bystander's parked GET is released by its own echo, and it keeps working.
        let resp = post(
            addr,
            &polling_path(&bystander),
            r#"42["message","bystander"]"#,
        )?;
        assert_eq!(
            (resp.status, resp.text()),
            (200, "ok".into()),
            "bystander POST"
        );
        let got = parked.read_response()?;
        assert_eq!(got.status, 200, "bystander parked GET: {:?}", got.text());
        assert_eq!(
            packets(&got.body),
            vec![r#"42["message-back","bystander"]"#.to_owned()],
            "bystander parked GET"
        );
        echo_works(addr, &bystander, "again")?;
        Ok(())
    })
}
