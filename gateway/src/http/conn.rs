//! One TCP connection: the HTTP/1.1 keep-alive loop, routing, and hand-over to the WebSocket
//! transport or to the executor that owns a polling session.
//!
//! Lives on: the executor that accepted the connection. A WebSocket upgrade for a session owned
//! elsewhere moves the socket to the owner (see `runtime::handoff`) before the 101 is written.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use tracing::Instrument;

use super::request::{decode_chunked, parse_head, BodyFraming, RequestHead};
use super::{query_param, Response};
use crate::engineio::polling::{self, PollKind, PollReply, PollRequest};
use crate::engineio::websocket::{self, WsRequest};
use crate::engineio::{Engine, Handshake, Transport};
use crate::error::{EngineErrorCode, GatewayError};
use crate::runtime::{handoff, LocalApp, MeshMsg, Node, ResponseFuture};

/// How long an idle keep-alive connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const READ_CHUNK: usize = 2048;

/// What a path is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    Engine,
}

/// The per-executor HTTP front door: routes and the Engine.IO server behind them.
///
/// Lives on: one executor.
pub struct HttpContext {
    node: Rc<Node>,
    engine: Rc<Engine>,
    app: Rc<dyn LocalApp>,
    router: matchit::Router<Route>,
}

impl std::fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext").finish_non_exhaustive()
    }
}

impl HttpContext {
    /// Routes for this executor.
    pub fn new(node: Rc<Node>, engine: Rc<Engine>, app: Rc<dyn LocalApp>) -> Rc<Self> {
        let mut router = matchit::Router::new();
        let path = node.config().path.clone();
        let trimmed = path.trim_end_matches('/').to_owned();
        // Both spellings, like the reference server's prefix match.
        let _ = router.insert(format!("{trimmed}/"), Route::Engine);
        let _ = router.insert(trimmed, Route::Engine);
        let _ = router.insert("/healthz", Route::Health);
        Rc::new(Self {
            node,
            engine,
            app,
            router,
        })
    }

    /// The Engine.IO server of this executor.
    pub fn engine(&self) -> &Rc<Engine> {
        &self.engine
    }
}

/// What to do with a request.
enum Action {
    Respond(Response),
    App(ResponseFuture),
    Poll { sid: String, kind: PollKind },
    WebSocket(WsRequest),
}

/// Serves one accepted connection until it closes or becomes a WebSocket.
pub async fn serve(ctx: Rc<HttpContext>, mut stream: TcpStream, peer: SocketAddr) {
    let mut buf = Vec::new();
    loop {
        let head = match read_head(&mut stream, &mut buf, &ctx.node).await {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                let _ = stream
                    .write_all(&Response::engine_error(&e).to_bytes())
                    .await;
                return;
            }
        };
        let body =
            match read_body(&mut stream, &mut buf, &head, ctx.node.config().max_payload).await {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    let _ = stream
                        .write_all(&Response::engine_error(&e).to_bytes())
                        .await;
                    return;
                }
            };
        let origin = head.header("origin").map(str::to_owned);
        let cors = &ctx.node.config().cors;
        let action = route(&ctx, &head, body, peer);
        let mut resp = match action {
            Action::Respond(r) => r,
            Action::App(fut) => fut.await,
            Action::WebSocket(mut req) => {
                req.leftover = std::mem::take(&mut buf);
                upgrade(&ctx, stream, req).await;
                return;
            }
            Action::Poll { sid, kind } => {
                match poll(&ctx, &mut stream, &mut buf, sid, kind).await {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        if !resp
            .headers
            .iter()
            .any(|(k, _)| *k == "Access-Control-Allow-Origin")
        {
            resp = resp.with_cors(cors, origin.as_deref());
        }
        if !head.keep_alive {
            resp.close = true;
        }
        if stream.write_all(&resp.to_bytes()).await.is_err() || resp.close {
            return;
        }
        if buf.capacity() > 4 * READ_CHUNK && buf.is_empty() {
            // A large POST grew the buffer; do not keep it for an idle keep-alive connection.
            buf = Vec::new();
        }
    }
}

/// Reads until a full head is buffered. `Ok(None)`: the peer closed or went idle.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    node: &Node,
) -> Result<Option<RequestHead>, GatewayError> {
    loop {
        if !buf.is_empty() {
            if let Some((head, n)) = parse_head(buf)? {
                buf.drain(..n);
                return Ok(Some(head));
            }
        }
        // Between requests a connection ends when it idles too long or the node stops.
        let stopping = node.stopping();
        let idle = async {
            future::or(glommio::timer::sleep(IDLE_TIMEOUT), stopping).await;
            Ok(0)
        };
        if future::or(read_more(stream, buf), idle).await? == 0 {
            return Ok(None);
        }
    }
}

