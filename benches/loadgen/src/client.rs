//! One Socket.IO v5 client on an Engine.IO v4 WebSocket (no polling), built on the gateway's own
//! codec (`engineio::packet`, `socketio::packet`).
//!
//! [`SioClient::connect`] opens `ws://HOST/socket.io/?EIO=4&transport=websocket&<query>`, reads
//! the open packet, sends `40` (CONNECT to `/`) and waits for `40{"sid":..}`. [`SioClient::recv`]
//! answers server pings (`2` → `3`) and hands back Socket.IO packets. Buffers are small (4 KiB
//! read buffer) so tens of thousands of clients fit in one process; [`Dialer`] bounds how many
//! handshakes run at once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use livechat_gateway::engineio::packet::{self as eio, Inbound};
use livechat_gateway::socketio::packet::{self as sio, PacketKind, Payload};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Where the server is: `http://127.0.0.1:3000` (path defaults to `/socket.io/`).
#[derive(Debug, Clone)]
pub struct Target {
    /// Resolved address.
    pub addr: SocketAddr,
    /// `host:port` as given (Host header).
    pub host: String,
    /// Engine.IO path, e.g. `/socket.io/`.
    pub path: String,
}

impl Target {
    /// Parses `http://HOST:PORT[/path/]` or `ws://...`.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = ["http://", "ws://"]
            .iter()
            .find_map(|p| url.strip_prefix(p))
            .unwrap_or(url);
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path == "/" { "/socket.io/" } else { path };
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} resolves to nothing"))?;
        Ok(Self {
            addr,
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Source address for connection `i` when spreading over `k` loopback addresses
    /// (127.0.0.1..=127.0.0.k), each with its own ephemeral port range; `None` when `k <= 1`
    /// or the server is not on loopback.
    pub fn source_ip(&self, i: usize, k: usize) -> Option<IpAddr> {
        if k <= 1 || !self.addr.ip().is_loopback() || !self.addr.is_ipv4() {
            return None;
        }
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % k) as u8)))
    }
}

/// Loopback source addresses needed for `n` connections (one ephemeral range holds ~28k).
pub fn auto_source_ips(n: usize) -> usize {
    n.div_ceil(25_000).clamp(1, 200)
}

/// Opens a TCP connection with `TCP_NODELAY`, optionally from `source`.
pub async fn tcp_connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let s = sock.connect(addr).await.context("tcp connect")?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// A received Socket.IO packet (the Engine.IO message frame, `4` included).
#[derive(Debug, Clone)]
pub struct SioPacket(Utf8Bytes);

impl SioPacket {
    /// Decodes it with the gateway's Socket.IO decoder (borrowing from the frame).
    pub fn decode(&self) -> Result<sio::Packet<'_>, sio::PacketError> {
        sio::decode(&self.0.as_str()[1..])
    }

    /// The event name and first argument (raw JSON), if this is an EVENT.
    pub fn event(&self) -> Option<(String, Option<String>)> {
        match self.decode().ok()?.payload {
            Payload::Event { name, args } => {
                Some((name.into_owned(), args.first().map(|a| a.get().to_owned())))
            }
            _ => None,
        }
    }
}

/// One connected Socket.IO client.
pub struct SioClient {
    ws: WebSocketStream<TcpStream>,
    pending: VecDeque<Utf8Bytes>,
    /// The Socket.IO socket id from the CONNECT reply.
    pub sid: String,
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

#[derive(serde::Deserialize)]
struct Sid {
    sid: String,
}

impl SioClient {
    /// Connects, completes the Engine.IO open and the Socket.IO CONNECT to `/`.
    pub async fn connect(t: &Target, query: &str, source: Option<IpAddr>) -> Result<Self> {
        let stream = tcp_connect(t.addr, source).await?;
        let sep = if query.is_empty() { "" } else { "&" };
        let url = format!(
            "ws://{}{}?EIO=4&transport=websocket{sep}{query}",
            t.host, t.path
        );
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
            .await
            .context("websocket handshake")?;
        let mut c = Self {
            ws,
            pending: VecDeque::new(),
            sid: String::new(),
        };
        let open = c
            .next_text()
            .await?
            .context("closed before the open packet")?;
        let Some(json) = open.as_str().strip_prefix('0') else {
            bail!(
                "expected the Engine.IO open packet, got {:?}",
                open.as_str()
            );
        };
        let _: Sid = serde_json::from_str(json).context("open packet")?;
        c.send_text("40".to_owned()).await?;
        loop {
            let text = c
                .next_text()
                .await?
                .context("closed before the CONNECT reply")?;
            match eio::decode_text(&text) {
                Ok(Inbound::Ping(_)) => c.send_text("3".to_owned()).await?,
                Ok(Inbound::Message(m)) => {
                    let p = sio::decode(m).map_err(|e| anyhow!("{e}: {m:?}"))?;
                    match (p.kind, &p.payload) {
                        (PacketKind::Connect, Payload::Raw(raw)) => {
                            let sid: Sid = serde_json::from_str(raw.get())?;
                            c.sid = sid.sid;
                            return Ok(c);
                        }
                        (PacketKind::ConnectError, _) => bail!("CONNECT refused: {m}"),
                        _ => c.pending.push_back(text.clone()),
                    }
                }
                Ok(Inbound::Close) => bail!("closed by the server during CONNECT"),
                _ => {}
            }
        }
    }

