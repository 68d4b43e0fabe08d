//! What sits on top of Engine.IO: the application (Socket.IO, or a raw Engine.IO echo) that
//! receives a session's messages, and the handshake it gets to see.

use std::net::SocketAddr;
use std::rc::Rc;

use super::Session;
use crate::error::CloseReason;

/// The HTTP request that opened a session: what connect handlers authenticate with.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The raw query string (without `?`).
    pub query: String,
    /// Request headers (names lower-case).
    pub headers: http::HeaderMap,
    /// The peer's address.
    pub remote_addr: SocketAddr,
}

impl Handshake {
    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::http::query_param(&self.query, name)
    }

    /// A header value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Receives the messages of one session. Runs on the session's owner executor.
pub trait SessionHandler {
    /// A `4` text message.
    fn on_message(&self, session: &Rc<Session>, text: &str);
    /// A binary message.
    fn on_binary(&self, session: &Rc<Session>, data: &[u8]);
    /// The session ended (called once).
    fn on_close(&self, session: &Rc<Session>, reason: CloseReason);
}

/// Makes a handler for every new session.
pub trait EngineApp {
    /// A session was opened; the returned handler gets its messages.
    fn open(self: Rc<Self>, session: &Rc<Session>) -> Rc<dyn SessionHandler>;
}