/// Appends what the peer sent next to `buf`. Cancel-safe for `buf`: the read happens into room
/// reserved at its end, and a guard gives that room back however the future ends — including
/// when it is dropped unfinished, as the parked-GET watcher in [`poll`] is when the answer
/// comes first (without the guard, `buf` kept `READ_CHUNK` zero bytes, which the next request
/// on the connection was parsed behind: a 400 "invalid request head").
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, GatewayError> {
    /// Truncates the buffer to `keep` when dropped.
    struct Reserved<'a> {
        buf: &'a mut Vec<u8>,
        keep: usize,
    }
    impl Drop for Reserved<'_> {
        fn drop(&mut self) {
            self.buf.truncate(self.keep);
        }
    }
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let mut room = Reserved { buf, keep: start };
    let n = stream.read(&mut room.buf[start..]).await;
    room.keep = start + *n.as_ref().unwrap_or(&0);
    drop(room);
    Ok(n?)
}

/// Reads the body announced by `head`. `Ok(None)`: the peer closed mid-body.
async fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &RequestHead,
    limit: usize,
) -> Result<Option<Vec<u8>>, GatewayError> {
    match head.body {
        BodyFraming::None => Ok(Some(Vec::new())),
        BodyFraming::Length(n) if n > limit => Err(GatewayError::BodyTooLarge),
        BodyFraming::Length(n) => {
            while buf.len() < n {
                if read_more(stream, buf).await? == 0 {
                    return Ok(None);
                }
            }
            let rest = buf.split_off(n);
            Ok(Some(std::mem::replace(buf, rest)))
        }
        BodyFraming::Chunked => loop {
            if let Some((body, used)) = decode_chunked(buf, limit)? {
                buf.drain(..used);
                return Ok(Some(body));
            }
            // Bound what a client can make us buffer while it trickles chunk framing.
            if buf.len() > limit.saturating_mul(2).max(64 * 1024) {
                return Err(GatewayError::BodyTooLarge);
            }
            if read_more(stream, buf).await? == 0 {
                return Ok(None);
            }
        },
    }
}

