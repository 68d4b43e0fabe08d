//! WebSocket framing against the `conformance` example, over real TCP with a raw client
//! ([`livechat_tests::ws`]): invalid client frames are refused with a Close frame carrying the
//! RFC 6455 status (1002 protocol error, 1007 invalid UTF-8, 1009 too big) followed by the end
//! of the TCP connection; pings are answered with pongs; fragmented messages (with a control
//! frame between fragments) and frames trickling in one byte per write are reassembled; a
//! client Close is answered with a Close.
//!
//! Every test runs against a server with `--executors 1` and one with `--executors 2`, and
//! ends by checking that a fresh, well-behaved WebSocket client still gets its echo. Heartbeats
//! are set to 60 s so Engine.IO pings never interfere; waiting is always a blocking read.

use std::net::SocketAddr;

use anyhow::Context;
use livechat_tests::ws::{
    frame, frame_header, WsClient, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
    SIO_WS_PATH,
};
use livechat_tests::Server;

/// The conformance example's `maxPayload`.
const MAX_PAYLOAD: u64 = 1_000_000;

/// Runs `test` against the conformance server with 1 and with 2 executors; afterwards a fresh,
/// well-behaved WebSocket client must still be served by the same server.
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

/// A well-behaved WebSocket-only Socket.IO client: open, `40`, an echoed `message`, then a
/// clean close handshake.
fn assert_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    let mut ws = connected(addr)?;
    echo_works(&mut ws, "x")?;
    ws.send_frame(true, OP_CLOSE, &1000u16.to_be_bytes(), true)?;
    assert_eq!(ws.expect_close()?, Some(1000), "close handshake");
    Ok(())
}

/// A fresh WebSocket-only session, connected to namespace `/`, with nothing left to read.
fn connected(addr: SocketAddr) -> anyhow::Result<WsClient> {
    let mut ws = WsClient::connect(addr, SIO_WS_PATH)?;
    ws.sio_connect()?;
    Ok(ws)
}

/// `42["message",TEXT]` comes back as `42["message-back",TEXT]` on `ws`.
fn echo_works(ws: &mut WsClient, text: &str) -> anyhow::Result<()> {
    let arg = serde_json::to_string(text)?;
    ws.send_text(&format!(r#"42["message",{arg}]"#))?;
    let want = format!(r#"42["message-back",{arg}]"#);
    ws.expect_text_matching(|t| t == want)
        .with_context(|| format!("no echo of {text:?}"))?;
    Ok(())
}

/// On a fresh connected session, `bytes` (one write) make the server answer a Close frame with
/// `code` and then close the TCP connection.
fn assert_refused(addr: SocketAddr, bytes: &[u8], code: u16, what: &str) -> anyhow::Result<()> {
    let mut ws = connected(addr).with_context(|| format!("{what}: connect"))?;
    ws.send_raw(bytes)
        .with_context(|| format!("{what}: send {bytes:?}"))?;
    let got = ws
        .expect_close()
        .with_context(|| format!("{what}: after sending {bytes:?}"))?;
    assert_eq!(got, Some(code), "{what}: close code (sent {bytes:?})");
    Ok(())
}

/// A masking key for hand-built frames.
const MASK: Option<[u8; 4]> = Some([0x3C, 0xA5, 0x0F, 0x96]);

// --- refused frames -------------------------------------------------------------------------

#[test]
fn unmasked_client_frame_gets_1002() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let bytes = frame(true, OP_TEXT, br#"42["message","x"]"#, None);
        assert_refused(addr, &bytes, 1002, "unmasked text frame")
    })
}

#[test]
fn reserved_bits_get_1002() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        for (rsv, name) in [(0x40, "RSV1"), (0x20, "RSV2"), (0x10, "RSV3")] {
            let mut bytes = frame(true, OP_TEXT, br#"42["message","x"]"#, MASK);
            bytes[0] |= rsv;
            assert_refused(addr, &bytes, 1002, &format!("text frame with {name}"))?;
        }
        Ok(())
    })
}

#[test]
fn unknown_opcodes_get_1002() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        // 0x3 is a reserved data opcode, 0xB a reserved control opcode.
        for opcode in [0x3, 0xB] {
            let bytes = frame(true, opcode, b"x", MASK);
            assert_refused(addr, &bytes, 1002, &format!("opcode {opcode:#x}"))?;
        }
        Ok(())
    })
}

#[test]
fn fragmented_or_oversized_ping_gets_1002() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let fragmented = frame(false, OP_PING, b"hb", MASK);
        assert_refused(addr, &fragmented, 1002, "ping with FIN=0")?;
        let oversized = frame(true, OP_PING, &[b'p'; 126], MASK);
        assert_refused(addr, &oversized, 1002, "ping with a 126-byte payload")
    })
}

#[test]
fn continuation_without_a_message_gets_1002() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let bytes = frame(true, OP_CONTINUATION, br#"42["message","x"]"#, MASK);
        assert_refused(addr, &bytes, 1002, "continuation with no message started")?;
        // And a new data frame while a fragmented message is still open.
        let mut bytes = frame(false, OP_TEXT, br#"42["mess"#, MASK);
        bytes.extend(frame(true, OP_TEXT, br#"42["message","x"]"#, MASK));
        assert_refused(addr, &bytes, 1002, "text frame inside a fragmented message")
    })
}

#[test]
fn invalid_utf8_text_gets_1007() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let unfragmented = frame(true, OP_TEXT, b"42[\"message\",\"\xff\xfe\"]", MASK);
        assert_refused(addr, &unfragmented, 1007, "text frame with invalid UTF-8")?;
        // A 2-byte sequence split across fragments is fine; an invalid one is not.
        let mut fragmented = frame(false, OP_TEXT, b"42[\"message\",\"\xc3", MASK);
        fragmented.extend(frame(true, OP_CONTINUATION, b"(\"]", MASK));
        assert_refused(
            addr,
            &fragmented,
            1007,
            "fragmented text with invalid UTF-8",
        )
    })
}

