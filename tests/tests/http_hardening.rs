//! Hostile HTTP input against the real `livechat` binary: request framing a proxy could read
//! differently (smuggling) is refused and the connection closed, slow heads and bodies are
//! cut off at their deadlines while other clients are served, the node-wide connection cap
//! keeps descriptors free and counts refusals, `accept` errors are backed off and the server
//! recovers when descriptors free up, per-address connection and request limits answer 429
//! with `Retry-After`, `X-Forwarded-For` is believed only from trusted proxies, and Engine.IO
//! refuses browser origins outside the CORS list.
//!
//! Waiting is always for an event (a response, a close, a log line); nothing asserts on how long
//! something took. The only pacing is the slowloris client's own: it trickles a byte per round.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use livechat_tests::{get, get_request, HttpConn, HttpResponse, Server};
use serde_json::json;

/// `livechat_<name>_total` from `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> anyhow::Result<u64> {
    let resp = get(addr, "/metrics")?;
    ensure!(resp.status == 200, "/metrics answered {}", resp.status);
    let want = format!("livechat_{name}_total ");
    let text = resp.text();
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .with_context(|| format!("no {want} in /metrics"))?
        .trim()
        .parse()
        .context("metric value")
}

/// Sends `bytes` on a fresh connection; expects `status` and the connection closed after it.
fn refused_and_closed(
    addr: SocketAddr,
    bytes: &[u8],
    status: u16,
    what: &str,
) -> anyhow::Result<HttpResponse> {
    let mut conn = HttpConn::connect(addr)?;
    let resp = conn.request(bytes).with_context(|| what.to_owned())?;
    ensure!(
        resp.status == status,
        "{what}: answered {} {:?}, want {status}",
        resp.status,
        resp.text()
    );
    ensure!(
        resp.header("connection") == Some("close"),
        "{what}: no Connection: close"
    );
    ensure!(conn.is_closed()?, "{what}: connection left open");
    Ok(resp)
}

/// A 429 with `Retry-After` and the API's error body with code `rate_limited`.
fn assert_rate_limited(resp: &HttpResponse, what: &str) -> anyhow::Result<()> {
    ensure!(
        resp.status == 429,
        "{what}: answered {} {:?}",
        resp.status,
        resp.text()
    );
    let retry: u64 = resp
        .header("retry-after")
        .with_context(|| format!("{what}: no Retry-After"))?
        .parse()
        .context("Retry-After is not whole seconds")?;
    ensure!(retry >= 1, "{what}: Retry-After {retry}");
    let body = resp.json()?;
    ensure!(body["code"] == json!("rate_limited"), "{what}: body {body}");
    ensure!(body["error"].is_string(), "{what}: body {body}");
    ensure!(body["timestamp"].is_string(), "{what}: body {body}");
    Ok(())
}

fn request_with(addr: SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n").into_bytes()
}

// --- Framing ---------------------------------------------------------------------------

