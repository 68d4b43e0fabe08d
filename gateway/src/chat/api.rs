//! The REST contract under `/api` (JSON; errors `{"timestamp","error","code"}`).
//!
//! Handlers run on the executor that received the request and route commands to the
//! conversation's owner through [`Chat`].

use std::rc::Rc;

use livechat_core::access::{self, Action};
use livechat_core::store::Credentials;
use livechat_core::{
    Command, ConversationMetadata, ConversationStatus, MessageType, Metadata, ParticipantKind,
    Principal,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::auth::rest_credentials;
use super::engine::Chat;
use super::ids::now;
use super::input;
use super::wire::{Json, WireType};
use crate::error::GatewayError;
use crate::http::{query_param, RequestHead, Response};

/// What serves a path of [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Conversations,
    Conversation,
    Queue,
    Messages,
    AgentQueue,
    AgentConversations,
    Accept,
    AgentMessages,
    AgentClose,
    Metrics,
    OpenApi,
}

/// Every route of the router: path (matchit syntax, as in OpenAPI), what serves it, and the
/// methods it answers. The router is built from this table alone and a method not listed here
/// is 405 before any handler runs, so nothing can be served without a row here — and
/// `openapi::tests` holds these rows equal to the paths and methods of `docs/openapi.json`.
pub(crate) const ROUTES: &[(&str, Route, &[&str])] = &[
    ("/api/conversations", Route::Conversations, &["POST"]),
    (
        "/api/conversations/{id}",
        Route::Conversation,
        &["GET", "DELETE"],
    ),
    (
        "/api/conversations/{id}/queue",
        Route::Queue,
        &["GET", "POST"],
    ),
    (
        "/api/conversations/{id}/messages",
        Route::Messages,
        &["GET", "POST"],
    ),
    ("/api/agent/queue", Route::AgentQueue, &["GET"]),
    (
        "/api/agent/conversations",
        Route::AgentConversations,
        &["GET"],
    ),
    (
        "/api/agent/conversations/{id}/accept",
        Route::Accept,
        &["POST"],
    ),
    (
        "/api/agent/conversations/{id}/messages",
        Route::AgentMessages,
        &["GET"],
    ),
    (
        "/api/agent/conversations/{id}/close",
        Route::AgentClose,
        &["POST"],
    ),
    ("/api/openapi.json", Route::OpenApi, &["GET"]),
    ("/metrics", Route::Metrics, &["GET"]),
];

/// The `/api` router of one executor.
#[derive(Debug)]
pub struct Api {
    router: matchit::Router<(Route, &'static [&'static str])>,
}

impl Default for Api {
    fn default() -> Self {
        let mut router = matchit::Router::new();
        for &(path, route, methods) in ROUTES {
            let _ = router.insert(path, (route, methods));
        }
        Self { router }
    }
}

impl Api {
    /// Whether `path` is one of ours (the demo's pages included).
    pub fn matches(&self, path: &str) -> bool {
        super::demo::is_demo_path(path) || self.router.at(path).is_ok()
    }

    /// Serves a request.
    pub async fn serve(&self, chat: Rc<Chat>, req: RequestHead, body: Vec<u8>) -> Response {
        // The demo pages are no part of the contract, so not in its route table (404 when off).
        if super::demo::is_demo_path(&req.path) {
            return super::demo::serve(chat.config(), &req);
        }
        let Ok(m) = self.router.at(&req.path) else {
            return Response::not_found(&req.path);
        };
        let (route, methods) = *m.value;
        if !methods.contains(&req.method.as_str()) {
            // RFC 9110: a 405 names the methods the resource has.
            let e = method_not_allowed(&req);
            return Response::json(e.status(), e.api_body(now()))
                .with_header("Allow", methods.join(", "));
        }
        let id = m.params.get("id").map(str::to_owned).unwrap_or_default();
        let checked = match m.params.get("id") {
            Some(id) => input::conversation_id(id),
            None => Ok(()),
        }
        .and_then(|()| identity_headers(&req))
        .and_then(|()| input::json_depth(&body, chat.config().limits.max_json_depth));
        let result = match checked {
            Ok(()) => handle(&chat, route, id, &req, &body).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => r,
            Err(e @ GatewayError::Unauthorized(_)) => Response::json(401, e.api_body(now()))
                .with_header("WWW-Authenticate", "Bearer realm=\"livechat\""),
            Err(e) => Response::json(e.status(), e.api_body(now())),
        }
    }
}

/// 200 with `value` in the contract's JSON.
fn ok<T: WireType>(value: &T) -> Result<Response, GatewayError> {
    serde_json::to_vec(&Json(value))
        .map(|b| Response::json(200, b))
        .map_err(|e| GatewayError::BadRequest(e.to_string()))
}

