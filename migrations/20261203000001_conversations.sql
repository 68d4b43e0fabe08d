-- Durable conversation metadata: one row per conversation, kept in step with Redis (or the
-- embedded store) one lifecycle transition at a time. Operators and report writers query this
-- table directly: its column names are a contract (see ARCHITECTURE.md, "PostgreSQL").
CREATE TABLE conversations (
    id            text        PRIMARY KEY,
    -- The API's strings: OPEN, QUEUED, ASSIGNED, CLOSED.
    status        text        NOT NULL CHECK (status IN ('OPEN', 'QUEUED', 'ASSIGNED', 'CLOSED')),
    customer_id   text        NOT NULL,
    customer_name text,
    agent_id      text,
    agent_name    text,
    channel       text,
    attributes    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    tags          text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    -- Last change or message (messages move it at most once per second per conversation).
    updated_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    closed_at     timestamptz,
    -- The closer's participant id, or SYSTEM (housekeeping).
    closed_by     text,
    -- The closer's reason, or INACTIVITY / MAX_DURATION (housekeeping).
    close_reason  text,
    -- Optimistic concurrency: the conversation's version after its last transition. A write
    -- carrying an older version is refused (never applied over a newer one).
    version       bigint      NOT NULL CHECK (version > 0)
);

-- "Conversations of agent X (by status), newest activity first" (GET /api/agent/conversations).
CREATE INDEX conversations_agent_status_activity
    ON conversations (agent_id, status, updated_at DESC)
    WHERE agent_id IS NOT NULL;

-- Time-range reports: started in a range, closed in a range, by status over a range.
CREATE INDEX conversations_created_at ON conversations (created_at);
CREATE INDEX conversations_closed_at ON conversations (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX conversations_status_updated_at ON conversations (status, updated_at);