#[test]
fn ambiguous_framing_is_refused_and_the_connection_closed() -> anyhow::Result<()> {
    let server = Server::livechat(&["--executors", "1"])?;
    let addr = server.addr();
    let post = |headers: &str, body: &str| {
        format!("POST /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n{body}").into_bytes()
    };
    let chunked = |body: &str| post("Transfer-Encoding: chunked\r\n", body);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "Content-Length with a sign",
            post("Content-Length: +17\r\n", ""),
        ),
        (
            "negative Content-Length",
            post("Content-Length: -1\r\n", ""),
        ),
        (
            "whitespace inside Content-Length",
            post("Content-Length: 1 7\r\n", ""),
        ),
        (
            "non-digit Content-Length",
            post("Content-Length: 17a\r\n", ""),
        ),
        ("empty Content-Length", post("Content-Length:\r\n", "")),
        (
            "two identical Content-Length",
            post("Content-Length: 3\r\nContent-Length: 3\r\n", "abc"),
        ),
        (
            "two different Content-Length",
            post("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
        ),
        (
            "Content-Length list",
            post("Content-Length: 3, 3\r\n", "abc"),
        ),
        (
            "Transfer-Encoding chunked, identity",
            post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"),
        ),
        (
            "Transfer-Encoding identity",
            post("Transfer-Encoding: identity\r\n", ""),
        ),
        (
            "Transfer-Encoding gzip, chunked",
            post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
        ),
        (
            "Transfer-Encoding chunked twice",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
        ),
        (
            "Content-Length and Transfer-Encoding",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
        ),
        (
            "bare LF after the request line",
            b"GET /healthz HTTP/1.1\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "bare LF after a header",
            b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n".to_vec(),
        ),
        (
            "bare LF ending the head",
            b"GET /healthz HTTP/1.1\r\nHost: x\n\n".to_vec(),
        ),
        (
            "obs-fold (space)",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n".to_vec(),
        ),
        (
            "obs-fold (tab)",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n".to_vec(),
        ),
        (
            "chunk size with a sign",
            chunked("+5\r\nhello\r\n0\r\n\r\n"),
        ),
        ("chunk size 0x", chunked("0x5\r\nhello\r\n0\r\n\r\n")),
        (
            "chunk size with spaces",
            chunked(" 5 \r\nhello\r\n0\r\n\r\n"),
        ),
        ("empty chunk size", chunked("\r\nhello\r\n0\r\n\r\n")),
        ("bare LF after chunk size", chunked("5\nhello\r\n0\r\n\r\n")),
        ("chunk data without CRLF", chunked("5\r\nhelloXX0\r\n\r\n")),
        ("chunk data with bare LF", chunked("5\r\nhello\n0\r\n\r\n")),
        (
            "unterminated quoted chunk extension",
            chunked("5;a=\"x\r\nhello\r\n0\r\n\r\n"),
        ),
        (
            "chunk extension with whitespace",
            chunked("5 ; a=b\r\nhello\r\n0\r\n\r\n"),
        ),
        ("empty chunk extension", chunked("5;\r\nhello\r\n0\r\n\r\n")),
        (
            "chunk extensions beyond the budget",
            chunked(&format!("1;{}\r\nx\r\n", "e".repeat(5000))),
        ),
        ("folded trailer", chunked("0\r\nX: 1\r\n 2\r\n\r\n")),
    ];
    for (what, bytes) in &cases {
        let resp = refused_and_closed(addr, bytes, 400, what)?;
        ensure!(
            resp.json()?["code"] == json!("bad_request"),
            "{what}: {}",
            resp.text()
        );
    }
    // The strict rules do not refuse the well-formed shapes.
    let mut conn = HttpConn::connect(addr)?;
    for ok in [
        post("Content-Length:  3 \r\n", "abc"),
        chunked("3;a=b\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
        post("Transfer-Encoding: Chunked\r\n", "0\r\n\r\n"),
    ] {
        let resp = conn.request(&ok)?;
        ensure!(
            resp.status == 200,
            "{:?}: {}",
            String::from_utf8_lossy(&ok),
            resp.status
        );
    }
    let refused = metric(addr, "http_malformed")?;
    ensure!(
        refused >= cases.len() as u64,
        "http_malformed {refused} < {}",
        cases.len()
    );
    Ok(())
}

// --- Deadlines -------------------------------------------------------------------------