    async fn next_text(&mut self) -> Result<Option<Utf8Bytes>> {
        loop {
            match self.ws.next().await {
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Ok(None)
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => return Ok(Some(t)),
                Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next Socket.IO packet; answers pings on the way. `None` once the server closed.
    pub async fn recv(&mut self) -> Result<Option<SioPacket>> {
        if let Some(t) = self.pending.pop_front() {
            return Ok(Some(SioPacket(t)));
        }
        loop {
            let Some(text) = self.next_text().await? else {
                return Ok(None);
            };
            let kind = match eio::decode_text(&text) {
                Ok(Inbound::Message(_)) => 4,
                Ok(Inbound::Ping(_)) => 2,
                Ok(Inbound::Close) => 1,
                _ => 0,
            };
            match kind {
                4 => return Ok(Some(SioPacket(text))),
                2 => self.send_text("3".to_owned()).await?,
                1 => return Ok(None),
                _ => {}
            }
        }
    }

    /// Sends one Engine.IO text packet (type digit included) and flushes.
    pub async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends several text packets with one flush.
    pub async fn send_batch(&mut self, texts: impl IntoIterator<Item = String>) -> Result<()> {
        for t in texts {
            self.ws.feed(Message::text(t)).await?;
        }
        self.ws.flush().await?;
        Ok(())
    }
}

/// Encodes `42["<event>",<arg>]` (or `42<ack>[...]`) with the gateway's encoder.
pub fn encode_event(event: &str, ack: Option<u64>, arg: &str) -> String {
    let mut out = Vec::with_capacity(16 + event.len() + arg.len());
    out.push(b'4');
    sio::encode_event(&mut out, "/", ack, 0, event, &[arg]);
    // The encoder writes UTF-8 (JSON text and ASCII digits around it).
    String::from_utf8(out).unwrap_or_default()
}

/// Bounds concurrent handshakes and counts outcomes.
#[derive(Debug)]
pub struct Dialer {
    sem: Semaphore,
    timeout: Duration,
    /// Connections completed (CONNECT acknowledged).
    pub connected: Cell<usize>,
    /// Connections that failed.
    pub failed: Cell<usize>,
    /// The first failure, for the report.
    pub first_error: RefCell<Option<String>>,
}

impl Dialer {
    /// At most `concurrency` handshakes at once, each bounded by `timeout`.
    pub fn new(concurrency: usize, timeout: Duration) -> Self {
        Self {
            sem: Semaphore::new(concurrency.max(1)),
            timeout,
            connected: Cell::new(0),
            failed: Cell::new(0),
            first_error: RefCell::new(None),
        }
    }

    /// Runs `f` (a connection set-up) under the concurrency bound and timeout, counting it.
    pub async fn run<T, F>(&self, f: F) -> Option<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let _permit = self.sem.acquire().await.ok()?;
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => {
                self.connected.set(self.connected.get() + 1);
                Some(v)
            }
            Ok(Err(e)) => {
                self.fail(format!("{e:#}"));
                None
            }
            Err(_) => {
                self.fail("set-up timed out".into());
                None
            }
        }
    }

    fn fail(&self, e: String) {
        self.failed.set(self.failed.get() + 1);
        self.first_error.borrow_mut().get_or_insert(e);
    }

    /// Waits until `n` set-ups have finished (either way) or `limit` passed.
    pub async fn wait_for(&self, n: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.connected.get() + self.failed.get() < n && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
