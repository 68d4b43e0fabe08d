//! The Redis client's one error type.
//!
//! Two families, and callers must tell them apart: a *request* error (the server answered
//! `-ERR ...`, the reply had an unexpected type, the request waited too long or was refused
//! for backpressure) concerns one request only and the connection keeps serving the others; a
//! *connection* error (IO, a bad frame, the server closing) failed every request in flight on
//! that connection, and the next request reconnects.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use ::redis::{ServerError, ServerErrorKind};

/// Everything that can go wrong talking to Redis.
///
/// `Clone` because one connection failure is reported to every request that was in flight on
/// it; that is why the IO error sits behind an `Arc`.
///
/// Lives on: anywhere (`Send + Sync`, so it converts into `anyhow::Error`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Connecting, reading or writing failed (the connection is gone; every request in flight
    /// on it failed with this).
    #[error("redis connection failed: {0}")]
    Io(Arc<io::Error>),
    /// The server sent bytes that are not RESP3, or a reply nobody asked for. The connection
    /// is closed: after a framing error nothing that follows can be trusted.
    #[error("redis protocol error: {0}")]
    Protocol(String),
    /// The server answered this request with an error reply (`-ERR ...`, `-NOSCRIPT ...`).
    /// Only this request failed.
    #[error("redis error reply: {0}")]
    Server(ServerError),
    /// The reply arrived but does not convert to the type the caller asked for.
    #[error("unexpected redis reply: {0}")]
    Type(String),
    /// No reply within the request timeout. The reply, if it comes later, is discarded.
    #[error("no reply from redis within {0:?}")]
    Timeout(Duration),
    /// The connection was closed (by the server, or because the last handle was dropped)
    /// before this request was answered.
    #[error("redis connection closed: {0}")]
    Closed(&'static str),
    /// Refused without sending: this many requests are already waiting for replies on the
    /// connection. Backpressure, not a failure of Redis: shed load or retry later.
    #[error("redis connection has {0} requests in flight; request refused")]
    Busy(usize),
    /// The configuration (usually the URL) is unusable.
    #[error("redis configuration: {0}")]
    Config(String),
}

impl Error {
    /// The server's error kind when this is an error reply (`NoScript`, `ResponseError`, ...).
    pub fn server_kind(&self) -> Option<ServerErrorKind> {
        match self {
            Error::Server(e) => e.kind(),
            _ => None,
        }
    }

    /// Whether this error broke the connection (every request in flight on it failed too),
    /// as opposed to concerning only this one request.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Error::Io(_) | Error::Protocol(_) | Error::Closed(_))
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl From<::redis::ParsingError> for Error {
    fn from(e: ::redis::ParsingError) -> Self {
        Error::Type(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_request_errors_and_io_is_a_connection_error() {
        let reply = ::redis::parse_redis_value(b"-NOSCRIPT No matching script\r\n");
        let Ok(::redis::Value::ServerError(e)) = reply else {
            panic!("not a server error: {reply:?}");
        };
        let e = Error::Server(e);
        assert_eq!(e.server_kind(), Some(ServerErrorKind::NoScript));
        assert!(!e.is_connection_error());
        let io = Error::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(io.is_connection_error());
        assert_eq!(io.server_kind(), None);
        assert!(!Error::Busy(3).is_connection_error());
    }

    #[test]
    fn errors_are_send_and_sync_so_they_can_cross_into_anyhow() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