#[test]
fn stalled_heads_and_bodies_get_408() -> anyhow::Result<()> {
    let server = Server::livechat(&[
        "--executors",
        "2",
        "--head-timeout-ms",
        "1000",
        "--body-timeout-ms",
        "1000",
    ])?;
    let addr = server.addr();
    let cases: [(&str, &[u8]); 3] = [
        ("head", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a"),
        (
            "Content-Length body",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        ),
        (
            "chunked body",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe",
        ),
    ];
    for (what, bytes) in cases {
        // The server answers once the deadline passes; the read waits for that answer.
        let resp = refused_and_closed(addr, bytes, 408, what)?;
        ensure!(resp.json()?["code"] == json!("request_timeout"), "{what}");
    }
    // A keep-alive connection that finished its request is not subject to the head deadline
    // while it waits for the next one: it is still served after another connection timed out.
    let mut idle = HttpConn::connect(addr)?;
    ensure!(idle.request(&get_request(addr, "/healthz"))?.status == 200);
    refused_and_closed(addr, cases[0].1, 408, "head again")?;
    ensure!(idle.request(&get_request(addr, "/healthz"))?.status == 200);
    ensure!(metric(addr, "http_timeouts")? >= 4);
    Ok(())
}

/// What one trickling connection saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trickle {
    Open,
    /// Closed by the server (EOF, reset, or a refused write), with whether a 408 was read.
    Closed {
        got_408: bool,
    },
}

