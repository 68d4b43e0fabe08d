//! A WebSocket client that stops reading: its session is closed once its outbound queue passes
//! `max_queued_packets`, and the server drops the TCP connection a bounded time later even
//! though the client never reads what is left (no descriptor and no unsent bytes held for a
//! dead reader), while everyone else is still served.
//!
//! The `conformance` example echoes `message` as `message-back`; the client sends large
//! messages and never reads the echoes, so they fill the socket buffers and then the session's
//! queue (limit 50 here). Waiting is a blocking write with a timeout: it fails with a reset or
//! broken pipe once the server has dropped the connection, and times out if it never does.

use std::io::ErrorKind;
use std::time::Duration;

use anyhow::{bail, Context};
use livechat_tests::ws::{frame, WsClient, OP_TEXT, SIO_WS_PATH};
use livechat_tests::Server;

/// Longer than the server's close linger (2 s) plus the time to fill the buffers.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// Enough echoes to fill both loopback socket buffers (a few MiB each) many times over.
const MAX_MESSAGES: usize = 5_000;

fn echo_works(ws: &mut WsClient, text: &str) -> anyhow::Result<()> {
    ws.send_text(&format!(r#"42["message","{text}"]"#))?;
    let want = format!(r#"42["message-back","{text}"]"#);
    let got = ws.expect_text_matching(|t| t.starts_with("42"))?;
    anyhow::ensure!(got == want, "echo: got {got:?}, want {want:?}");
    Ok(())
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_others_are_served() -> anyhow::Result<()> {
    for executors in ["1", "2"] {
        let server = Server::conformance(executors, &["--max-queued-packets", "50"])?;
        let addr = server.addr();
        let result = (|| -> anyhow::Result<()> {
            let mut bystander = WsClient::connect(addr, SIO_WS_PATH)?;
            bystander.sio_connect()?;

            let mut slow = WsClient::connect(addr, SIO_WS_PATH)?;
            slow.sio_connect()?;
            slow.set_write_timeout(WRITE_TIMEOUT)?;
            let text = "x".repeat(32 * 1024);
            let msg = format!(r#"42["message","{text}"]"#);
            let mut sent = 0;
            let outcome = loop {
                if sent == MAX_MESSAGES {
                    break None;
                }
                let bytes = frame(true, OP_TEXT, msg.as_bytes(), Some(slow.next_mask()));
                if let Err(e) = slow.write_io(&bytes) {
                    break Some(e);
                }
                sent += 1;
            };
            match outcome {
                Some(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
                Some(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    bail!("after {sent} messages the server neither read more nor closed the connection within {WRITE_TIMEOUT:?}")
                }
                Some(e) => bail!("unexpected write error after {sent} messages: {e}"),
                None => bail!("the server read all {MAX_MESSAGES} messages without closing the non-reading client"),
            }
            // The bystander was never disturbed, and a new client is served too.
            echo_works(&mut bystander, "still here").context("bystander")?;
            let mut fresh = WsClient::connect(addr, SIO_WS_PATH)?;
            fresh.sio_connect()?;
            echo_works(&mut fresh, "fresh").context("fresh client")?;
            Ok(())
        })();
        result.with_context(|| {
            format!(
                "--executors {executors} ({addr}); server log:\n{}",
                server.stderr_log()
            )
        })?;
    }
    Ok(())
}