#[test]
fn header_announcing_more_than_max_payload_gets_1009_at_once() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        // 2,000,000 bytes announced in the 64-bit length form; no payload follows, so an answer
        // within the read timeout means the server refused the header alone.
        let header = frame_header(true, OP_TEXT, 2 * MAX_PAYLOAD, MASK);
        assert_eq!(header[1], 0x80 | 127, "64-bit length form");
        assert_refused(
            addr,
            &header,
            1009,
            "text header announcing 2,000,000 bytes",
        )?;
        let header = frame_header(true, OP_BINARY, MAX_PAYLOAD + 1, MASK);
        assert_refused(
            addr,
            &header,
            1009,
            "binary header announcing maxPayload + 1",
        )
    })
}

// --- frames that are served -------------------------------------------------------------------

#[test]
fn ping_is_answered_with_a_pong_carrying_its_payload() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let mut ws = connected(addr)?;
        ws.send_frame(true, OP_PING, b"hb", true)?;
        let (fin, opcode, payload) = ws.read_frame()?;
        assert_eq!(
            (fin, opcode, payload.as_slice()),
            (true, OP_PONG, &b"hb"[..]),
            "answer to ping \"hb\""
        );
        // An empty ping too.
        ws.send_frame(true, OP_PING, b"", true)?;
        assert_eq!(ws.read_frame()?, (true, OP_PONG, Vec::new()), "empty ping");
        echo_works(&mut ws, "after ping")
    })
}

#[test]
fn fragmented_message_with_interleaved_ping_is_reassembled() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let mut ws = connected(addr)?;
        ws.send_frame(false, OP_TEXT, br#"42["mes"#, true)?;
        ws.send_frame(true, OP_PING, b"p1", true)?;
        ws.send_frame(false, OP_CONTINUATION, br#"sage","f"#, true)?;
        ws.send_frame(true, OP_CONTINUATION, br#"rag"]"#, true)?;
        // The pong answers the ping at once, before the message is complete.
        let pong = ws.read_frame()?;
        assert_eq!(
            pong,
            (true, OP_PONG, b"p1".to_vec()),
            "pong between fragments"
        );
        let (fin, opcode, payload) = ws.read_frame()?;
        assert_eq!(
            (fin, opcode, String::from_utf8_lossy(&payload).as_ref()),
            (true, OP_TEXT, r#"42["message-back","frag"]"#),
            "echo of the reassembled message"
        );
        // All fragments in one write, split mid-UTF-8 sequence ("é" = C3 A9).
        let mut bytes = frame(false, OP_TEXT, b"42[\"message\",\"caf\xc3", MASK);
        bytes.extend(frame(true, OP_PING, b"p2", MASK));
        bytes.extend(frame(true, OP_CONTINUATION, b"\xa9\"]", MASK));
        ws.send_raw(&bytes)?;
        assert_eq!(ws.read_frame()?, (true, OP_PONG, b"p2".to_vec()), "pong");
        let echo = ws.expect_text_matching(|_| true)?;
        assert_eq!(echo, r#"42["message-back","café"]"#);
        echo_works(&mut ws, "after fragments")
    })
}

#[test]
fn frames_written_one_byte_per_write_are_understood() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let mut ws = WsClient::connect(addr, SIO_WS_PATH)?;
        ws.expect_open()?;
        // The CONNECT itself, byte by byte.
        let connect = frame(true, OP_TEXT, b"40", Some(ws.next_mask()));
        ws.send_byte_by_byte(&connect)?;
        ws.expect_sio_connected()?;
        // A short frame, and one with the 16-bit length form.
        for text in ["slow".to_owned(), "y".repeat(300)] {
            let msg = format!(r#"42["message","{text}"]"#);
            let bytes = frame(true, OP_TEXT, msg.as_bytes(), Some(ws.next_mask()));
            ws.send_byte_by_byte(&bytes)?;
            let want = format!(r#"42["message-back","{text}"]"#);
            let got = ws.expect_text_matching(|_| true)?;
            assert_eq!(got, want, "echo of a {}-byte frame", bytes.len());
        }
        // A ping, byte by byte.
        let ping = frame(true, OP_PING, b"hb", Some(ws.next_mask()));
        ws.send_byte_by_byte(&ping)?;
        assert_eq!(ws.read_frame()?, (true, OP_PONG, b"hb".to_vec()), "pong");
        echo_works(&mut ws, "fast again")
    })
}

#[test]
fn client_close_is_answered_with_close() -> anyhow::Result<()> {
    on_both_servers(|addr| {
        let mut ws = connected(addr)?;
        ws.send_frame(true, OP_CLOSE, &1000u16.to_be_bytes(), true)?;
        assert_eq!(ws.expect_close()?, Some(1000), "Close 1000");
        // A Close without a status code is answered with 1000 as well.
        let mut ws = connected(addr)?;
        ws.send_frame(true, OP_CLOSE, b"", true)?;
        assert_eq!(ws.expect_close()?, Some(1000), "empty Close");
        Ok(())
    })
}