fn json_body<T: DeserializeOwned + Default>(
    body: &[u8],
    required: bool,
) -> Result<T, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(GatewayError::BadRequest("a JSON body is required".into()))
        } else {
            Ok(T::default())
        };
    }
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::BadRequest(format!("malformed JSON body: {e}")))
}

fn method_not_allowed(req: &RequestHead) -> GatewayError {
    GatewayError::MethodNotAllowed(format!("method {} not allowed on {}", req.method, req.path))
}

fn limit_param(req: &RequestHead) -> Result<usize, GatewayError> {
    match query_param(&req.query, "limit") {
        None => Ok(100),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => Ok(n),
            _ => Err(GatewayError::BadRequest(
                "limit must be between 1 and 500".into(),
            )),
        },
    }
}

fn after_param(req: &RequestHead) -> Result<Option<u64>, GatewayError> {
    query_param(&req.query, "after")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| GatewayError::BadRequest("after must be a seq number".into()))
        })
        .transpose()
}

/// The headers that say who calls (see `auth::rest_credentials`).
const IDENTITY_HEADERS: [&str; 6] = [
    "authorization",
    "x-auth-token",
    "x-participant-id",
    "x-agent-id",
    "x-participant-name",
    "x-device-fingerprint",
];

/// Refuses an identity header that is not text (bytes past ASCII) or, when it names someone,
/// not of the shape of what it names — whether or not this request ends up reading it (a body
/// id wins over `X-Agent-Id`, `X-Participant-Id` over the fingerprint). Read as absent, a
/// malformed one would silently make a named caller anonymous (found by schemathesis).
fn identity_headers(req: &RequestHead) -> Result<(), GatewayError> {
    for name in IDENTITY_HEADERS {
        for v in req.headers.get_all(name) {
            let v = v.to_str().map(str::trim).map_err(|_| {
                GatewayError::BadRequest(format!("the {name} header must be visible ASCII"))
            })?;
            match name {
                _ if v.is_empty() => {}
                "x-participant-id" | "x-agent-id" => input::participant_id(v)?,
                "x-device-fingerprint" => input::participant_id(&format!("anon-{v}"))?,
                "x-participant-name" => input::display_name(v)?,
                _ => {}
            }
        }
    }
    Ok(())
}

