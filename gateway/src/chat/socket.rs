//! The Socket.IO side of the chat contract: the handshake (`role`, `token`, `displayName`,
//! `fingerprint`, `conversationId`, `scope`, `lastSeq` — query string, overridden by the
//! CONNECT auth payload), `chat:message` with ack, and refusals (`system:error` + disconnect).
//!
//! Handlers run on the socket's executor and route commands to the conversation's owner.
//! Each socket has at most `MAX_IN_FLIGHT` messages being processed; more are refused.

use std::rc::Rc;

use livechat_core::access;
use livechat_core::store::Credentials;
use livechat_core::{Command, MessageType, Metadata};
use livechat_shard_router::Counters;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::engine::Chat;
use super::ids::now;
use super::input;
use super::rate::Verdict;
use super::socket_ctx::{SocketCtx, MAX_IN_FLIGHT};
use super::wire::Json;
use crate::error::GatewayError;
use crate::socketio::{ConnectContext, Event, Namespace, Refusal, Socket};

/// Handshake fields, from the query and then the auth payload (auth wins).
#[derive(Debug, Default, Clone)]
struct Hello {
    role: Option<String>,
    token: Option<String>,
    display_name: Option<String>,
    fingerprint: Option<String>,
    conversation_id: Option<String>,
    scope: Option<String>,
    last_seq: Option<u64>,
}

impl Hello {
    /// The handshake fields; a malformed one (an invalid `lastSeq` or conversation id, an auth
    /// payload nested too deep) is refused, not ignored.
    fn read(
        socket: &Socket,
        auth: Option<&RawValue>,
        max_depth: usize,
    ) -> Result<Self, GatewayError> {
        let hs = socket.handshake();
        let q = |k: &str| hs.query_param(k).filter(|v| !v.is_empty());
        let mut h = Hello {
            role: q("role"),
            token: q("token"),
            display_name: q("displayName"),
            fingerprint: q("fingerprint"),
            conversation_id: q("conversationId"),
            scope: q("scope"),
            last_seq: q("lastSeq").map(|v| seq(&v)).transpose()?,
        };
        if let Some(a) = auth {
            input::json_depth(a.get().as_bytes(), max_depth)?;
        }
        let auth: serde_json::Map<String, serde_json::Value> = auth
            .and_then(|a| serde_json::from_str(a.get()).ok())
            .unwrap_or_default();
        let text = |k: &str| match auth.get(k) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        h.role = text("role").or(h.role);
        h.token = text("token").or(h.token);
        h.display_name = text("displayName").or(h.display_name);
        h.fingerprint = text("fingerprint").or(h.fingerprint);
        h.conversation_id = text("conversationId").or(h.conversation_id);
        h.scope = text("scope").or(h.scope);
        if let Some(v) = text("lastSeq") {
            h.last_seq = Some(seq(&v)?);
        }
        if let Some(id) = &h.conversation_id {
            input::conversation_id(id)?;
        }
        if let Some(fp) = &h.fingerprint {
            input::participant_id(fp)?;
        }
        Ok(h)
    }
}

/// A `lastSeq`: a non-negative integer.
fn seq(v: &str) -> Result<u64, GatewayError> {
    v.trim()
        .parse()
        .map_err(|_| GatewayError::BadRequest("lastSeq must be a non-negative integer".into()))
}

/// The chat namespace `/`.
pub fn namespace() -> Namespace {
    Namespace::new("/")
        .on_connect_async(|ctx| Box::pin(connect(ctx)))
        .on("chat:message", on_message)
        .on_any(on_other)
        .on_disconnect(|socket, _reason| {
            let joined =
                socket.with_data(|d: Option<&SocketCtx>| d.and_then(|d| d.conversation_id.clone()));
            if let (Some(id), Some(chat)) = (joined, chat_of(socket)) {
                chat.detach(&id);
            }
        })
}

fn chat_of(socket: &Socket) -> Option<Rc<Chat>> {
    socket.io().and_then(|io| Chat::current(io.node()))
}

/// Refusals are explained with `system:error` and then the socket is disconnected (after the
/// CONNECT reply, so the client sees the event).
fn refuse(socket: &Rc<Socket>, err: &GatewayError) {
    let _ = socket.emit(
        "system:error",
        &serde_json::json!({ "message": err.to_string(), "code": err.code() }),
    );
    socket.disconnect();
}

