//! One TCP connection: the HTTP/1.1 keep-alive loop, routing, and hand-over to the WebSocket
//! transport or to the executor that owns a polling session.
//!
//! Lives on: the executor that accepted the connection. A WebSocket upgrade for a session owned
//! elsewhere moves the socket to the owner (see `runtime::handoff`) before the 101 is written.
//!
//! Hostile clients: between requests a connection may idle for [`IDLE_TIMEOUT`]; once the
//! first byte of a head has arrived the whole head must arrive within `head_timeout`, and the
//! body within `body_timeout` of the end of the head — overall deadlines, not timers restarted
//! by every byte, so trickling a byte now and then (slowloris) does not keep a connection. A
//! missed deadline is answered 408 and closes the connection. Every request but the probes
//! (`/healthz`, `/readyz`) takes a token from its client address's bucket (`rate_limit`), a
//! connection over its address's connection cap is answered 429 (`conn_limit`), and when CORS
//! origins are configured an Engine.IO request from a browser origin not in the list is
//! refused (403).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use tracing::Instrument;

use super::client_ip::{client_ip, limit_key};
use super::conn_limit::{ConnLimits, ConnSlot};
use super::rate_limit::{retry_after_secs, RateLimiter};
use super::readiness;
use super::request::{parse_head, BodyFraming, ChunkedDecoder, RequestHead, MAX_HEAD};
use super::{query_param, Response};
use crate::engineio::polling::{self, PollKind, PollReply, PollRequest};
use crate::engineio::websocket::{self, WsRequest};
use crate::engineio::{Engine, Handshake, Transport};
use crate::error::{EngineErrorCode, GatewayError};
use crate::runtime::{handoff, LocalApp, MeshMsg, Node, NodeHealth, ResponseFuture};
use livechat_shard_router::Counters;

/// How long an idle keep-alive connection stays open (between requests: no byte of the next
/// head yet).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// `Retry-After` for a connection refused for its address's connection count.
const CONN_RETRY_AFTER: Duration = Duration::from_secs(1);
const READ_CHUNK: usize = 2048;

/// What a path is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Health,
    Ready,
    Engine,
}

/// The HTTP layer's own routes beside Engine.IO's (at the configurable `path`): path, what
/// serves it, the methods `docs/openapi.json` describes (a probe answers any method: balancers
/// differ). The router takes these paths from this table only, so `chat::openapi::tests` sees
/// every one the description must have.
pub(crate) const HTTP_ROUTES: &[(&str, Route, &[&str])] = &[
    ("/healthz", Route::Health, &["GET"]),
    ("/readyz", Route::Ready, &["GET"]),
];

/// The per-executor HTTP front door: routes and the Engine.IO server behind them.
///
/// Lives on: one executor.
pub struct HttpContext {
    node: Rc<Node>,
    engine: Rc<Engine>,
    app: Rc<dyn LocalApp>,
    health: Arc<NodeHealth>,
    router: matchit::Router<Route>,
    limits: Arc<ConnLimits>,
    rate: RefCell<RateLimiter>,
}

impl std::fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext").finish_non_exhaustive()
    }
}

impl HttpContext {
    /// Routes for this executor; `limits` is the node's connection admission.
    pub fn new(
        node: Rc<Node>,
        engine: Rc<Engine>,
        app: Rc<dyn LocalApp>,
        limits: Arc<ConnLimits>,
        health: Arc<NodeHealth>,
    ) -> Rc<Self> {
        let mut router = matchit::Router::new();
        let path = node.config().path.clone();
        let trimmed = path.trim_end_matches('/').to_owned();
        // Both spellings, like the reference server's prefix match.
        let _ = router.insert(format!("{trimmed}/"), Route::Engine);
        let _ = router.insert(trimmed, Route::Engine);
        for &(path, route, _) in HTTP_ROUTES {
            let _ = router.insert(path, route);
        }
        let rate = RateLimiter::new(node.config().rest_rate, node.config().rest_burst);
        Rc::new(Self {
            node,
            engine,
            app,
            health,
            router,
            limits,
            rate: RefCell::new(rate),
        })
    }

    /// The node's connection admission.
    pub fn limits(&self) -> &Arc<ConnLimits> {
        &self.limits
    }