fn header(req: &RequestHead, name: &str) -> Option<String> {
    req.header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The caller of a REST call: what `req` (plus a body's `named` id and display name)
/// proves, in the role the route implies (development mode believes it; a token decides its
/// own role).
fn caller(
    chat: &Chat,
    req: &RequestHead,
    role: &str,
    named: Option<String>,
    display_name: Option<String>,
) -> Result<Principal, GatewayError> {
    let creds = rest_credentials(req, role, named.clone(), display_name);
    let who = chat.auth().authenticate(&creds)?;
    // A verified caller naming someone else in the body is refused, not silently corrected.
    if let Some(n) = named.filter(|n| !n.trim().is_empty()) {
        if !chat.auth().trusts_headers() && n != who.id() {
            return Err(GatewayError::Forbidden(format!(
                "agentId {n:?} is not the identity of your token"
            )));
        }
    }
    Ok(who)
}

/// A `metadata` object within `chat.message.max-metadata-bytes`.
fn metadata_size(chat: &Chat, metadata: &Metadata) -> Result<(), GatewayError> {
    if metadata.is_empty() {
        return Ok(());
    }
    let len = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
    input::object_size("metadata", len, chat.config().message.max_metadata_bytes)
}

/// `required` when the caller named no one in development mode (a bearer cannot accept or
/// list: there is no one to act as).
fn named(who: &Principal, what: &str) -> Result<(), GatewayError> {
    if who.bearer {
        return Err(GatewayError::BadRequest(format!("{what} is required")));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelBody {
    channel: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendBody {
    content: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    sender_type: Option<String>,
    sender_id: Option<String>,
    sender_display_name: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    client_message_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcceptBody {
    agent_id: Option<String>,
    display_name: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloseBody {
    agent_id: Option<String>,
    display_name: Option<String>,
    reason: Option<String>,
}

async fn handle(
    chat: &Rc<Chat>,
    route: Route,
    id: String,
    req: &RequestHead,
    body: &[u8],
) -> Result<Response, GatewayError> {
    use http::Method;
    let m = &req.method;
    let trusted = chat.auth().trusts_headers();
    match (route, m) {
        (Route::Conversations, &Method::POST) => {
            input::object_size(
                "the conversation's attributes",
                body.len(),
                chat.config().limits.max_attributes_bytes,
            )?;
            let attrs: Metadata = json_body(body, true)?;
            match attrs.get("channel") {
                Some(serde_json::Value::String(c)) if !c.trim().is_empty() => {}
                _ => return Err(GatewayError::BadRequest("channel is required".into())),
            }
            let name = attrs
                .get("displayName")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            // A name whether or not `X-Participant-Name` overrides it (found by schemathesis).
            if let Some(n) = &name {
                input::display_name(n)?;
            }
            let creds = Credentials {
                starting: true,
                ..rest_credentials(req, "customer", None, name)
            };
            let who = chat.auth().authenticate(&creds)?;
            access::authorize_start(&who)?;
            chat.touch_presence(who.id());
            let meta = chat.start(who.participant.clone(), attrs).await?;
            let mut resp = ok(&meta)?;
            // An anonymous customer's server-issued id, with the token that proves it.
            if creds.token.is_none() {
                if let Some(token) = chat.auth().issue(&who) {
                    resp = resp.with_header("X-Participant-Token", token);
                }
            }
            Ok(resp)
        }
        (Route::Conversation, &Method::GET) => {
            let who = caller(chat, req, "customer", None, None)?;
            let meta = chat.get(id).await?;
            access::authorize(&who, Action::Read, &meta)?;
            ok(&meta)
        }
        (Route::Conversation, &Method::DELETE) => {
            let who = caller(chat, req, "customer", None, None)?;
            let decide = move |meta: &ConversationMetadata| {
                access::authorize(&who, Action::Close, meta)?;
                Ok(Some(Command::Close {
                    by: who.acts_as(meta),
                    reason: None,
                }))
            };
            ok(&chat.run(id, Box::new(decide)).await?.conversation)
        }
        (Route::Queue, &Method::POST) => {
            let b: ChannelBody = json_body(body, false)?;
            let who = caller(chat, req, "customer", None, None)?;
            let decide = move |meta: &ConversationMetadata| {
                access::authorize(&who, Action::Queue, meta)?;
                Ok(Some(Command::Enqueue {
                    channel: b.channel.clone(),
                }))
            };
            let out = chat.run(id.clone(), Box::new(decide)).await?;
            let position = match out.position {
                Some(p) => p,
                // Already queued: report where it stands.
                None => chat.queue_position(&id).await?.unwrap_or(0),
            };
            ok(&chat.estimate(position))
        }
        (Route::Queue, &Method::GET) => {
            // Read like the conversation itself: its customer's (or an admin's).
            let who = caller(chat, req, "customer", None, None)?;
            let meta = chat.get(id).await?;
            access::authorize(&who, Action::Read, &meta)?;
            ok(&chat.position_of(&meta).await?)
        }
        (Route::Messages, &Method::GET) => {
            let who = caller(chat, req, "customer", None, None)?;
            let (meta, page) = chat
                .messages(id, after_param(req)?, limit_param(req)?)
                .await?;
            access::authorize(&who, Action::Read, &meta)?;
            ok(&page.messages)
        }
        (Route::Messages, &Method::POST) => {
            let b: SendBody = json_body(body, true)?;
            let kind = match b.kind.as_deref() {
                None => MessageType::Text,
                Some(k) => MessageType::parse(k)
                    .ok_or_else(|| GatewayError::BadRequest("type must be TEXT or EVENT".into()))?,
            };
            let sender_kind = match b.sender_type.as_deref() {
                None => ParticipantKind::Customer,
                Some(s) => s
                    .parse()
                    .map_err(|e: livechat_core::ParticipantKindError| {
                        GatewayError::BadRequest(e.to_string())
                    })?,
            };
            if sender_kind == ParticipantKind::System {
                return Err(livechat_core::LifecycleError::SystemReserved.into());
            }
            let content = b
                .content
                .ok_or_else(|| GatewayError::BadRequest("content is required".into()))?;
            let who = match sender_kind {
                ParticipantKind::Agent => caller(chat, req, "agent", b.sender_id, None)?,
                _ => caller(chat, req, "customer", None, None)?,
            };
            if who.role.kind() != sender_kind {
                return Err(GatewayError::Forbidden(format!(
                    "senderType {} does not match your role ({})",
                    sender_kind.as_str(),
                    who.role.as_str()
                )));
            }
            // Development mode keeps the old per-message display name; a verified identity
            // writes under its stored name.
            let name = b.sender_display_name.filter(|n| trusted && !n.is_empty());
            if let Some(n) = &name {
                input::display_name(n)?;
            }
            metadata_size(chat, &b.metadata)?;
            let (metadata, client_message_id) = (b.metadata, b.client_message_id);
            let max_length = chat.config().message.max_length;
            // The sender is resolved from the metadata the commit checks.
            let decide = move |meta: &ConversationMetadata| {
                access::authorize(&who, Action::Send, meta)?;
                let mut sender = who.acts_as(meta);
                if let Some(n) = &name {
                    sender.display_name = n.clone();
                }
                Ok(Some(Command::Send {
                    sender,
                    content: content.clone(),
                    kind,
                    metadata: metadata.clone(),
                    client_message_id: client_message_id.clone(),
                    max_length,
                }))
            };
            ok(&chat.run(id, Box::new(decide)).await?.message)
        }
        (Route::AgentQueue, &Method::GET) => {
            let who = caller(chat, req, "agent", None, None)?;
            access::authorize_queue(&who)?;
            let num = |k: &str, d: usize| {
                query_param(&req.query, k).map_or(Ok(d), |v| {
                    v.parse::<usize>()
                        .map_err(|_| GatewayError::BadRequest(format!("{k} must be a number")))
                })
            };
            let (page, size) = (num("page", 0)?, num("size", 50)?);
            if size == 0 || size > 500 {
                return Err(GatewayError::BadRequest(
                    "size must be between 1 and 500".into(),
                ));
            }
            ok(&chat.queue_page(page, size).await?)
        }
        (Route::AgentConversations, &Method::GET) => {
            let who = caller(chat, req, "agent", None, None)?;
            // Whose list: `X-Agent-Id` (an admin may name anyone), else the caller's own.
            let agent_id = match (header(req, "x-agent-id"), trusted) {
                (Some(a), _) => a,
                (None, false) => who.id().to_owned(),
                (None, true) => {
                    return Err(GatewayError::BadRequest("X-Agent-Id is required".into()))
                }
            };
            access::authorize_agent_list(&who, &agent_id)?;
            let mut statuses = Vec::new();
            for v in crate::http::query_params(&req.query, "status") {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    statuses.push(
                        ConversationStatus::parse(s).ok_or_else(|| {
                            GatewayError::BadRequest(format!("unknown status {s}"))
                        })?,
                    );
                }
            }
            ok(&chat.agent_conversations(&agent_id, &statuses).await?)
        }
        (Route::Accept, &Method::POST) => {
            let b: AcceptBody = json_body(body, true)?;
            metadata_size(chat, &b.metadata)?;
            let who = caller(chat, req, "agent", b.agent_id, b.display_name.clone())?;
            named(&who, "agentId")?;
            access::authorize_queue(&who)?;
            let mut agent = who.participant.clone().with_metadata(b.metadata);
            if trusted {
                // The old contract: the display name defaults to the agent id.
                agent.display_name = b
                    .display_name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| agent.id.clone());
            }
            chat.touch_presence(&agent.id);
            let cmd = Command::Accept {
                agent,
                max_per_agent: chat.config().queue.max_concurrent_by_agent,
            };
            ok(&chat.command(id, cmd).await?.conversation)
        }
        (Route::AgentMessages, &Method::GET) => {
            let who = caller(chat, req, "agent", None, None)?;
            let (meta, page) = chat
                .messages(id, after_param(req)?, limit_param(req)?)
                .await?;
            access::authorize(&who, Action::Read, &meta)?;
            ok(&page.messages)
        }
        (Route::OpenApi, &Method::GET) => Ok(super::openapi::response()),
        // Awaits every executor's report (at most `metrics::SCRAPE_DEADLINE`).
        (Route::Metrics, &Method::GET) => Ok(super::metrics::serve(chat.clone()).await),
        (Route::AgentClose, &Method::POST) => {
            let b: CloseBody = json_body(body, false)?;
            let who = caller(chat, req, "agent", b.agent_id, None)?;
            let (name, reason) = (
                b.display_name.filter(|n| trusted && !n.is_empty()),
                b.reason,
            );
            if let Some(n) = &name {
                input::display_name(n)?;
            }
            if let Some(r) = &reason {
                // A close reason is stored and shown: bounded text.
                input::close_reason(r)?;
            }
            let decide = move |meta: &ConversationMetadata| {
                access::authorize(&who, Action::Close, meta)?;
                let mut by = who.acts_as(meta);
                if let Some(n) = &name {
                    by.display_name = n.clone();
                }
                Ok(Some(Command::Close {
                    by,
                    reason: reason.clone(),
                }))
            };
            ok(&chat.run(id, Box::new(decide)).await?.conversation)
        }
        _ => Err(method_not_allowed(req)),
    }
}