#[test]
fn slowloris_connections_are_closed_while_healthz_answers() -> anyhow::Result<()> {
    const CONNS: usize = 300;
    let server = Server::livechat(&[
        "--executors",
        "2",
        "--head-timeout-ms",
        "1000",
        "--max-connections-per-ip",
        "1000",
    ])?;
    let addr = server.addr();
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")?;
        s.set_nonblocking(true)?;
        conns.push(s);
    }
    let done = Arc::new(AtomicBool::new(false));
    // The attacker: one more byte on every connection per round, until the server has closed
    // them all (bounded, so a server that never closes them fails the test instead of hanging).
    let trickler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut state = vec![Trickle::Open; CONNS];
            for _round in 0..600 {
                for (s, st) in conns.iter_mut().zip(state.iter_mut()) {
                    if *st != Trickle::Open {
                        continue;
                    }
                    let mut buf = [0u8; 512];
                    match s.read(&mut buf) {
                        Ok(0) => *st = Trickle::Closed { got_408: false },
                        Ok(n) => {
                            *st = Trickle::Closed {
                                got_408: buf[..n].starts_with(b"HTTP/1.1 408 "),
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            if s.write_all(b"a").is_err() {
                                *st = Trickle::Closed { got_408: false };
                            }
                        }
                        Err(_) => *st = Trickle::Closed { got_408: false },
                    }
                }
                if state.iter().all(|s| *s != Trickle::Open) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            done.store(true, Ordering::SeqCst);
            state
        })
    };
    // Meanwhile, a well-behaved client keeps asking for /healthz.
    let (mut ok, mut failed) = (0u32, Vec::new());
    while !done.load(Ordering::SeqCst) {
        match get(addr, "/healthz") {
            Ok(r) if r.status == 200 => ok += 1,
            Ok(r) => failed.push(format!("status {}", r.status)),
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    let state = trickler
        .join()
        .map_err(|_| anyhow::anyhow!("trickler panicked"))?;
    let open = state.iter().filter(|s| **s == Trickle::Open).count();
    let with_408 = state
        .iter()
        .filter(|s| **s == Trickle::Closed { got_408: true })
        .count();
    ensure!(
        open == 0,
        "{open} of {CONNS} trickling connections still open"
    );
    ensure!(failed.is_empty(), "/healthz failed meanwhile: {failed:?}");
    ensure!(ok >= 1, "no /healthz request completed");
    // Every trickling connection was ended by its deadline (408), whether or not the client
    // got to read the answer before its next byte hit the closed socket.
    let timeouts = metric(addr, "http_timeouts")?;
    ensure!(
        timeouts >= CONNS as u64,
        "http_timeouts {timeouts} < {CONNS} ({with_408} answers read)"
    );
    Ok(())
}

// --- Descriptors -----------------------------------------------------------------------

/// Opens keep-alive connections, each proven admitted by an answered `/healthz`, until one is
/// refused (closed without an answer). Returns the admitted ones.
fn fill_until_refused(addr: SocketAddr, most: usize) -> anyhow::Result<Vec<HttpConn>> {
    let mut open = Vec::new();
    while open.len() < most {
        let mut c = HttpConn::connect(addr)?;
        match c.request(&get_request(addr, "/healthz")) {
            Ok(r) if r.status == 200 => open.push(c),
            Ok(r) => bail!("connection {} answered {}", open.len(), r.status),
            Err(_) => return Ok(open),
        }
    }
    bail!("no connection refused after {most}")
}

/// Ends `conns` with a `Connection: close` request each and waits until the server has closed
/// every one of them (so their slots are free).
fn close_and_wait(conns: Vec<HttpConn>, addr: SocketAddr) -> anyhow::Result<()> {
    for mut c in conns {
        let resp = c.request(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        ensure!(
            resp.status == 200,
            "closing request answered {}",
            resp.status
        );
        ensure!(
            c.is_closed()?,
            "server kept a connection to {addr} open after close"
        );
    }
    Ok(())
}

/// `/healthz` on a fresh connection, tried a few times: the server frees a slot right as it
/// closes a connection, a hair after the client can see the close.
fn healthz_eventually(addr: SocketAddr) -> anyhow::Result<()> {
    let mut last = String::new();
    for _ in 0..50 {
        match get(addr, "/healthz") {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => last = format!("status {}", r.status),
            Err(e) => last = format!("{e:#}"),
        }
    }
    bail!("/healthz not answered: {last}")
}

#[test]
fn the_connection_cap_derived_from_the_descriptor_limit_keeps_healthz_alive() -> anyhow::Result<()>
{
    // 256 descriptors: the default cap is 256 - 128 = 128 connections.
    let server = Server::livechat_with_nofile(256, &["--executors", "2"])?;
    let addr = server.addr();
    let mut open = fill_until_refused(addr, 1000)?;
    ensure!(
        open.len() == 128,
        "{} connections admitted, want the derived cap 128; log:\n{}",
        open.len(),
        server.stderr_log()
    );
    // At the cap every new connection is refused, /healthz included...
    ensure!(
        get(addr, "/healthz").is_err(),
        "a connection beyond the cap was served"
    );
    // ... and served again as soon as a few close.
    let closing: Vec<HttpConn> = open.drain(..8).collect();
    close_and_wait(closing, addr)?;
    healthz_eventually(addr)?;
    let refused = metric(addr, "http_refused_node_cap")?;
    ensure!(refused >= 2, "http_refused_node_cap {refused}");
    // The others were never disturbed.
    for c in open.iter_mut().take(10) {
        ensure!(c.request(&get_request(addr, "/healthz"))?.status == 200);
    }
    Ok(())
}

#[test]
fn an_explicit_cap_counts_across_executors() -> anyhow::Result<()> {
    let server = Server::livechat(&["--executors", "2", "--max-connections", "40"])?;
    let addr = server.addr();
    let open = fill_until_refused(addr, 1000)?;
    ensure!(open.len() == 40, "{} admitted, want 40", open.len());
    close_and_wait(open, addr)?;
    healthz_eventually(addr)?;
    ensure!(metric(addr, "http_refused_node_cap")? >= 1);
    Ok(())
}

#[test]
fn accept_errors_back_off_log_rarely_and_recover() -> anyhow::Result<()> {
    // No cap (0) and 256 descriptors: accept itself runs out (EMFILE).
    let server = Server::livechat_with_nofile(
        256,
        &[
            "--executors",
            "2",
            "--max-connections",
            "0",
            "--max-connections-per-ip",
            "0",
        ],
    )?;
    let addr = server.addr();
    let mut conns = Vec::new();
    for _ in 0..320 {
        let mut c = HttpConn::connect(addr)?;
        c.send(&get_request(addr, "/healthz"))?;
        conns.push(c);
    }
    // Wait for the server to report running out (the first failure is logged at once).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.stderr_log().contains("accept failed") {
        ensure!(
            Instant::now() < deadline,
            "no accept failure logged; log:\n{}",
            server.stderr_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Free descriptors: the server accepts (and answers) everyone still waiting.
    conns.drain(..150);
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c
            .read_response()
            .with_context(|| format!("waiting connection {i} never answered"))?;
        ensure!(r.status == 200, "waiting connection {i}: {}", r.status);
    }
    healthz_eventually(addr)?;
    ensure!(metric(addr, "http_accept_errors")? >= 1);
    // Bounded logging: one line per accept loop per 10 s window, not one per attempt.
    let lines = server
        .stderr_log()
        .lines()
        .filter(|l| l.contains("accept failed"))
        .count();
    ensure!(lines <= 4, "{lines} accept-failure lines logged");
    Ok(())
}

// --- Per address -----------------------------------------------------------------------

#[test]
fn too_many_connections_from_one_address_get_429() -> anyhow::Result<()> {
    let server = Server::livechat(&["--executors", "2", "--max-connections-per-ip", "3"])?;
    let addr = server.addr();
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = HttpConn::connect(addr)?;
        ensure!(c.request(&get_request(addr, "/healthz"))?.status == 200);
        open.push(c);
    }
    let resp = refused_and_closed(addr, &get_request(addr, "/healthz"), 429, "4th connection")?;
    assert_rate_limited(&resp, "4th connection")?;
    ensure!(metric_after_close(addr, open, "http_refused_ip_conns")? >= 1);
    Ok(())
}

/// Closes `open` (so the address has room again) and reads a metric.
fn metric_after_close(addr: SocketAddr, open: Vec<HttpConn>, name: &str) -> anyhow::Result<u64> {
    close_and_wait(open, addr)?;
    healthz_eventually(addr)?;
    metric(addr, name)
}

#[test]
fn requests_beyond_the_burst_get_429() -> anyhow::Result<()> {
    // One executor: the bucket is exact. A rate this low refills nothing during the test.
    let server = Server::livechat(&[
        "--executors",
        "1",
        "--rest-rate",
        "0.001",
        "--rest-burst",
        "5",
    ])?;
    let addr = server.addr();
    let mut conn = HttpConn::connect(addr)?;
    let handshake = "/socket.io/?EIO=4&transport=polling";
    for i in 0..5 {
        let r = conn.request(&get_request(addr, handshake))?;
        ensure!(r.status == 200, "request {i}: {} {}", r.status, r.text());
    }
    let r = conn.request(&get_request(addr, handshake))?;
    assert_rate_limited(&r, "6th request")?;
    let retry: u64 = r.header("retry-after").unwrap_or("0").parse()?;
    ensure!(retry >= 100, "Retry-After {retry} for a rate of 0.001/s");
    // A bodiless 429 keeps the connection; /healthz is not limited.
    ensure!(conn.request(&get_request(addr, "/healthz"))?.status == 200);
    // A refused request with a body closes the connection (the body is not read).
    let post = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\n\r\n40"
    );
    let resp = conn.request(post.as_bytes())?;
    assert_rate_limited(&resp, "POST over the rate")?;
    ensure!(conn.is_closed()?, "connection kept after a refused body");
    // Every route but /healthz counts, /metrics included.
    let m = get(addr, "/metrics")?;
    assert_rate_limited(&m, "/metrics over the rate")?;
    Ok(())
}

