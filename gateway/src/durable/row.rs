//! The `conversations` row: how `ConversationMetadata` is spelled in PostgreSQL, both ways.
//!
//! Writes go as one JSON array per group commit (`jsonb_to_recordset`), so a batch of any size
//! is one statement with one parameter; instants travel as epoch milliseconds. Reads select
//! the same columns with instants as milliseconds. Participants keep their id and display
//! name (the columns of the contract); their free-form metadata is not kept.

use livechat_core::{
    ChatParticipant, ConversationMetadata, ConversationStatus, Metadata, ParticipantKind, Timestamp,
};
use serde_json::{json, Value};

/// The columns of a read, instants as epoch milliseconds (a macro so the statements below
/// are literals: sqlx refuses SQL built at run time unless audited).
macro_rules! select_columns {
    () => {
        "SELECT id, status, customer_id, customer_name, agent_id, agent_name, attributes, tags, \
         (extract(epoch from created_at) * 1000)::bigint AS created_at, \
         (extract(epoch from updated_at) * 1000)::bigint AS updated_at, \
         (extract(epoch from accepted_at) * 1000)::bigint AS accepted_at, \
         (extract(epoch from closed_at) * 1000)::bigint AS closed_at, \
         closed_by, close_reason, version FROM conversations "
    };
}

/// One row as read.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    id: String,
    status: String,
    customer_id: String,
    customer_name: Option<String>,
    agent_id: Option<String>,
    agent_name: Option<String>,
    attributes: Value,
    tags: Vec<String>,
    created_at: i64,
    updated_at: i64,
    accepted_at: Option<i64>,
    closed_at: Option<i64>,
    closed_by: Option<String>,
    close_reason: Option<String>,
    version: i64,
}

impl Row {
    /// The metadata this row records; `None` when a column holds what no version of
    /// livechat writes (a row edited by hand), which the caller reports.
    pub fn into_metadata(self) -> Option<ConversationMetadata> {
        let status = ConversationStatus::parse(&self.status)?;
        let attributes: Metadata = match self.attributes {
            Value::Object(map) => map.into_iter().collect(),
            _ => Metadata::new(),
        };
        Some(ConversationMetadata {
            id: self.id,
            status,
            customer: ChatParticipant::new(
                self.customer_id,
                ParticipantKind::Customer,
                self.customer_name.unwrap_or_default(),
            ),
            agent: self.agent_id.map(|id| {
                ChatParticipant::new(
                    id,
                    ParticipantKind::Agent,
                    self.agent_name.unwrap_or_default(),
                )
            }),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            accepted_at: self.accepted_at.map(Timestamp),
            closed_at: self.closed_at.map(Timestamp),
            closed_by: self.closed_by,
            close_reason: self.close_reason,
            tags: self.tags,
            attributes,
            version: u64::try_from(self.version).ok()?,
        })
    }
}

/// One element of a write's JSON array (see [`UPSERT`]).
pub fn to_json(c: &ConversationMetadata) -> Value {
    json!({
        "id": c.id,
        "status": c.status.as_str(),
        "customer_id": c.customer.id,
        "customer_name": c.customer.display_name,
        "agent_id": c.agent.as_ref().map(|a| a.id.as_str()),
        "agent_name": c.agent.as_ref().map(|a| a.display_name.as_str()),
        "channel": c.channel(),
        "attributes": c.attributes,
        "tags": c.tags,
        "created_at": c.created_at.millis(),
        "updated_at": c.updated_at.millis(),
        "accepted_at": c.accepted_at.map(Timestamp::millis),
        "closed_at": c.closed_at.map(Timestamp::millis),
        "closed_by": c.closed_by,
        "close_reason": c.close_reason,
        "version": c.version,
    })
}