async fn connect(ctx: ConnectContext) -> Result<(), Refusal> {
    let socket = ctx.socket;
    let Some(chat) = chat_of(&socket) else {
        return Err(Refusal::new("chat engine unavailable"));
    };
    let hello = match Hello::read(
        &socket,
        ctx.auth.as_deref(),
        chat.config().limits.max_json_depth,
    ) {
        Ok(h) => h,
        Err(e) => {
            refuse(&socket, &e);
            return Ok(());
        }
    };
    let creds = Credentials {
        role: hello.role.clone(),
        token: hello.token.clone(),
        participant_id: None,
        display_name: hello.display_name.clone(),
        fingerprint: hello.fingerprint.clone(),
        starting: hello.conversation_id.is_none() && hello.scope.as_deref() != Some("queue"),
    };
    let who = match chat.auth().authenticate(&creds) {
        Ok(p) => p,
        // Development mode's malformed identities keep the old contract's refusal.
        Err(GatewayError::BadRequest(m)) => {
            refuse(&socket, &GatewayError::Forbidden(m));
            return Ok(());
        }
        Err(e) => {
            refuse(&socket, &e);
            return Ok(());
        }
    };
    if who.bearer && who.role.is_staff() {
        let e = GatewayError::Forbidden("agents must identify themselves (token)".into());
        refuse(&socket, &e);
        return Ok(());
    }
    chat.touch_presence(who.id());
    let expires_at = who.expires_at;
    let rate = &chat.config().security.rate;
    socket
        .set_data(SocketCtx::new(who.participant.clone(), None, now(), rate).expiring(expires_at));
    let wants_queue = hello.scope.as_deref() == Some("queue");
    let result = match hello.conversation_id.clone() {
        None if wants_queue => match access::authorize_queue(&who) {
            Ok(()) => {
                socket.join(&chat.config().socket.queue_room);
                chat.watch_queue(socket.id().to_owned())
                    .await
                    .map(|_| (None, who.participant.clone()))
            }
            Err(denied) => Err(denied.into()),
        },
        // An agent's console socket: it joins conversations by reconnecting with their id.
        None if who.role.is_staff() => Ok((None, who.participant.clone())),
        Some(id) => chat
            .attach(
                id.clone(),
                socket.id().to_owned(),
                who.clone(),
                hello.last_seq,
            )
            .await
            .map(|meta| (Some(id), who.acts_as(&meta))),
        None => {
            let mut attrs = Metadata::new();
            attrs.insert("channel".into(), "web".into());
            match chat.start(who.participant.clone(), attrs).await {
                Ok(meta) => {
                    // An anonymous customer's server-issued id, with the token that proves it
                    // (before `system:event`, so a client can store it before anything else).
                    if creds.token.is_none() {
                        if let Some(token) = chat.auth().issue(&who) {
                            let _ = socket.emit(
                                "auth:token",
                                &serde_json::json!({ "participantId": who.id(), "token": token }),
                            );
                        }
                    }
                    chat.attach(meta.id.clone(), socket.id().to_owned(), who.clone(), None)
                        .await
                        .map(|_| (Some(meta.id), who.participant.clone()))
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok((conversation_id, acting)) => {
            // The join may have told the socket about the queue already: that stays.
            let told = socket.with_data(|d: Option<&SocketCtx>| d.map(|d| d.queue.clone()));
            let ctx = SocketCtx::new(acting, conversation_id, now(), rate).expiring(expires_at);
            socket.set_data(ctx.watching(told.unwrap_or_default()));
        }
        Err(e) => refuse(&socket, &e),
    }
    Ok(())
}

/// `chat:message` payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    conversation_id: Option<String>,
    content: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    client_message_id: Option<String>,
    /// Kept raw: its size is checked before anything is built from it.
    metadata: Option<Box<RawValue>>,
}

fn on_message(socket: &Rc<Socket>, mut ev: Event<'_>) {
    let ack = ev.ack.take();
    let reply_err = |ack: Option<crate::socketio::AckSender>, e: GatewayError| {
        if let Some(ack) = ack {
            ack.send(&serde_json::json!({ "error": e.to_string(), "code": e.code() }));
        }
    };
    let Some(chat) = chat_of(socket) else { return };
    let rate = &chat.config().security.rate;
    // Copies only what the command needs out of the socket's data (not the whole context).
    let ctx = socket.with_data(|d: Option<&SocketCtx>| {
        d.map(|d| {
            let at = now();
            let expired = d.expired(at);
            let verdict = d.bucket.take(rate, at.millis());
            let admitted = !expired && verdict == Verdict::Allowed && d.begin();
            let refresh = d.presence_due(at);
            (
                admitted,
                d.participant.clone(),
                d.conversation_id.clone(),
                refresh,
                expired,
                (verdict, d.bucket.wait_ms(rate)),
            )
        })
    });
    let Some((admitted, sender, joined, refresh_presence, expired, (verdict, wait))) = ctx else {
        return reply_err(ack, GatewayError::Forbidden("not joined".into()));
    };
    if !expired && verdict != Verdict::Allowed {
        return rate_limited(socket, &chat, ack, verdict, wait);
    }
    if expired {
        // The token this socket proved itself with has expired: say so, then disconnect
        // (the client reconnects with a fresh one, resuming with `lastSeq`).
        let e =
            GatewayError::Unauthorized("your token has expired; reconnect with a new one".into());
        reply_err(ack, GatewayError::Unauthorized(e.to_string()));
        refuse(socket, &e);
        return;
    }
    if !admitted {
        Counters::bump(&chat.counters().chat_flood_refused);
        return reply_err(
            ack,
            GatewayError::TooManyRequests(format!(
                "more than {MAX_IN_FLIGHT} messages awaiting their ack"
            )),
        );
    }
    // Every path below returns the in-flight slot exactly once.
    let done = {
        let socket = socket.clone();
        move || socket.with_data(|d: Option<&SocketCtx>| d.map(SocketCtx::end))
    };
    if refresh_presence {
        // Any message, valid or not, shows the participant is there.
        chat.touch_presence(&sender.id);
    }
    let limits = &chat.config().limits;
    let parsed = ev
        .args
        .first()
        .ok_or_else(|| GatewayError::BadRequest("chat:message needs a payload".into()))
        .and_then(|raw| {
            input::json_depth(raw.get().as_bytes(), limits.max_json_depth)?;
            serde_json::from_str::<Incoming>(raw.get())
                .map_err(|e| GatewayError::BadRequest(format!("invalid chat:message payload: {e}")))
        })
        .and_then(|i| {
            let metadata = match &i.metadata {
                None => Metadata::new(),
                Some(raw) => {
                    let max = chat.config().message.max_metadata_bytes;
                    input::object_size("metadata", raw.get().len(), max)?;
                    serde_json::from_str(raw.get()).map_err(|_| {
                        GatewayError::BadRequest("metadata must be a JSON object".into())
                    })?
                }
            };
            if let Some(id) = &i.conversation_id {
                input::conversation_id(id)?;
            }
            Ok((i, metadata))
        });
    let (incoming, metadata) = match parsed {
        Ok(p) => p,
        Err(e) => {
            done();
            return reply_err(ack, e);
        }
    };
    let Some(conversation_id) = incoming.conversation_id.or(joined) else {
        done();
        return reply_err(
            ack,
            GatewayError::BadRequest("conversationId is required".into()),
        );
    };
    let kind = match incoming.kind.as_deref().map(MessageType::parse) {
        None => MessageType::Text,
        Some(Some(k)) => k,
        Some(None) => {
            done();
            return reply_err(
                ack,
                GatewayError::BadRequest("type must be TEXT or EVENT".into()),
            );
        }
    };
    let cmd = Command::Send {
        sender,
        content: incoming.content.unwrap_or_default(),
        kind,
        metadata,
        client_message_id: incoming.client_message_id,
        max_length: chat.config().message.max_length,
    };
    // Spawned in arrival order; each task sends its command to the owner on its first poll,
    // so one socket's messages reach the owner in the order they were emitted.
    glommio::spawn_local(async move {
        let result = chat.send(conversation_id, cmd).await;
        done();
        match result {
            Ok(message) => {
                if let Some(ack) = ack {
                    ack.send(&Json(&message));
                }
            }
            Err(e) => reply_err(ack, e),
        }
    })
    .detach();
}

/// A refused event: an ack error `rate_limited` (with `retryAfterMs`), counted; far over the
/// limit, `system:error` and a disconnect.
fn rate_limited(
    socket: &Rc<Socket>,
    chat: &Chat,
    ack: Option<crate::socketio::AckSender>,
    verdict: Verdict,
    wait_ms: u64,
) {
    let counters = chat.counters();
    Counters::bump(&counters.chat_rate_limited);
    let e = GatewayError::RateLimited(
        "too many events: slow down".into(),
        std::time::Duration::from_millis(wait_ms),
    );
    if let Some(ack) = ack {
        ack.send(&serde_json::json!({
            "error": e.to_string(), "code": e.code(), "retryAfterMs": wait_ms,
        }));
    }
    if verdict == Verdict::Disconnect {
        Counters::bump(&counters.chat_rate_disconnects);
        tracing::info!(
            socket = socket.id(),
            "disconnected: far over its event rate limit"
        );
        refuse(
            socket,
            &GatewayError::RateLimited(
                "far over the event rate limit".into(),
                std::time::Duration::ZERO,
            ),
        );
    }
}

/// Any other client event: it costs a token like `chat:message`; one asking for an ack is told
/// the event is unknown.
fn on_other(socket: &Rc<Socket>, mut ev: Event<'_>) {
    let ack = ev.ack.take();
    let Some(chat) = chat_of(socket) else { return };
    let rate = &chat.config().security.rate;
    let verdict = socket.with_data(|d: Option<&SocketCtx>| {
        d.map(|d| (d.bucket.take(rate, now().millis()), d.bucket.wait_ms(rate)))
    });
    match verdict {
        Some((Verdict::Allowed, _)) | None => {
            if let Some(ack) = ack {
                let e = GatewayError::BadRequest("unknown event".into());
                ack.send(&serde_json::json!({ "error": e.to_string(), "code": e.code() }));
            }
        }
        Some((v, wait)) => rate_limited(socket, &chat, ack, v, wait),
    }
}
