//! A raw RFC 6455 WebSocket client for black-box tests: it writes whatever frames a test asks
//! for (masked or not, fragmented, with reserved bits or unknown opcodes, one byte per write)
//! and reads the server's frames exactly as they come off the wire.
//!
//! - [`WsClient::connect`]: TCP connect, HTTP upgrade (`101` expected; `Sec-WebSocket-Accept`
//!   is not verified), 10 s read timeout, `TCP_NODELAY`.
//! - [`WsClient::send_frame`], [`WsClient::send_raw`], [`WsClient::send_byte_by_byte`]: write
//!   frames built by [`frame`] / [`frame_header`], or any bytes at all.
//! - [`WsClient::read_frame`], [`WsClient::expect_text_matching`], [`WsClient::expect_close`]:
//!   read server frames; waiting is always a blocking read, never a sleep.
//! - [`WsClient::sio_connect`]: Engine.IO open packet, Socket.IO CONNECT to `/`.
//! - [`WsClient::wait_unread`], [`WsClient::read_until_closed`]: end a connection with a reset
//!   (drop it with unread data) or wait for the server to close it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

/// How long a read may block before the server is considered silent.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The fixed `Sec-WebSocket-Key` sent by [`WsClient::connect`] (the RFC 6455 example nonce).
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// A WebSocket-only Engine.IO v4 session on the `conformance` example's Socket.IO endpoint.
pub const SIO_WS_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Continuation frame opcode.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

/// The header of one frame: FIN bit, `opcode` (low 4 bits of the first byte; the RSV bits are
/// left clear), a payload length of `len` in the shortest form (7-bit, 16-bit or 64-bit), and
/// the masking key when `mask` is given.
pub fn frame_header(fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
    out
}

/// A complete frame: [`frame_header`] followed by `payload`, XORed with `mask` when given.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len() as u64, mask);
    match mask {
        Some(mask) => out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4])),
        None => out.extend_from_slice(payload),
    }
    out
}

/// A raw WebSocket connection to the server.
#[derive(Debug)]
pub struct WsClient {
    stream: TcpStream,
    /// Bytes read but not yet parsed into frames.
    buf: Vec<u8>,
    /// Varies the masking key from frame to frame.
    frames_sent: u32,
}

impl WsClient {
    /// Connects to `addr` and upgrades `GET path_and_query` to a WebSocket; fails unless the
    /// server answers `101`. Bytes the server sends after the `101` head stay buffered for
    /// [`WsClient::read_frame`].
    pub fn connect(addr: SocketAddr, path_and_query: &str) -> anyhow::Result<WsClient> {
        let stream =
            TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut client = WsClient {
            stream,
            buf: Vec::new(),
            frames_sent: 0,
        };
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        client.send_raw(request.as_bytes())?;
        let head_end = loop {
            if let Some(i) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if client.fill()? == 0 {
                bail!(
                    "connection closed before the upgrade response (got {:?})",
                    String::from_utf8_lossy(&client.buf)
                );
            }
        };
        let head = String::from_utf8_lossy(&client.buf[..head_end]).into_owned();
        client.buf.drain(..head_end + 4);
        let status_line = head.lines().next().unwrap_or_default();
        ensure!(
            status_line.starts_with("HTTP/1.1 101"),
            "upgrade of {path_and_query} refused: {head:?}"
        );
        Ok(client)
    }

    /// Bounds how long a write may block (a server that stopped reading).
    pub fn set_write_timeout(&self, timeout: Duration) -> anyhow::Result<()> {
        self.stream.set_write_timeout(Some(timeout))?;
        Ok(())
    }