/// The group commit: every row of `$1` (a JSON array of [`to_json`] objects, ids unique) is
/// inserted, or updated when the stored version is not newer. Answers one line per input row:
/// whether it was applied and the version stored before the statement (what a refused —
/// stale — write was refused over).
///
/// `updated_at` never moves back (message activity may have moved it past the transition's).
pub const UPSERT: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
        id text, status text, customer_id text, customer_name text, agent_id text,
        agent_name text, channel text, attributes jsonb, tags text[], created_at bigint,
        updated_at bigint, accepted_at bigint, closed_at bigint, closed_by text,
        close_reason text, version bigint)
), written AS (
    INSERT INTO conversations AS c (id, status, customer_id, customer_name, agent_id,
        agent_name, channel, attributes, tags, created_at, updated_at, accepted_at, closed_at,
        closed_by, close_reason, version)
    SELECT id, status, customer_id, customer_name, agent_id, agent_name, channel,
        COALESCE(attributes, '{}'::jsonb), COALESCE(tags, '{}'::text[]),
        to_timestamp(created_at / 1000.0), to_timestamp(updated_at / 1000.0),
        to_timestamp(accepted_at / 1000.0), to_timestamp(closed_at / 1000.0),
        closed_by, close_reason, version
    FROM input
    ON CONFLICT (id) DO UPDATE SET
        status = EXCLUDED.status,
        customer_id = EXCLUDED.customer_id,
        customer_name = EXCLUDED.customer_name,
        agent_id = EXCLUDED.agent_id,
        agent_name = EXCLUDED.agent_name,
        channel = EXCLUDED.channel,
        attributes = EXCLUDED.attributes,
        tags = EXCLUDED.tags,
        created_at = EXCLUDED.created_at,
        updated_at = GREATEST(c.updated_at, EXCLUDED.updated_at),
        accepted_at = EXCLUDED.accepted_at,
        closed_at = EXCLUDED.closed_at,
        closed_by = EXCLUDED.closed_by,
        close_reason = EXCLUDED.close_reason,
        version = EXCLUDED.version
    WHERE c.version <= EXCLUDED.version
    RETURNING c.id
)
SELECT i.id, (w.id IS NOT NULL) AS applied, old.version AS stored
FROM input i
LEFT JOIN written w ON w.id = i.id
LEFT JOIN conversations old ON old.id = i.id
"#;

/// Puts a row back as it was before a write whose step did not happen: `$2` = the version
/// that write gave it (nothing happens if the row moved on since), `$3` = the earlier row as
/// [`to_json`].
pub const REVERT: &str = r#"
UPDATE conversations c SET
    status = b.status, agent_id = b.agent_id, agent_name = b.agent_name,
    channel = b.channel, attributes = COALESCE(b.attributes, '{}'::jsonb),
    tags = COALESCE(b.tags, '{}'::text[]), updated_at = to_timestamp(b.updated_at / 1000.0),
    accepted_at = to_timestamp(b.accepted_at / 1000.0),
    closed_at = to_timestamp(b.closed_at / 1000.0), closed_by = b.closed_by,
    close_reason = b.close_reason, version = b.version
FROM jsonb_to_record($3::jsonb) AS b(
    status text, agent_id text, agent_name text, channel text, attributes jsonb, tags text[],
    updated_at bigint, accepted_at bigint, closed_at bigint, closed_by text,
    close_reason text, version bigint)
WHERE c.id = $1 AND c.version = $2
"#;

/// Removes the row of a start whose step did not happen (`$2`: the version it was written
/// with).
pub const UNSTART: &str = "DELETE FROM conversations WHERE id = $1 AND version = $2";

/// Coalesced activity: `$1` is a JSON array of `{"id","at"}` (epoch milliseconds).
pub const TOUCH: &str = r#"
UPDATE conversations c
SET updated_at = GREATEST(c.updated_at, to_timestamp(v.at / 1000.0))
FROM jsonb_to_recordset($1::jsonb) AS v(id text, at bigint)
WHERE c.id = v.id
"#;

/// One conversation.
pub const SELECT_ONE: &str = concat!(select_columns!(), "WHERE id = $1");

/// An agent's conversations (`$2`: statuses, empty = all), newest activity first, `$3` at most.
pub const SELECT_BY_AGENT: &str = concat!(
    select_columns!(),
    "WHERE agent_id = $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2::text[])) ",
    "ORDER BY updated_at DESC LIMIT $3"
);