#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() -> anyhow::Result<()> {
    let path = "/socket.io/?EIO=4&transport=polling";
    let xff = |ip: &str| format!("X-Forwarded-For: 203.0.113.7, {ip}\r\n");
    // Trusted: each forwarded client has its own bucket of 2 (the leftmost entry, written by
    // the client, is ignored: the last untrusted one counts).
    let trusted = Server::livechat(&[
        "--executors",
        "1",
        "--rest-rate",
        "0.001",
        "--rest-burst",
        "2",
        "--trusted-proxy",
        "127.0.0.1",
        "--max-connections-per-ip",
        "2",
    ])?;
    let addr = trusted.addr();
    for _ in 0..2 {
        let r =
            HttpConn::connect(addr)?.request(&request_with(addr, path, &xff("198.51.100.1")))?;
        ensure!(r.status == 200, "trusted, first client: {}", r.status);
    }
    let r = HttpConn::connect(addr)?.request(&request_with(addr, path, &xff("198.51.100.1")))?;
    assert_rate_limited(&r, "trusted, first client, 3rd request")?;
    let r = HttpConn::connect(addr)?.request(&request_with(addr, path, &xff("198.51.100.2")))?;
    ensure!(r.status == 200, "trusted, second client: {}", r.status);
    // A trusted proxy is not capped per address (it carries many clients).
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = HttpConn::connect(addr)?;
        ensure!(c.request(&get_request(addr, "/healthz"))?.status == 200);
        held.push(c);
    }
    drop(held);
    // The proxy's own requests (no header) count for the proxy: a fresh bucket here.
    ensure!(metric(addr, "http_rate_limited")? == 1);

    // Untrusted (the default): the header is ignored, every request counts for the peer.
    let untrusted = Server::livechat(&[
        "--executors",
        "1",
        "--rest-rate",
        "0.001",
        "--rest-burst",
        "2",
    ])?;
    let addr = untrusted.addr();
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let r = HttpConn::connect(addr)?.request(&request_with(addr, path, &xff(ip)))?;
        ensure!(r.status == 200, "untrusted {ip}: {}", r.status);
    }
    let r = HttpConn::connect(addr)?.request(&request_with(addr, path, &xff("198.51.100.3")))?;
    assert_rate_limited(&r, "untrusted, a third forwarded address")?;
    Ok(())
}