    /// Takes a token for this request from its client address's bucket; `Some`: the 429.
    /// `/healthz` and `/readyz` are exempt: they are cheap, and the balancer probing them must
    /// keep seeing the node as it is.
    fn over_rate(&self, head: &RequestHead, peer: SocketAddr) -> Option<Response> {
        let mut rate = self.rate.borrow_mut();
        if !rate.enabled() || head.path == "/healthz" || head.path == "/readyz" {
            return None;
        }
        let ip = client_ip(peer.ip(), &head.headers, self.limits.trusted());
        let wait = rate.take(limit_key(ip), Instant::now()).err()?;
        Counters::bump(&self.node.counters().http_rate_limited);
        Some(rate_limited(
            "too many requests from this address".into(),
            wait,
        ))
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

/// Serves one accepted connection until it closes or becomes a WebSocket. `slot` counts it
/// in the node's connection caps for as long as it lives; `over_ip`: its address already had
/// the most connections, so its first request is answered 429 and it is closed.
pub async fn serve(
    ctx: Rc<HttpContext>,
    mut stream: TcpStream,
    peer: SocketAddr,
    slot: ConnSlot,
    over_ip: bool,
) {
    let mut buf = Vec::new();
    loop {
        let head = match read_head(&mut stream, &mut buf, &ctx.node).await {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                refuse(&ctx, &mut stream, &e).await;
                return;
            }
        };
        let origin = head.header("origin").map(str::to_owned);
        let cors = &ctx.node.config().cors;
        let refusal = if over_ip {
            // Read the head first: answering before the client has sent its request would
            // often reach it as a reset instead of a response.
            let mut r = rate_limited(
                "too many connections from this address".into(),
                CONN_RETRY_AFTER,
            );
            r.close = true;
            Some(r)
        } else {
            ctx.over_rate(&head, peer)
        };
        if let Some(mut resp) = refusal {
            resp = resp.with_cors(cors, origin.as_deref());
            // Without reading its body we cannot know where the next request starts.
            resp.close |= head.body != BodyFraming::None || !head.keep_alive;
            if stream.write_all(&resp.to_bytes()).await.is_err() || resp.close {
                return;
            }
            continue;
        }
        let cfg = ctx.node.config();
        let body = match read_body(
            &mut stream,
            &mut buf,
            &head,
            cfg.max_payload,
            cfg.body_timeout,
        )
        .await
        {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                refuse(&ctx, &mut stream, &e).await;
                return;
            }
        };
        let action = route(&ctx, &head, body, peer);
        let mut resp = match action {
            Action::Respond(r) => r,
            Action::App(fut) => fut.await,
            Action::WebSocket(mut req) => {
                req.leftover = std::mem::take(&mut buf);
                upgrade(&ctx, stream, req, slot).await;
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

/// The 429 for a client address over one of its limits: the API's error body and
/// `Retry-After` in whole seconds.
fn rate_limited(why: String, wait: Duration) -> Response {
    let err = GatewayError::RateLimited(why, wait);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Response::json(err.status(), err.api_body(livechat_core::Timestamp(now)))
        .with_header("Retry-After", retry_after_secs(wait).to_string())
}

/// Answers a request that could not be read (framing, size, deadline) and counts it. The
/// connection is closed after: where the next request would start is unknown.
async fn refuse(ctx: &HttpContext, stream: &mut TcpStream, err: &GatewayError) {
    let counters = ctx.node.counters();
    match err {
        GatewayError::RequestTimeout => Counters::bump(&counters.http_timeouts),
        _ => Counters::bump(&counters.http_malformed),
    }
    let mut resp = Response::engine_error(err);
    resp.close = true;
    let _ = stream.write_all(&resp.to_bytes()).await;
}

/// What ended a wait for bytes.
enum Woke {
    Read(Result<usize, GatewayError>),
    Timer,
    Stopping,
}

/// Reads until a full head is buffered. `Ok(None)`: the peer closed (or reset the connection)
/// between requests, went idle, or the node is stopping. `Err(RequestTimeout)`: the head started but did not
/// complete within `head_timeout`.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    node: &Node,
) -> Result<Option<RequestHead>, GatewayError> {
    let mut deadline: Option<Instant> = None;
    // `buf[..parsed]` held no complete head the last time it was parsed. A head can only
    // complete when a line ends, so later bytes without a line feed are not re-parsed:
    // that keeps a head trickled byte by byte from costing quadratic time (httparse starts
    // over on every call; at most MAX_HEADERS lines end before the head is refused).
    let mut parsed = 0;
    loop {
        if !buf.is_empty() {
            // The first bytes are parsed at once too, so what is not HTTP at all (a TLS
            // hello, binary junk) is refused right away rather than at the deadline.
            if parsed == 0 || buf[parsed..].contains(&b'\n') || buf.len() >= MAX_HEAD {
                if let Some((head, n)) = parse_head(buf)? {
                    buf.drain(..n);
                    return Ok(Some(head));
                }
            }
            parsed = buf.len();
            // The head deadline runs from its first byte, whatever arrives after.
            deadline.get_or_insert_with(|| Instant::now() + node.config().head_timeout);
        }
        let wait = match deadline {
            None => IDLE_TIMEOUT,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Err(GatewayError::RequestTimeout),
            },
        };
        let stopping = node.stopping();
        let woke = future::or(
            async { Woke::Read(read_more(stream, buf).await) },
            future::or(
                async {
                    glommio::timer::sleep(wait).await;
                    Woke::Timer
                },
                async {
                    stopping.await;
                    Woke::Stopping
                },
            ),
        )
        .await;
        match woke {
            // A reset between requests (balancers close idle upstream connections that way)
            // is a peer going away, not a malformed request: nothing is answered or counted.
            Woke::Read(Err(_)) if buf.is_empty() => return Ok(None),
            Woke::Read(n) => {
                if n? == 0 {
                    return Ok(None);
                }
            }
            Woke::Timer if deadline.is_some() => return Err(GatewayError::RequestTimeout),
            Woke::Timer | Woke::Stopping => return Ok(None),
        }
    }
}

/// [`read_more`], failing with `RequestTimeout` once `deadline` has passed.
async fn read_before(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, GatewayError> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(GatewayError::RequestTimeout)?;
    future::or(read_more(stream, buf), async {
        glommio::timer::sleep(left).await;
        Err(GatewayError::RequestTimeout)
    })
    .await
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

/// Reads the body announced by `head`, all of it within `timeout`. `Ok(None)`: the peer
/// closed mid-body.
async fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &RequestHead,
    limit: usize,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, GatewayError> {
    let deadline = Instant::now() + timeout;
    match head.body {
        BodyFraming::None => Ok(Some(Vec::new())),
        BodyFraming::Length(n) if n > limit => Err(GatewayError::BodyTooLarge),
        BodyFraming::Length(n) => {
            while buf.len() < n {
                if read_before(stream, buf, deadline).await? == 0 {
                    return Ok(None);
                }
            }
            let rest = buf.split_off(n);
            Ok(Some(std::mem::replace(buf, rest)))
        }
        BodyFraming::Chunked => {
            // Incremental: what the decoder used is dropped from `buf`, so a trickled body
            // is looked at once and `buf` never holds more than a partial line and a read.
            let mut decoder = ChunkedDecoder::new(limit);
            loop {
                let used = decoder.feed(buf)?;
                buf.drain(..used);
                if decoder.is_done() {
                    return Ok(Some(decoder.into_body()));
                }
                if read_before(stream, buf, deadline).await? == 0 {
                    return Ok(None);
                }
            }
        }
    }
}

fn route(ctx: &Rc<HttpContext>, head: &RequestHead, body: Vec<u8>, peer: SocketAddr) -> Action {
    let route = ctx.router.at(&head.path).map(|m| *m.value);
    if head.method == http::Method::OPTIONS {
        return Action::Respond(preflight(ctx, head));
    }
    match route {
        Ok(Route::Health) => Action::Respond(Response::json(200, r#"{"status":"ok"}"#)),
        Ok(Route::Ready) => Action::App(readiness::respond(ctx.health.clone(), ctx.app.clone())),
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
    // A browser always sends `Origin` on these; a page from an origin not in the CORS list
    // must not open (or drive) a session with its user's cookies. Without the header it is
    // not a browser request, and CORS is no protection against those anyway.
    if !cfg.cors.origins.is_empty() {
        if let Some(origin) = head.headers.get(http::header::ORIGIN) {
            if origin
                .to_str()
                .ok()
                .and_then(|o| cfg.cors.allow(o))
                .is_none()
            {
                Counters::bump(&ctx.node.counters().http_origin_refused);
                return refuse(EngineErrorCode::Forbidden);
            }
        }
    }
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
    // A GET read after its client already gave up on it (this executor was late to read it,
    // and the client's next request may already have reached the owner from another one): the
    // owner ends the session as for a cancelled parked GET, without parking it.
    let kind = match kind {
        PollKind::Get if super::peer_closed::peer_closed(stream) => PollKind::Abandoned,
        other => other,
    };
    let abandoned = matches!(kind, PollKind::Abandoned);
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
    if abandoned {
        return None;
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
/// `slot` goes with the connection: into the WebSocket's task here, or given back when the
/// connection moves to another executor (which counts it again when it arrives).
async fn upgrade(ctx: &Rc<HttpContext>, mut stream: TcpStream, req: WsRequest, slot: ConnSlot) {
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
                    let _slot = slot;
                    websocket::serve(engine, stream, req).await;
                }
                .instrument(tracing::Span::current()),
            )
            .detach();
        }
        Some(o) => {
            drop(slot);
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
