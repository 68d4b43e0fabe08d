//! The gateway's one error type, and the one place where errors become HTTP statuses,
//! Engine.IO error bodies and Socket.IO close reasons.

use std::fmt;
use std::io;

use livechat_core::LifecycleError;
use livechat_core::Timestamp;
use livechat_shard_router::RouterError;

use crate::socketio::packet::PacketError;

/// Engine.IO error codes of the reference server, sent as `{"code":N,"message":"..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineErrorCode {
    /// 0: `transport` missing or not enabled.
    TransportUnknown = 0,
    /// 1: `sid` unknown (expired, closed or never issued).
    SessionIdUnknown = 1,
    /// 2: a handshake must be a GET.
    BadHandshakeMethod = 2,
    /// 3: anything else that is wrong with the request.
    BadRequest = 3,
    /// 4: refused (CORS, or an upgrade not allowed).
    Forbidden = 4,
    /// 5: `EIO` is not 4.
    UnsupportedProtocolVersion = 5,
}

impl EngineErrorCode {
    /// The reference server's message for this code.
    pub fn message(self) -> &'static str {
        match self {
            Self::TransportUnknown => "Transport unknown",
            Self::SessionIdUnknown => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
}

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The HTTP request could not be parsed.
    #[error("malformed HTTP request: {0}")]
    MalformedHttp(&'static str),
    /// The request head is larger than the limit.
    #[error("request head too large")]
    HeadTooLarge,
    /// The request body is larger than `maxPayload`.
    #[error("request body too large")]
    BodyTooLarge,
    /// An Engine.IO request was refused with one of the reference codes.
    #[error("engine.io request refused: {}", .0.message())]
    Refused(EngineErrorCode),
    /// An Engine.IO packet was invalid: the session is closed.
    #[error("invalid engine.io packet: {0}")]
    InvalidPacket(&'static str),
    /// A Socket.IO packet was invalid: the connection is closed.
    #[error("invalid socket.io packet: {0}")]
    InvalidSocketIo(#[from] PacketError),
    /// The owner executor of a session could not be reached (full mailbox or shutting down).
    #[error("owner executor unavailable: {0}")]
    Unavailable(#[from] RouterError),
    /// A WebSocket protocol error.
    #[error("websocket: {0}")]
    WebSocket(#[from] WsError),
    /// A socket error.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// The server could not start (bind failed, executors could not be created).
    #[error("cannot start: {0}")]
    Startup(String),
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A chat API request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The conversation (or other resource) does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The caller did not prove who it is: no token, or one that does not verify (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The route exists but not with this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A conversation kept changing under a step (version conflicts past the retry limit), or
    /// a fresh id was taken (409).
    #[error("{0}")]
    Contended(String),
    /// Redis could not be used (unreachable, timed out, refused for backpressure) (503), or
    /// answered something this version does not understand (500).
    #[error("redis: {0}")]
    Redis(#[from] crate::redis::Error),
    /// A stored value does not decode (500): an error for that conversation, never a panic.
    #[error("{0}")]
    Corrupt(String),
    /// A lock stayed taken longer than the bounded wait (503).
    #[error("{0}")]
    Busy(String),
    /// PostgreSQL could not take a durable write or answer a read (unreachable, timed out,
    /// its queue full) (503): the step did not happen.
    #[error("database: {0}")]
    Database(String),
    /// The durable record holds a newer version than the live store (the live store lost
    /// writes): refused rather than rolled back (409).
    #[error("{0}")]
    Stale(String),
    /// The conversation is not in the status a read is about — its queue position while it
    /// is not queued (409, `conflict`, like the other wrong-status conflicts).
    #[error("{0}")]
    WrongStatus(String),
    /// A client sent more than it may have in flight (429, `too_many_requests`).
    #[error("{0}")]
    TooManyRequests(String),
    /// The domain refused a lifecycle command (400 / 409 / 410 / 429).
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// A node-wide cap is reached (live conversations, pending commands) (503): refused rather
    /// than growing without bound.
    #[error("{0}")]
    OverCapacity(String),
    /// A client went over a rate limit (429, `rate_limited`; REST adds `Retry-After`). The
    /// duration is how long until it may try again.
    #[error("{0}")]
    RateLimited(String, std::time::Duration),
    /// A request head or body did not arrive within its deadline (408); the connection closes.
    #[error("request not received in time")]
    RequestTimeout,
}

impl From<livechat_core::Denied> for GatewayError {
    fn from(e: livechat_core::Denied) -> Self {
        Self::Forbidden(e.0)
    }
}

impl GatewayError {
    /// The HTTP status this error answers with, when it happens while serving a request.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::MethodNotAllowed(_) => 405,
            Self::BadRequest(_) => 400,
            Self::Contended(_) => 409,
            Self::Redis(crate::redis::Error::Protocol(_) | crate::redis::Error::Type(_)) => 500,
            Self::Redis(_) | Self::Busy(_) | Self::Database(_) | Self::OverCapacity(_) => 503,
            Self::Stale(_) | Self::WrongStatus(_) => 409,
            Self::Corrupt(_) => 500,
            Self::TooManyRequests(_) => 429,
            Self::RateLimited(..) => 429,
            Self::RequestTimeout => 408,
            Self::Lifecycle(e) => match e {
                LifecycleError::Closed | LifecycleError::NotQueued => 410,
                LifecycleError::AssignedToOther(_) => 409,
                LifecycleError::AgentAtCapacity(_) => 429,
                LifecycleError::EmptyContent
                | LifecycleError::ContentTooLong(_)
                | LifecycleError::ControlCharacters
                | LifecycleError::SystemReserved => 400,
            },
            Self::Config(_) => 500,
            Self::HeadTooLarge => 431,
            Self::BodyTooLarge => 413,
            Self::Refused(EngineErrorCode::Forbidden) => 403,
            Self::Unavailable(_) => 503,
            Self::Io(_) | Self::Startup(_) => 500,
            Self::MalformedHttp(_)
            | Self::Refused(_)
            | Self::InvalidPacket(_)
            | Self::InvalidSocketIo(_)
            | Self::WebSocket(_) => 400,
        }
    }

    /// A stable machine-readable code (`not_found`, `gone`, `conflict`, ...), used in REST
    /// error bodies, Socket.IO acks and `system:error`.
    pub fn code(&self) -> &'static str {
        if let Self::TooManyRequests(_) = self {
            return "too_many_requests";
        }
        if let Self::RateLimited(..) = self {
            return "rate_limited";
        }
        if let Self::RequestTimeout = self {
            return "request_timeout";
        }
        match self.status() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            410 => "gone",
            413 => "payload_too_large",
            429 => "agent_at_capacity",
            431 => "header_too_large",
            503 => "unavailable",
            _ => "internal",
        }
    }

    /// The chat API's error body: `{"timestamp","error","code"}`.
    pub fn api_body(&self, now: Timestamp) -> String {
        serde_json::json!({
            "timestamp": now.to_string(),
            "error": self.to_string(),
            "code": self.code(),
        })
        .to_string()
    }

    /// The JSON body for this error: Engine.IO `{"code","message"}` for protocol refusals,
    /// `{"error","code"}` otherwise (the API's error shape).
    pub fn body(&self) -> String {
        match self {
            Self::Refused(code) => {
                format!(
                    r#"{{"code":{},"message":"{}"}}"#,
                    *code as u8,
                    code.message()
                )
            }
            Self::InvalidPacket(_) | Self::InvalidSocketIo(_) => {
                let c = EngineErrorCode::BadRequest;
                format!(r#"{{"code":{},"message":"{}"}}"#, c as u8, c.message())
            }
            other => {
                let msg = serde_json::to_string(&other.to_string()).unwrap_or_default();
                format!(r#"{{"error":{msg},"code":"{}"}}"#, other.code())
            }
        }
    }
}

/// Why a client's bytes were refused; each maps to the close code the server sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// Not a valid frame sequence (reserved bits, unknown opcode, unmasked client frame,
    /// fragmented or oversized control frame, continuation without a start …): 1002.
    Protocol,
    /// A text message or close reason that is not UTF-8: 1007.
    InvalidUtf8,
    /// A message larger than `maxPayload`: 1009.
    TooBig,
}

impl WsError {
    /// The close code to send (RFC 6455 §7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            Self::Protocol => 1002,
            Self::InvalidUtf8 => 1007,
            Self::TooBig => 1009,
        }
    }

    /// How the Engine.IO session ends because of it.
    pub fn close_reason(self) -> CloseReason {
        match self {
            Self::Protocol | Self::TooBig => CloseReason::TransportError,
            Self::InvalidUtf8 => CloseReason::ParseError,
        }
    }
}

impl std::error::Error for WsError {}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Protocol => "protocol error",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::TooBig => "message too big",
        })
    }
}

/// Why a session or socket ended; Socket.IO names these in the `disconnect` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent a close packet or a Socket.IO DISCONNECT.
    ClientClose,
    /// The server closed it (handler, shutdown).
    ServerClose,
    /// The transport went away (TCP closed, WebSocket closed).
    TransportClose,
    /// Transport error (invalid frames, IO error).
    TransportError,
    /// No pong within pingTimeout.
    PingTimeout,
    /// Invalid Engine.IO or Socket.IO packet.
    ParseError,
    /// No namespace joined within connectTimeout.
    ConnectTimeout,
    /// The client could not keep up with its outbound queue.
    SlowConsumer,
    /// The node is shutting down.
    Shutdown,
}

impl CloseReason {
    /// The reason string Socket.IO servers use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClose => "client namespace disconnect",
            Self::ServerClose => "server namespace disconnect",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ConnectTimeout => "connect timeout",
            Self::SlowConsumer => "slow consumer",
            Self::Shutdown => "server shutting down",
        }
    }
}