    /// Writes raw bytes in one `write_all`, returning the IO error as is (tests that expect
    /// the server to drop the connection look at its kind).
    pub fn write_io(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes raw bytes in one `write_all`.
    pub fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).context("write failed")?;
        self.stream.flush()?;
        Ok(())
    }

    /// Writes `bytes` one byte per `write` (with `TCP_NODELAY` on, so the server sees them in
    /// many small reads).
    pub fn send_byte_by_byte(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        for b in bytes {
            self.stream
                .write_all(std::slice::from_ref(b))
                .context("write failed")?;
        }
        Ok(())
    }

    /// Writes one frame; `masked` frames get a fresh masking key (clients must mask).
    pub fn send_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: &[u8],
        masked: bool,
    ) -> anyhow::Result<()> {
        let mask = masked.then(|| self.next_mask());
        self.send_raw(&frame(fin, opcode, payload, mask))
    }

    /// Writes one masked, unfragmented text frame.
    pub fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send_frame(true, OP_TEXT, text.as_bytes(), true)
    }

    /// A masking key that differs from the previous frame's.
    pub fn next_mask(&mut self) -> [u8; 4] {
        self.frames_sent = self.frames_sent.wrapping_add(1);
        (0x5A17_C3E9_u32 ^ self.frames_sent.wrapping_mul(0x9E37_79B9)).to_be_bytes()
    }

    /// Reads more bytes into the buffer. `Ok(0)`: the server closed the connection.
    fn fill(&mut self) -> anyhow::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = match self.stream.read(&mut chunk) {
            Ok(n) => n,
            // EINTR: nothing was read; read again (see `HttpConn::fill` in lib.rs).
            Err(e) if e.kind() == ErrorKind::Interrupted => return self.fill(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("nothing received within {READ_TIMEOUT:?}")
            }
            Err(e) => return Err(e).context("read failed"),
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads until the buffer holds at least `n` bytes.
    fn fill_to(&mut self, n: usize) -> anyhow::Result<()> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                bail!(
                    "connection closed mid-frame or between frames ({} buffered bytes: {:?})",
                    self.buf.len(),
                    self.buf
                );
            }
        }
        Ok(())
    }

    /// Reads one server frame: `(fin, opcode, payload)`. Fails when nothing arrives within
    /// 10 s, when the connection closes first, or when the frame is masked or has RSV bits
    /// set (a server must do neither).
    pub fn read_frame(&mut self) -> anyhow::Result<(bool, u8, Vec<u8>)> {
        self.fill_to(2)?;
        let (b0, b1) = (self.buf[0], self.buf[1]);
        ensure!(b0 & 0x70 == 0, "server frame with RSV bits: {b0:#04x}");
        ensure!(b1 & 0x80 == 0, "server frame is masked: {b1:#04x}");
        let (len, header_len) = match b1 & 0x7F {
            126 => {
                self.fill_to(4)?;
                (u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4)
            }
            127 => {
                self.fill_to(10)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(a), 10)
            }
            n => (u64::from(n), 2),
        };
        let len = usize::try_from(len).context("server frame length does not fit in usize")?;
        ensure!(len <= 64 << 20, "server frame of {len} bytes");
        self.fill_to(header_len + len)?;
        let payload = self.buf[header_len..header_len + len].to_vec();
        self.buf.drain(..header_len + len);
        Ok((b0 & 0x80 != 0, b0 & 0x0F, payload))
    }

    /// Reads frames until a complete (FIN) text frame satisfies `pred` and returns its text;
    /// other frames are skipped. Fails on a Close frame, on timeout or on EOF, naming what was
    /// skipped.
    pub fn expect_text_matching(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<String> {
        let mut skipped = Vec::new();
        loop {
            let (fin, opcode, payload) = self
                .read_frame()
                .with_context(|| format!("frames skipped so far: {skipped:?}"))?;
            if opcode == OP_CLOSE {
                bail!(
                    "server sent Close {:?} while a text frame was expected (skipped: {skipped:?})",
                    close_code(&payload)
                );
            }
            if fin && opcode == OP_TEXT {
                let text = String::from_utf8(payload).context("server text frame not UTF-8")?;
                if pred(&text) {
                    return Ok(text);
                }
                skipped.push(format!("text {text:?}"));
            } else {
                skipped.push(format!("fin={fin} opcode={opcode:#x} payload={payload:?}"));
            }
        }
    }

    /// Reads frames (skipping others) until a Close frame and returns its status code (`None`:
    /// empty payload), then checks that the server closes the TCP connection: the next read
    /// returns 0 or fails with an error other than a timeout, and no byte follows the Close.
    pub fn expect_close(&mut self) -> anyhow::Result<Option<u16>> {
        let mut skipped = Vec::new();
        let code = loop {
            let (fin, opcode, payload) = self
                .read_frame()
                .with_context(|| format!("no Close frame; frames skipped: {skipped:?}"))?;
            if opcode == OP_CLOSE {
                ensure!(fin, "fragmented Close frame");
                break close_code(&payload)?;
            }
            skipped.push(format!("fin={fin} opcode={opcode:#x} payload={payload:?}"));
        };
        ensure!(
            self.buf.is_empty(),
            "bytes after the Close frame: {:?}",
            self.buf
        );
        let mut chunk = [0u8; 1024];
        loop {
            return match self.stream.read(&mut chunk) {
                Ok(0) => Ok(code),
                Ok(n) => bail!("bytes after the Close frame: {:?}", &chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue, // EINTR: read again
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    bail!("connection still open {READ_TIMEOUT:?} after the Close frame")
                }
                Err(_) => Ok(code), // reset: closed all the same
            };
        }
    }

    /// Reads the Engine.IO open packet `0{"sid":...}` and returns the sid.
    pub fn expect_open(&mut self) -> anyhow::Result<String> {
        let open = self.expect_text_matching(|t| t.starts_with('0'))?;
        let json: serde_json::Value = serde_json::from_str(&open[1..])
            .with_context(|| format!("bad open packet {open:?}"))?;
        json.get("sid")
            .and_then(|s| s.as_str())
            .map(str::to_owned)
            .with_context(|| format!("open packet without sid: {open:?}"))
    }

    /// Reads the open packet, sends the Socket.IO CONNECT `40` and waits for both the
    /// `40{"sid":...}` reply and the `42["auth",...]` event the conformance example emits on
    /// connect (in either order), so the next frame read is an answer to what the test sends.
    /// Returns the Engine.IO sid.
    pub fn sio_connect(&mut self) -> anyhow::Result<String> {
        let sid = self.expect_open()?;
        self.send_text("40")?;
        self.expect_sio_connected()?;
        Ok(sid)
    }

    /// Waits for the `40{"sid":...}` CONNECT reply and the `42["auth",...]` event (in either
    /// order), skipping other frames.
    pub fn expect_sio_connected(&mut self) -> anyhow::Result<()> {
        let (mut connected, mut auth) = (false, false);
        while !(connected && auth) {
            let text = self.expect_text_matching(|t| {
                t.starts_with(r#"40{"sid":"#) || t.starts_with(r#"42["auth","#)
            })?;
            connected |= text.starts_with("40");
            auth |= text.starts_with("42");
        }
        Ok(())
    }
}

/// The status code of a Close frame's payload: `None` when empty; an error for a 1-byte
/// payload or a reason that is not UTF-8.
pub fn close_code(payload: &[u8]) -> anyhow::Result<Option<u16>> {
    match payload {
        [] => Ok(None),
        [_] => bail!("Close frame with a 1-byte payload"),
        [a, b, reason @ ..] => {
            std::str::from_utf8(reason).context("Close reason is not UTF-8")?;
            Ok(Some(u16::from_be_bytes([*a, *b])))
        }
    }
}

impl WsClient {
    /// Blocks until the server has sent something this client has not read yet (already
    /// buffered, or waiting in the socket), or the connection is closed. Dropping the client
    /// then makes the kernel answer with a reset (RST) instead of a FIN: unread data was lost.
    pub fn wait_unread(&self) -> anyhow::Result<()> {
        if !self.buf.is_empty() {
            return Ok(());
        }
        let mut byte = [0u8; 1];
        match self.stream.peek(&mut byte) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("nothing received within {READ_TIMEOUT:?}")
            }
            Err(e) => Err(e).context("peek failed"),
        }
    }

    /// Reads and discards everything until the server closes the connection (EOF or reset);
    /// fails if it stays open and silent for 10 s.
    pub fn read_until_closed(&mut self) -> anyhow::Result<()> {
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {} // EINTR: read again
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    bail!("connection still open after {READ_TIMEOUT:?} of silence")
                }
                Err(_) => return Ok(()), // reset: closed all the same
            }
        }
    }
}
