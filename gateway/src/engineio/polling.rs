//! HTTP long-polling on the owner executor: parking GETs, applying POSTed payloads.
//!
//! The executor that holds the HTTP connection may be another one (SO_REUSEPORT); it sends a
//! [`PollRequest`] over the mesh and waits for the [`PollReply`]. The owner side is the same
//! code either way, so a session is served by exactly one executor.

use std::rc::Rc;

use super::packet::decode_payload;
use super::{Engine, Transport};
use crate::error::{CloseReason, EngineErrorCode, GatewayError};

/// What a polling request wants.
#[derive(Debug)]
pub enum PollKind {
    /// Wait for packets.
    Get,
    /// A GET whose client had closed the connection before the server read it (it gave up
    /// waiting: the session ends, as when a parked GET is cancelled). Needs no answer.
    Abandoned,
    /// Deliver a payload.
    Post(Vec<u8>),
}

/// A polling request for the owner executor of `sid`.
#[derive(Debug)]
pub struct PollRequest {
    /// The session id.
    pub sid: String,
    /// GET or POST.
    pub kind: PollKind,
    /// Where the answer goes (capacity 1).
    pub reply: flume::Sender<PollReply>,
    /// When the HTTP layer had the whole request (on whichever executor read it): orders two
    /// GETs of one session that reach the owner from different executors.
    pub received: std::time::Instant,
}

/// The answer to a polling request, written by the executor holding the HTTP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollReply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Whether the body is an Engine.IO payload (text/plain) or a JSON error / `ok` (text/html).
    pub payload: bool,
}

impl PollReply {
    /// 200 with a payload.
    pub fn ok_payload(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            body,
            payload: true,
        }
    }

    /// 200 `ok`, the answer to a POST.
    pub fn ok() -> Self {
        Self {
            status: 200,
            body: b"ok".to_vec(),
            payload: false,
        }
    }

    /// An error answer.
    pub fn error(err: &GatewayError) -> Self {
        Self {
            status: err.status(),
            body: err.body().into_bytes(),
            payload: false,
        }
    }

    /// 400 Bad request.
    pub fn bad_request() -> Self {
        Self::error(&GatewayError::Refused(EngineErrorCode::BadRequest))
    }
}

/// Serves a polling request for a session owned by this executor.
pub fn serve(engine: &Rc<Engine>, req: PollRequest) {
    let Some(session) = engine.session(&req.sid) else {
        if matches!(req.kind, PollKind::Get) && engine.take_client_close(&req.sid) {
            let _ = req.reply.try_send(PollReply::ok_payload(b"6".to_vec()));
            return;
        }
        let err = GatewayError::Refused(EngineErrorCode::SessionIdUnknown);
        let _ = req.reply.try_send(PollReply::error(&err));
        return;
    };
    if session.transport() != Transport::Polling {
        // Upgraded sessions refuse polling (the reference server does the same).
        let _ = req.reply.try_send(PollReply::bad_request());
        return;
    }
    match req.kind {
        PollKind::Get => session.park_get(req.reply, req.received),
        PollKind::Abandoned => session.abandon_get(),
        PollKind::Post(body) => {
            let packets = match decode_payload(&body) {
                Ok(p) => p,
                Err(e) => {
                    let _ = req.reply.try_send(PollReply::error(&e));
                    session.close(CloseReason::ParseError);
                    return;
                }
            };
            // Answer first: handlers may close the session, which must not turn an accepted
            // POST into an error.
            let _ = req.reply.try_send(PollReply::ok());
            for p in packets {
                if session.is_closed() {
                    break;
                }
                engine.receive(&session, p);
            }
        }
    }
}

/// The client gave up on a parked GET (closed the connection): the session is over, like in
/// the reference server.
pub fn aborted(engine: &Rc<Engine>, sid: &str) {
    if let Some(session) = engine.session(sid) {
        if session.transport() == Transport::Polling {
            session.close(CloseReason::TransportClose);
        }
    }
}
