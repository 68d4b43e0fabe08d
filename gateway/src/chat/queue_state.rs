//! The agent queue and agent slots of the embedded backend.
//!
//! Lives on: the queue owner executor, `ShardMap::owner(QUEUE_KEY)`. All queue entries, agent
//! slot counts and the per-agent conversation index live there, so "claim a slot and leave the
//! queue" is one local, atomic step — the embedded equivalent of the Redis Lua script.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use livechat_core::store::Claim;
use livechat_core::{QueueEntry, Timestamp};

/// The key whose owner executor holds the queue.
pub const QUEUE_KEY: &str = "livechat:queue";

type Key = (Timestamp, String);

/// Queue entries (oldest first), agent slots and the agent → conversations index.
#[derive(Debug, Default)]
pub struct QueueState {
    entries: RefCell<BTreeMap<Key, QueueEntry>>,
    keys: RefCell<HashMap<String, Key>>,
    slots: RefCell<HashMap<String, HashSet<String>>>,
    history: RefCell<HashMap<String, Vec<String>>>,
}

impl QueueState {
    /// Adds an entry (replacing an older entry of the same conversation); returns its position.
    pub fn enqueue(&self, entry: QueueEntry) -> usize {
        self.remove(&entry.conversation_id);
        let key = (entry.enqueued_at, entry.conversation_id.clone());
        self.keys
            .borrow_mut()
            .insert(entry.conversation_id.clone(), key.clone());
        self.entries.borrow_mut().insert(key, entry.clone());
        self.position(&entry.conversation_id).unwrap_or(0)
    }

    /// Removes a conversation; false if it was not queued.
    pub fn remove(&self, conversation_id: &str) -> bool {
        match self.keys.borrow_mut().remove(conversation_id) {
            Some(key) => self.entries.borrow_mut().remove(&key).is_some(),
            None => false,
        }
    }

    /// 0-based position.
    pub fn position(&self, conversation_id: &str) -> Option<usize> {
        let key = self.keys.borrow().get(conversation_id).cloned()?;
        Some(self.entries.borrow().range(..key).count())
    }

    /// Page `page` of `size` entries, oldest first.
    pub fn page(&self, page: usize, size: usize) -> Vec<QueueEntry> {
        self.entries
            .borrow()
            .values()
            .skip(page.saturating_mul(size))
            .take(size)
            .cloned()
            .collect()
    }

    /// Number of queued conversations.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Atomically: if `agent` holds fewer than `max` conversations, gives it this one and takes
    /// the conversation out of the queue. Claiming a conversation the agent already holds is
    /// granted again (idempotent).
    pub fn claim(&self, agent: &str, conversation_id: &str, max: usize) -> Claim {
        let mut slots = self.slots.borrow_mut();
        let held = slots.entry(agent.to_owned()).or_default();
        if held.contains(conversation_id) {
            return Claim::Granted(held.len());
        }
        if held.len() >= max {
            return Claim::AtCapacity(max);
        }
        held.insert(conversation_id.to_owned());
        let n = held.len();
        drop(slots);
        self.remove(conversation_id);
        let mut history = self.history.borrow_mut();
        let list = history.entry(agent.to_owned()).or_default();
        if !list.iter().any(|c| c == conversation_id) {
            list.push(conversation_id.to_owned());
        }
        Claim::Granted(n)
    }

    /// Frees the agent's slot for this conversation.
    pub fn release(&self, agent: &str, conversation_id: &str) {
        let mut slots = self.slots.borrow_mut();
        if let Some(held) = slots.get_mut(agent) {
            held.remove(conversation_id);
            if held.is_empty() {
                slots.remove(agent);
            }
        }
    }

    /// Conversations the agent has held (the index behind `GET /api/agent/conversations`).
    pub fn agent_conversations(&self, agent: &str) -> Vec<String> {
        self.history
            .borrow()
            .get(agent)
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets a conversation in every agent's index (retention).
    pub fn forget(&self, agent: &str, conversation_id: &str) {
        if let Some(list) = self.history.borrow_mut().get_mut(agent) {
            list.retain(|c| c != conversation_id);
        }
    }

    /// Conversations queued at or before `cutoff`.
    pub fn expired(&self, cutoff: Timestamp) -> Vec<String> {
        self.entries
            .borrow()
            .values()
            .take_while(|e| e.enqueued_at <= cutoff)
            .map(|e| e.conversation_id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, at: i64) -> QueueEntry {
        QueueEntry {
            conversation_id: id.into(),
            enqueued_at: Timestamp(at),
            customer_id: "c".into(),
            channel: None,
            customer_name: None,
            customer_phone: None,
        }
    }

    #[test]
    fn positions_follow_enqueue_time() {
        let q = QueueState::default();
        assert_eq!(q.enqueue(entry("b", 20)), 0);
        assert_eq!(q.enqueue(entry("a", 10)), 0);
        assert_eq!(q.position("b"), Some(1));
        assert_eq!(
            q.page(0, 10)
                .iter()
                .map(|e| e.conversation_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(q.page(1, 1)[0].conversation_id, "b");
        assert_eq!(q.expired(Timestamp(15)), vec!["a".to_string()]);
        assert!(q.remove("a"));
        assert!(!q.remove("a"));
        assert_eq!(q.position("b"), Some(0));
    }

    #[test]
    fn claims_respect_the_cap_and_leave_the_queue() {
        let q = QueueState::default();
        for (i, id) in ["x", "y", "z"].iter().enumerate() {
            q.enqueue(entry(id, i as i64));
        }
        assert_eq!(q.claim("ann", "x", 2), Claim::Granted(1));
        assert_eq!(q.claim("ann", "x", 2), Claim::Granted(1));
        assert_eq!(q.claim("ann", "y", 2), Claim::Granted(2));
        assert_eq!(q.claim("ann", "z", 2), Claim::AtCapacity(2));
        assert_eq!(q.position("z"), Some(0));
        q.release("ann", "x");
        assert_eq!(q.claim("ann", "z", 2), Claim::Granted(2));
        assert!(q.is_empty());
        assert_eq!(q.agent_conversations("ann"), ["x", "y", "z"]);
    }
}
