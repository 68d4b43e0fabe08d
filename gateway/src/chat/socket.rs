//! The Socket.IO side of the chat contract: the handshake (`role`, `token`, `displayName`,
//! `fingerprint`, `conversationId`, `scope`, `lastSeq` — query string, overridden by the
//! CONNECT auth payload), `chat:message` with ack, and refusals (`system:error` + disconnect).
//!
//! Handlers run on the socket's executor and route commands to the conversation's owner.
//! Each socket has at most `MAX_IN_FLIGHT` messages being processed; more are refused.

use std::rc::Rc;

use livechat_core::store::{AuthProvider, Credentials};
use livechat_core::{Command, MessageType, Metadata, ParticipantKind};
use livechat_shard_router::Counters;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::engine::Chat;
use super::ids::now;
use super::participant::TrustHeaders;
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
    fn read(socket: &Socket, auth: Option<&RawValue>) -> Self {
        let hs = socket.handshake();
        let q = |k: &str| hs.query_param(k).filter(|v| !v.is_empty());
        let mut h = Hello {
            role: q("role"),
            token: q("token"),
            display_name: q("displayName"),
            fingerprint: q("fingerprint"),
            conversation_id: q("conversationId"),
            scope: q("scope"),
            last_seq: q("lastSeq").and_then(|v| v.parse().ok()),
        };
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
        h.last_seq = text("lastSeq").and_then(|v| v.parse().ok()).or(h.last_seq);
        h
    }
}

/// The chat namespace `/`.
pub fn namespace() -> Namespace {
    Namespace::new("/")
        .on_connect_async(|ctx| Box::pin(connect(ctx)))
        .on("chat:message", on_message)
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
    let hello = Hello::read(&socket, ctx.auth.as_deref());
    let creds = Credentials {
        role: hello.role.clone(),
        token: hello.token.clone(),
        display_name: hello.display_name.clone(),
        fingerprint: hello.fingerprint.clone(),
    };
    let participant = match TrustHeaders.authenticate(&creds) {
        Ok(p) => p,
        Err(e) => {
            refuse(&socket, &GatewayError::Forbidden(e.0));
            return Ok(());
        }
    };
    chat.touch_presence(&participant.id);
    socket.set_data(SocketCtx::new(participant.clone(), None, now()));
    let result = match (participant.kind, hello.conversation_id.clone()) {
        (ParticipantKind::Agent, None) if hello.scope.as_deref() == Some("queue") => {
            socket.join(&chat.config().socket.queue_room);
            chat.watch_queue(socket.id().to_owned()).await.map(|_| None)
        }
        (ParticipantKind::Agent, None) => Ok(None),
        (_, Some(id)) => chat
            .attach(
                id.clone(),
                socket.id().to_owned(),
                participant.clone(),
                hello.last_seq,
            )
            .await
            .map(|_| Some(id)),
        (_, None) => {
            let mut attrs = Metadata::new();
            attrs.insert("channel".into(), "web".into());
            match chat.start(participant.clone(), attrs).await {
                Ok(meta) => chat
                    .attach(
                        meta.id.clone(),
                        socket.id().to_owned(),
                        participant.clone(),
                        None,
                    )
                    .await
                    .map(|_| Some(meta.id)),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(conversation_id) => socket.set_data(SocketCtx::new(participant, conversation_id, now())),
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
    #[serde(default)]
    metadata: Metadata,
}

fn on_message(socket: &Rc<Socket>, mut ev: Event<'_>) {
    let ack = ev.ack.take();
    let reply_err = |ack: Option<crate::socketio::AckSender>, e: GatewayError| {
        if let Some(ack) = ack {
            ack.send(&serde_json::json!({ "error": e.to_string(), "code": e.code() }));
        }
    };
    let Some(chat) = chat_of(socket) else { return };
    // Copies only what the command needs out of the socket's data (not the whole context).
    let ctx = socket.with_data(|d: Option<&SocketCtx>| {
        d.map(|d| {
            let admitted = d.begin();
            let refresh = d.presence_due(now());
            (
                admitted,
                d.participant.clone(),
                d.conversation_id.clone(),
                refresh,
            )
        })
    });
    let Some((admitted, sender, joined, refresh_presence)) = ctx else {
        return reply_err(ack, GatewayError::Forbidden("not joined".into()));
    };
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
    let incoming: Incoming = match ev.arg(0) {
        Ok(i) => i,
        Err(e) => {
            done();
            return reply_err(
                ack,
                GatewayError::BadRequest(format!("invalid chat:message payload: {e}")),
            );
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
        metadata: incoming.metadata,
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
