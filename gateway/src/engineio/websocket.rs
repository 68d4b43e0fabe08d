//! The WebSocket transport: one task per WebSocket connection, reading frames and draining the
//! session's outbound queue, plus the polling → WebSocket upgrade (`2probe`, `3probe`, `5`).

use std::borrow::Cow;
use std::rc::Rc;

use async_tungstenite::WebSocketStream;
use futures_lite::{future, AsyncWriteExt};
use futures_util::{SinkExt, StreamExt};
use glommio::net::TcpStream;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};

use super::packet::{decode_text, Frame, Inbound};
use super::session::Upgrade;
use super::{Engine, Handshake, Session, Transport};
use crate::error::{CloseReason, EngineErrorCode, GatewayError};
use crate::http::Response;

type Ws = WebSocketStream<TcpStream>;

/// A WebSocket request that passed the HTTP checks, ready to be served on the session owner.
#[derive(Debug)]
pub struct WsRequest {
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// The sid to upgrade, or `None` for a WebSocket-only session.
    pub sid: Option<String>,
    /// The request, for new sessions.
    pub handshake: Handshake,
    /// Bytes read past the request head (normally none).
    pub leftover: Vec<u8>,
}

fn ws_config(max_payload: usize) -> WebSocketConfig {
    // tungstenite's 128 KiB default buffers would cost 256 KiB per idle connection; chat
    // messages are small, and the buffers grow on demand for the rare large one.
    WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(0)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
}

/// Serves a WebSocket connection whose session (if any) this executor owns.
pub async fn serve(engine: Rc<Engine>, mut stream: TcpStream, req: WsRequest) {
    // `Some(None)`: the sid exists but cannot be upgraded (already on WebSocket, or another
    // upgrade in progress): like the reference server, accept the WebSocket and close it.
    let upgrading = match &req.sid {
        Some(sid) => match engine.session(sid) {
            Some(s)
                if s.transport() == Transport::Polling && s.upgrade_state() == Upgrade::None =>
            {
                Some(Some(s))
            }
            Some(_) => Some(None),
            None => {
                let err = GatewayError::Refused(EngineErrorCode::SessionIdUnknown);
                let _ = stream
                    .write_all(&Response::engine_error(&err).to_bytes())
                    .await;
                return;
            }
        },
        None => None,
    };
    let accept = tungstenite::handshake::derive_accept_key(req.key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let cfg = ws_config(engine.config().max_payload);
    let mut ws =
        WebSocketStream::from_partially_read(stream, req.leftover, Role::Server, Some(cfg)).await;
    let session = match upgrading {
        Some(None) => {
            let _ = ws.close(None).await;
            return;
        }
        Some(Some(session)) => {
            session.set_upgrade_state(Upgrade::Pending);
            let timeout = engine.config().upgrade_timeout;
            let done = future::or(probe(&session, &mut ws), async {
                glommio::timer::sleep(timeout).await;
                false
            })
            .await;
            if !done || session.is_closed() {
                if session.upgrade_state() != Upgrade::None && !session.is_closed() {
                    session.set_upgrade_state(Upgrade::None);
                }
                let _ = ws.close(None).await;
                return;
            }
            session.switch_to_websocket();
            session
        }
        None => {
            let (session, open) = engine.open(req.handshake, Transport::WebSocket);
            if send_frame(&mut ws, open).await.is_err() {
                session.close(CloseReason::TransportError);
                return;
            }
            session
        }
    };
    let (sink, frames) = ws.split();
    let reason = future::or(
        read_loop(&engine, &session, frames),
        write_loop(&session, sink),
    )
    .await;
    session.close(reason);
}

/// The upgrade handshake on the new WebSocket. Returns true once `5` arrived after a probe.
async fn probe(session: &Rc<Session>, ws: &mut Ws) -> bool {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else {
            if matches!(msg, Message::Close(_)) {
                return false;
            }
            continue;
        };
        match decode_text(&text) {
            Ok(Inbound::Ping("probe")) => {
                if send_frame(ws, Frame::Text(bytes::Bytes::from_static(b"3probe")))
                    .await
                    .is_err()
                {
                    return false;
                }
                session.set_upgrade_state(Upgrade::Probed);
                session.release_get();
            }
            Ok(Inbound::Upgrade) if session.upgrade_state() == Upgrade::Probed => return true,
            _ => return false,
        }
    }
    false
}

async fn read_loop(
    engine: &Rc<Engine>,
    session: &Rc<Session>,
    mut frames: async_tungstenite::WebSocketReceiver<TcpStream>,
) -> CloseReason {
    while let Some(msg) = frames.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(sid = session.sid(), error = %e, "websocket read failed");
                return CloseReason::TransportError;
            }
        };
        match msg {
            Message::Text(text) => match decode_text(&text) {
                Ok(p) => engine.receive(session, p),
                Err(_) => return CloseReason::ParseError,
            },
            Message::Binary(data) => engine.receive(session, Inbound::Binary(Cow::Borrowed(&data))),
            Message::Close(_) => return CloseReason::TransportClose,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        if session.is_closed() {
            // Give the writer a chance to flush what the handler queued before closing.
            future::pending::<()>().await;
        }
    }
    CloseReason::TransportClose
}

async fn write_loop(
    session: &Rc<Session>,
    mut sink: async_tungstenite::WebSocketSender<TcpStream>,
) -> CloseReason {
    let mut batch = Vec::new();
    loop {
        session.drain_into(&mut batch);
        if batch.is_empty() {
            if session.is_closed() {
                let _ = sink.close(None).await;
                return CloseReason::ServerClose;
            }
            session.writable.wait().await;
            continue;
        }
        for frame in batch.drain(..) {
            if sink.feed(to_message(frame)).await.is_err() {
                return CloseReason::TransportError;
            }
        }
        if sink.flush().await.is_err() {
            return CloseReason::TransportError;
        }
    }
}

async fn send_frame(ws: &mut Ws, frame: Frame) -> Result<(), tungstenite::Error> {
    ws.send(to_message(frame)).await
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(b) => Message::Text(text_bytes(b)),
        Frame::Binary(b) => Message::Binary(b),
    }
}

#[allow(unsafe_code)]
fn text_bytes(b: bytes::Bytes) -> Utf8Bytes {
    // SAFETY: `Frame::Text` is only built from UTF-8 (JSON we encoded, or our own literals;
    // `Frame::text` asserts it in debug builds). Re-validating every frame for every receiver
    // of a broadcast would cost a full scan per delivery.
    unsafe { Utf8Bytes::from_bytes_unchecked(b) }
}