// --- Origins ---------------------------------------------------------------------------

#[test]
fn engine_io_refuses_browser_origins_outside_the_list() -> anyhow::Result<()> {
    let server = Server::livechat(&["--executors", "2", "--cors-origin", "https://good.example"])?;
    let addr = server.addr();
    let handshake = "/socket.io/?EIO=4&transport=polling";
    let forbidden = |resp: &HttpResponse, what: &str| -> anyhow::Result<()> {
        ensure!(
            resp.status == 403,
            "{what}: {} {}",
            resp.status,
            resp.text()
        );
        ensure!(
            resp.json()? == json!({"code": 4, "message": "Forbidden"}),
            "{what}: {}",
            resp.text()
        );
        Ok(())
    };
    let evil = "Origin: https://evil.example\r\n";
    let r = HttpConn::connect(addr)?.request(&request_with(addr, handshake, evil))?;
    forbidden(&r, "polling handshake from another origin")?;
    let r = HttpConn::connect(addr)?.request(&request_with(
        addr,
        handshake,
        "Origin: https://good.example\r\n",
    ))?;
    ensure!(r.status == 200, "allowed origin: {}", r.status);
    ensure!(r.header("access-control-allow-origin") == Some("https://good.example"));
    let r = get(addr, handshake)?;
    ensure!(r.status == 200, "no Origin (not a browser): {}", r.status);
    // A polling request on an existing session from the wrong origin.
    let sid = r.text();
    let sid = serde_json::from_str::<serde_json::Value>(sid.trim_start_matches('0'))?["sid"]
        .as_str()
        .context("sid")?
        .to_owned();
    let r = HttpConn::connect(addr)?.request(&request_with(
        addr,
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        evil,
    ))?;
    forbidden(&r, "polling GET from another origin")?;
    let ws = |origin: &str| {
        request_with(
            addr,
            "/socket.io/?EIO=4&transport=websocket",
            &format!(
                "{origin}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            ),
        )
    };
    let r = HttpConn::connect(addr)?.request(&ws(evil))?;
    forbidden(&r, "WebSocket upgrade from another origin")?;
    let r = HttpConn::connect(addr)?.request(&ws(""))?;
    ensure!(r.status == 101, "WebSocket without Origin: {}", r.status);
    let r = HttpConn::connect(addr)?.request(&ws("Origin: https://good.example\r\n"))?;
    ensure!(
        r.status == 101,
        "WebSocket from the allowed origin: {}",
        r.status
    );
    ensure!(metric(addr, "http_origin_refused")? == 3);
    Ok(())
}
