//! The Redis key schema (under `chat.redis.key-prefix`, default `lc`). Every key of one
//! conversation carries the conversation id as its hash tag `{id}`, so they share one Redis
//! Cluster slot and one script can touch them all; the agent keys carry the agent id the same
//! way. The full table, with slots, TTLs and the cross-slot argument, is in ARCHITECTURE.md.

/// Key and channel names for one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// `lc:conversation:{id}` — hash: `meta` (JSON), `v` (version), `st` (status), `up`
    /// (updatedAt ms), `act` (Redis TIME µs of the last change: orders same-millisecond
    /// activity across nodes).
    pub fn meta(&self, id: &str) -> String {
        format!("{}:conversation:{{{id}}}", self.prefix)
    }

    /// `lc:conversation:{id}:messages` — list of ChatMessage JSON, the latest `message-buffer`.
    pub fn messages(&self, id: &str) -> String {
        format!("{}:conversation:{{{id}}}:messages", self.prefix)
    }

    /// `lc:conversation:{id}:seq` — the last assigned `seq`.
    pub fn seq(&self, id: &str) -> String {
        format!("{}:conversation:{{{id}}}:seq", self.prefix)
    }

    /// `lc:conversation:{id}:cmids` — sorted set clientMessageId → seq, trimmed with the buffer.
    pub fn cmids(&self, id: &str) -> String {
        format!("{}:conversation:{{{id}}}:cmids", self.prefix)
    }

    /// `lc:assignment:{id}` — the current agent's id.
    pub fn assignment(&self, id: &str) -> String {
        format!("{}:assignment:{{{id}}}", self.prefix)
    }

    /// The five keys of a conversation, in the order the commit script takes them.
    pub fn conversation(&self, id: &str) -> [String; 5] {
        [
            self.meta(id),
            self.messages(id),
            self.seq(id),
            self.cmids(id),
            self.assignment(id),
        ]
    }

    /// `lc:lock:conversation:{id}` — held across the cross-slot steps of one commit.
    pub fn lock(&self, id: &str) -> String {
        format!("{}:lock:conversation:{{{id}}}", self.prefix)
    }

    /// `lc:room:{id}` — Pub/Sub channel of the conversation's room events.
    pub fn room_channel(&self, id: &str) -> String {
        format!("{}:room:{{{id}}}", self.prefix)
    }

    /// The conversation id of a room channel name.
    pub fn room_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":room:{")?
            .strip_suffix('}')
    }

    /// `lc:{queue}:pending` — sorted set of queued conversation ids by enqueuedAt ms. The
    /// queue's keys and channel share the hash tag `{queue}`: one slot, one script.
    pub fn queue_pending(&self) -> String {
        format!("{}:{{queue}}:pending", self.prefix)
    }

    /// `lc:{queue}:entries` — hash conversation id → QueueEntry JSON.
    pub fn queue_entries(&self) -> String {
        format!("{}:{{queue}}:entries", self.prefix)
    }

    /// `lc:{queue}:changed` — Pub/Sub channel: a ping per queue change.
    pub fn queue_channel(&self) -> String {
        format!("{}:{{queue}}:changed", self.prefix)
    }

    /// `lc:agent:{agentId}:conversations` — set of the conversations the agent holds now
    /// (its slots: the cap counts these).
    pub fn agent_held(&self, agent: &str) -> String {
        format!("{}:agent:{{{agent}}}:conversations", self.prefix)
    }

    /// The agent id of an [`Keys::agent_held`] key.
    pub fn agent_of_held<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_prefix(":agent:{")?
            .strip_suffix("}:conversations")
    }

    /// `lc:agent:{agentId}:history` — sorted set of every conversation the agent accepted
    /// (by accept time) until it is forgotten: the index behind the agent's list.
    pub fn agent_history(&self, agent: &str) -> String {
        format!("{}:agent:{{{agent}}}:history", self.prefix)
    }

    /// `lc:presence:{participantId}` — last seen (ms), expiring after the presence TTL.
    pub fn presence(&self, participant: &str) -> String {
        format!("{}:presence:{{{participant}}}", self.prefix)
    }

    /// `lc:conversations:open` — not-closed conversations by createdAt (max-duration scan).
    pub fn open(&self) -> String {
        format!("{}:conversations:open", self.prefix)
    }

    /// `lc:conversations:idle` — not-closed conversations by last known activity, refreshed
    /// lazily by the scan (inactivity).
    pub fn idle(&self) -> String {
        format!("{}:conversations:idle", self.prefix)
    }

    /// `lc:conversations:assigned` — ASSIGNED conversations by the time they were accepted:
    /// with `open` and the queue, what `livechat_conversations{status}` is read from (kept like
    /// the other indexes: in the follow-up write of a commit, repaired by the next step or the
    /// scan).
    pub fn assigned(&self) -> String {
        format!("{}:conversations:assigned", self.prefix)
    }

    /// `lc:conversations:closed` — closed conversations by closedAt (retention).
    pub fn closed(&self) -> String {
        format!("{}:conversations:closed", self.prefix)
    }

    /// `lc:lock:housekeeping` — the node that holds it sweeps this interval.
    pub fn housekeeping_lock(&self) -> String {
        format!("{}:lock:housekeeping", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_keys_share_one_cluster_slot() {
        let k = Keys::new("lc");
        let id = "5d2e8f1a-3b4c-4d5e-8f6a-7b8c9d0e1f2a";
        // Redis Cluster hashes only the first `{...}` of a key (its hash tag).
        let slot = |key: &str| {
            let open = key.find('{').unwrap();
            let close = open + key[open..].find('}').unwrap();
            key[open + 1..close].to_owned()
        };
        let mut keys = k.conversation(id).to_vec();
        keys.push(k.lock(id));
        keys.push(k.room_channel(id));
        assert!(
            keys.iter().all(|key| slot(key) == slot(&keys[0])),
            "{keys:?}"
        );
        assert_eq!(slot(&keys[0]), id);
        assert_eq!(k.meta(id), format!("lc:conversation:{{{id}}}"));
        assert_eq!(k.room_of(&k.room_channel(id)), Some(id));
        assert_eq!(slot(&k.agent_held("ann")), slot(&k.agent_history("ann")));
        assert_eq!(k.agent_of_held(&k.agent_held("ann")), Some("ann"));
        let queue = [k.queue_pending(), k.queue_entries(), k.queue_channel()];
        assert!(queue.iter().all(|key| slot(key) == "queue"), "{queue:?}");
    }
}