fn route(ctx: &Rc<HttpContext>, head: &RequestHead, body: Vec<u8>, peer: SocketAddr) -> Action {
    let route = ctx.router.at(&head.path).map(|m| *m.value);
    if head.method == http::Method::OPTIONS {
        return Action::Respond(preflight(ctx, head));
    }
    match route {
        Ok(Route::Health) => Action::Respond(Response::json(200, r#"{"status":"ok"}"#)),
        Ok(Route::Engine) => engine_action(ctx, head, body, peer)
            .unwrap_or_else(|e| Action::Respond(Response::engine_error(&e))),
        Err(_) => match ctx.app.clone().http(head.clone(), body, peer) {
            Some(fut) => Action::App(fut),
            None => Action::Respond(Response::not_found(&head.path)),
        },
    }
}

/// Answers a CORS preflight: allowed origins get the methods and the headers they asked for.
fn preflight(ctx: &HttpContext, head: &RequestHead) -> Response {
    let cors = &ctx.node.config().cors;
    let origin = head.header("origin");
    if origin.and_then(|o| cors.allow(o)).is_none() {
        return Response::json(403, r#"{"error":"origin not allowed","code":"forbidden"}"#);
    }
    let mut r = Response::empty(204)
        .with_cors(cors, origin)
        .with_header(
            "Access-Control-Allow-Methods",
            "GET, POST, PUT, PATCH, DELETE, OPTIONS",
        )
        .with_header("Access-Control-Max-Age", "86400");
    if let Some(h) = head.header("access-control-request-headers") {
        r = r.with_header("Access-Control-Allow-Headers", h);
    }
    r
}

fn engine_action(
    ctx: &Rc<HttpContext>,
    head: &RequestHead,
    body: Vec<u8>,
    peer: SocketAddr,
) -> Result<Action, GatewayError> {
    let cfg = ctx.node.config();
    let refuse = |c| Err(GatewayError::Refused(c));
    let transport = match query_param(&head.query, "transport").as_deref() {
        Some("polling") if cfg.transports.polling => Transport::Polling,
        Some("websocket") if cfg.transports.websocket => Transport::WebSocket,
        _ => return refuse(EngineErrorCode::TransportUnknown),
    };
    if query_param(&head.query, "EIO").as_deref() != Some("4") {
        return refuse(EngineErrorCode::UnsupportedProtocolVersion);
    }
    let sid = query_param(&head.query, "sid");
    if let Some(sid) = &sid {
        if !ctx.node.owns_or_routes(sid) {
            return refuse(EngineErrorCode::SessionIdUnknown);
        }
    }
    if head.is_websocket_upgrade() {
        if transport != Transport::WebSocket {
            return refuse(EngineErrorCode::BadRequest);
        }
        let key = head
            .header("sec-websocket-key")
            .filter(|_| head.header("sec-websocket-version") == Some("13"))
            .ok_or(GatewayError::Refused(EngineErrorCode::BadRequest))?;
        return Ok(Action::WebSocket(WsRequest {
            key: key.to_owned(),
            sid,
            handshake: handshake(head, peer),
            leftover: Vec::new(),
        }));
    }
    if transport != Transport::Polling {
        return refuse(EngineErrorCode::BadRequest);
    }
    match (sid, &head.method) {
        (None, &http::Method::GET) => {
            let (_session, open) = ctx.engine.open(handshake(head, peer), Transport::Polling);
            let mut body = Vec::new();
            crate::engineio::packet::encode_payload([&open], &mut body);
            Ok(Action::Respond(Response::text(200, body)))
        }
        (None, _) => refuse(EngineErrorCode::BadHandshakeMethod),
        (Some(sid), &http::Method::GET) => Ok(Action::Poll {
            sid,
            kind: PollKind::Get,
        }),
        (Some(sid), &http::Method::POST) => {
            if head.header("content-type") == Some("application/octet-stream") {
                // v3 binary payloads; v4 clients never send them.
                return refuse(EngineErrorCode::BadRequest);
            }
            Ok(Action::Poll {
                sid,
                kind: PollKind::Post(body),
            })
        }
        _ => refuse(EngineErrorCode::BadRequest),
    }
}

/// What a session keeps of its opening request. Transport-only headers (WebSocket handshake,
/// connection management) are dropped: every session keeps this for its whole life.
fn handshake(head: &RequestHead, peer: SocketAddr) -> Handshake {
    let mut headers = http::HeaderMap::with_capacity(head.headers.len());
    for (name, value) in &head.headers {
        let n = name.as_str();
        if !(n.starts_with("sec-websocket-")
            || matches!(
                n,
                "connection"
                    | "upgrade"
                    | "content-length"
                    | "transfer-encoding"
                    | "accept-encoding"
                    | "cache-control"
                    | "pragma"
            ))
        {
            headers.append(name.clone(), value.clone());
        }
    }
    Handshake {
        query: head.query.clone(),
        headers,
        remote_addr: peer,
    }
}

/// Sends a polling request to the session's owner and waits for the answer, watching the
/// connection: a client that gives up on a parked GET ends the session (reference behaviour).
async fn poll(
    ctx: &Rc<HttpContext>,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    sid: String,
    kind: PollKind,
) -> Option<Response> {
    let (tx, rx) = flume::bounded(1);
    let owner = ctx.node.owner_of(&sid)?;
    let req = PollRequest {
        sid: sid.clone(),
        kind,
        reply: tx,
        received: std::time::Instant::now(),
    };
    if owner == ctx.node.executor() {
        polling::serve(&ctx.engine, req);
    } else if let Err(e) = ctx.node.port().try_send(owner, MeshMsg::Poll(req)) {
        return Some(Response::engine_error(&GatewayError::Unavailable(e)));
    }
    let reply = loop {
        let got = future::or(async { Some(rx.recv_async().await) }, async {
            match read_more(stream, buf).await {
                Ok(n) if n > 0 && buf.len() < super::request::MAX_HEAD => None,
                _ => Some(Err(flume::RecvError::Disconnected)),
            }
        })
        .await;
        match got {
            Some(Ok(reply)) => break reply,
            Some(Err(_)) => {
                // The peer went away (or the owner dropped the request while shutting down).
                if owner == ctx.node.executor() {
                    polling::aborted(&ctx.engine, &sid);
                } else {
                    let _ = ctx.node.port().try_send(owner, MeshMsg::PollAborted(sid));
                }
                return None;
            }
            None => continue,
        }
    };
    Some(poll_response(reply))
}

fn poll_response(reply: PollReply) -> Response {
    if reply.payload {
        Response::text(reply.status, reply.body)
    } else if reply.status == 200 {
        Response::new(200, "text/html", reply.body)
    } else {
        Response::json(reply.status, reply.body)
    }
}

/// Serves a WebSocket request here, or moves the connection to the session's owner.
async fn upgrade(ctx: &Rc<HttpContext>, mut stream: TcpStream, req: WsRequest) {
    let owner = match &req.sid {
        Some(sid) => ctx.node.owner_of(sid),
        None => Some(ctx.node.executor()),
    };
    match owner {
        Some(o) if o == ctx.node.executor() => {
            // A task of its own: the WebSocket lives for hours, and this HTTP connection
            // future (head buffers, polling state) is twice its size.
            let guard = ctx.node.connection_guard();
            let engine = ctx.engine.clone();
            glommio::spawn_local(
                async move {
                    let _guard = guard;
                    websocket::serve(engine, stream, req).await;
                }
                .instrument(tracing::Span::current()),
            )
            .detach();
        }
        Some(o) => {
            let fd = match handoff::detach(stream) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot hand a websocket over");
                    return;
                }
            };
            if let Err(e) = ctx.node.port().try_send(o, MeshMsg::WebSocket { fd, req }) {
                tracing::warn!(error = %e, "websocket hand-over refused");
            }
        }
        None => {
            let resp =
                Response::engine_error(&GatewayError::Refused(EngineErrorCode::SessionIdUnknown));
            let _ = stream.write_all(&resp.to_bytes()).await;
        }
    }
}
