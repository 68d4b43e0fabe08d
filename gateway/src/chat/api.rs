//! The REST contract under `/api` (JSON; errors `{"timestamp","error","code"}`).
//!
//! Handlers run on the executor that received the request and route commands to the
//! conversation's owner through [`Chat`].

use std::rc::Rc;

use livechat_core::store::{AuthProvider, Credentials};
use livechat_core::{
    ChatParticipant, Command, ConversationMetadata, ConversationStatus, MessageType, Metadata,
    ParticipantKind, QueuePosition,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::engine::Chat;
use super::ids::now;
use super::participant::TrustHeaders;
use super::wire::{Json, WireType};
use crate::error::GatewayError;
use crate::http::{query_param, RequestHead, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
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
}

/// The `/api` router of one executor.
#[derive(Debug)]
pub struct Api {
    router: matchit::Router<Route>,
}

impl Default for Api {
    fn default() -> Self {
        let mut router = matchit::Router::new();
        for (path, route) in [
            ("/api/conversations", Route::Conversations),
            ("/api/conversations/{id}", Route::Conversation),
            ("/api/conversations/{id}/queue", Route::Queue),
            ("/api/conversations/{id}/messages", Route::Messages),
            ("/api/agent/queue", Route::AgentQueue),
            ("/api/agent/conversations", Route::AgentConversations),
            ("/api/agent/conversations/{id}/accept", Route::Accept),
            (
                "/api/agent/conversations/{id}/messages",
                Route::AgentMessages,
            ),
            ("/api/agent/conversations/{id}/close", Route::AgentClose),
            ("/metrics", Route::Metrics),
        ] {
            let _ = router.insert(path, route);
        }
        Self { router }
    }
}

impl Api {
    /// Whether `path` is one of ours.
    pub fn matches(&self, path: &str) -> bool {
        self.router.at(path).is_ok()
    }

    /// Serves a request.
    pub async fn serve(&self, chat: Rc<Chat>, req: RequestHead, body: Vec<u8>) -> Response {
        let Ok(m) = self.router.at(&req.path) else {
            return Response::not_found(&req.path);
        };
        let route = *m.value;
        let id = m.params.get("id").map(str::to_owned).unwrap_or_default();
        match handle(&chat, route, id, &req, &body).await {
            Ok(r) => r,
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

fn header(req: &RequestHead, name: &str) -> Option<String> {
    req.header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The customer of a REST call: `X-Participant-Id`, else `X-Auth-Token`, else
/// `anon-<X-Device-Fingerprint>`, else a new id; name `X-Participant-Name`, else `fallback_name`.
fn customer(
    req: &RequestHead,
    fallback_name: Option<String>,
) -> Result<ChatParticipant, GatewayError> {
    let creds = Credentials {
        role: Some("customer".into()),
        token: header(req, "x-participant-id").or_else(|| header(req, "x-auth-token")),
        display_name: header(req, "x-participant-name").or(fallback_name),
        fingerprint: header(req, "x-device-fingerprint"),
    };
    TrustHeaders
        .authenticate(&creds)
        .map_err(|e| GatewayError::BadRequest(e.0))
}

fn agent(
    id: Option<String>,
    name: Option<String>,
    metadata: Metadata,
) -> Result<ChatParticipant, GatewayError> {
    let id = id
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| GatewayError::BadRequest("agentId is required".into()))?;
    let name = name
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| id.clone());
    Ok(ChatParticipant::new(id, ParticipantKind::Agent, name).with_metadata(metadata))
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
    match (route, m) {
        (Route::Conversations, &Method::POST) => {
            let attrs: Metadata = json_body(body, true)?;
            match attrs.get("channel") {
                Some(serde_json::Value::String(c)) if !c.trim().is_empty() => {}
                _ => return Err(GatewayError::BadRequest("channel is required".into())),
            }
            let name = attrs
                .get("displayName")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let customer = customer(req, name)?;
            chat.touch_presence(&customer.id);
            ok(&chat.start(customer, attrs).await?)
        }
        (Route::Conversation, &Method::GET) => ok(&chat.get(id).await?),
        (Route::Conversation, &Method::DELETE) => {
            let caller = header(req, "x-participant-id");
            let decide = move |meta: &ConversationMetadata| match &caller {
                Some(pid) if *pid != meta.customer.id => Err(GatewayError::Forbidden(
                    "only the conversation's customer may close it here".into(),
                )),
                _ => Ok(Some(Command::Close {
                    by: meta.customer.clone(),
                    reason: None,
                })),
            };
            ok(&chat.run(id, Box::new(decide)).await?.conversation)
        }
        (Route::Queue, &Method::POST) => {
            let b: ChannelBody = json_body(body, false)?;
            let out = chat
                .command(id.clone(), Command::Enqueue { channel: b.channel })
                .await?;
            let per = chat.config().queue.estimated_wait_per_position.as_millis() as i64;
            let position = match out.position {
                Some(p) => p,
                // Already queued: report where it stands.
                None => chat.queue_position(&id).await?.unwrap_or(0),
            };
            ok(&QueuePosition::estimate(position, per))
        }
        (Route::Messages, &Method::GET) => {
            let (_, page) = chat
                .messages(id, after_param(req)?, limit_param(req)?)
                .await?;
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
            let (name, sender_id) = (
                b.sender_display_name,
                b.sender_id.or_else(|| header(req, "x-agent-id")),
            );
            let (metadata, client_message_id) = (b.metadata, b.client_message_id);
            let max_length = chat.config().message.max_length;
            // The sender is resolved from the metadata the commit checks.
            let decide = move |meta: &ConversationMetadata| {
                let sender = if sender_kind == ParticipantKind::Customer {
                    let mut c = meta.customer.clone();
                    if let Some(n) = name.clone().filter(|n| !n.is_empty()) {
                        c.display_name = n;
                    }
                    c
                } else {
                    let fallback = meta.agent.as_ref();
                    let sid = sender_id.clone().or_else(|| fallback.map(|a| a.id.clone()));
                    let name = name
                        .clone()
                        .or_else(|| fallback.map(|a| a.display_name.clone()));
                    agent(sid, name, Metadata::new())?
                };
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
            let agent_id = header(req, "x-agent-id")
                .ok_or_else(|| GatewayError::BadRequest("X-Agent-Id is required".into()))?;
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
            let agent_id = b.agent_id.or_else(|| header(req, "x-agent-id"));
            let agent = agent(agent_id, b.display_name, b.metadata)?;
            chat.touch_presence(&agent.id);
            let cmd = Command::Accept {
                agent,
                max_per_agent: chat.config().queue.max_concurrent_by_agent,
            };
            ok(&chat.command(id, cmd).await?.conversation)
        }
        (Route::AgentMessages, &Method::GET) => {
            let agent_id = header(req, "x-agent-id");
            let (meta, page) = chat
                .messages(id, after_param(req)?, limit_param(req)?)
                .await?;
            if let (Some(owner), Some(asker)) = (meta.agent.as_ref(), agent_id) {
                if owner.id != asker {
                    return Err(GatewayError::Forbidden(
                        "conversation is assigned to another agent".into(),
                    ));
                }
            }
            ok(&page.messages)
        }
        (Route::Metrics, &Method::GET) => Ok(Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            super::metrics::render(chat).into_bytes(),
        )),
        (Route::AgentClose, &Method::POST) => {
            let b: CloseBody = json_body(body, false)?;
            let asked = b.agent_id.or_else(|| header(req, "x-agent-id"));
            let (name, reason) = (b.display_name, b.reason);
            // Defaults come from the agent the commit-checked metadata names.
            let decide = move |meta: &ConversationMetadata| {
                let agent_id = asked
                    .clone()
                    .or_else(|| meta.agent.as_ref().map(|a| a.id.clone()));
                let name = name.clone().or_else(|| {
                    meta.agent
                        .as_ref()
                        .filter(|a| Some(&a.id) == agent_id.as_ref())
                        .map(|a| a.display_name.clone())
                });
                Ok(Some(Command::Close {
                    by: agent(agent_id, name, Metadata::new())?,
                    reason: reason.clone(),
                }))
            };
            ok(&chat.run(id, Box::new(decide)).await?.conversation)
        }
        _ => Err(method_not_allowed(req)),
    }
}
