//! The agent queue and agent slots of the embedded backend.
//!
//! Lives on: the queue owner executor, `ShardMap::owner(QUEUE_KEY)`. All queue entries, agent
//! slot counts and the per-agent conversation index live there, so a commit's queue and slot
//! changes ("claim a slot and leave the queue") are one local, synchronous step — the embedded
//! equivalent of the Redis Lua script.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use livechat_core::{AgentChange, QueueChange, QueueEntry, Refusal, Timestamp};

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

    /// The ids of the oldest `limit` entries, oldest first.
    pub fn ids(&self, limit: usize) -> Vec<String> {
        self.entries
            .borrow()
            .keys()
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Number of queued conversations.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// When the oldest entry was enqueued.
    pub fn oldest(&self) -> Option<Timestamp> {
        self.entries.borrow().keys().next().map(|(at, _)| *at)
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A commit's queue and slot changes, all or nothing: a claim over the cap refuses the
    /// whole step before anything changes. Returns the queue position after an `Add`.
    pub fn apply(
        &self,
        conversation_id: &str,
        queue: Option<QueueChange>,
        agent: Option<AgentChange>,
    ) -> Result<Option<usize>, Refusal> {
        if let Some(AgentChange::Claim { agent_id, max }) = &agent {
            let slots = self.slots.borrow();
            let held = slots.get(agent_id);
            let holds_it = held.is_some_and(|h| h.contains(conversation_id));
            if !holds_it && held.map_or(0, HashSet::len) >= *max {
                return Err(Refusal::AtCapacity(*max));
            }
        }
        if let Some(QueueChange::Expire(by)) = &queue {
            let key = self.keys.borrow().get(conversation_id).cloned();
            if key.is_none_or(|(at, _)| at > *by) {
                return Err(Refusal::Stale);
            }
        }
        let position = match queue {
            Some(QueueChange::Add(entry)) => Some(self.enqueue(entry)),
            Some(QueueChange::Remove | QueueChange::Expire(_)) => {
                self.remove(conversation_id);
                None
            }
            None => None,
        };
        match agent {
            Some(AgentChange::Claim { agent_id, .. }) => self.claim(&agent_id, conversation_id),
            Some(AgentChange::Release { agent_id }) => self.release(&agent_id, conversation_id),
            None => {}
        }
        Ok(position)
    }

    /// Gives the agent this conversation (the cap was checked by [`QueueState::apply`]) and
    /// records it in the agent's index.
    fn claim(&self, agent: &str, conversation_id: &str) {
        self.slots
            .borrow_mut()
            .entry(agent.to_owned())
            .or_default()
            .insert(conversation_id.to_owned());
        let mut history = self.history.borrow_mut();
        let list = history.entry(agent.to_owned()).or_default();
        if !list.iter().any(|c| c == conversation_id) {
            list.push(conversation_id.to_owned());
        }
    }

    /// Frees the agent's slot for this conversation.
    fn release(&self, agent: &str, conversation_id: &str) {
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

    fn accept(q: &QueueState, agent: &str, id: &str, max: usize) -> Result<Option<usize>, Refusal> {
        let claim = AgentChange::Claim {
            agent_id: agent.into(),
            max,
        };
        q.apply(id, Some(QueueChange::Remove), Some(claim))
    }

    #[test]
    fn claims_respect_the_cap_and_leave_the_queue_all_or_nothing() {
        let q = QueueState::default();
        for (i, id) in ["x", "y", "z"].iter().enumerate() {
            q.enqueue(entry(id, i as i64));
        }
        assert_eq!(accept(&q, "ann", "x", 2), Ok(None));
        assert_eq!(accept(&q, "ann", "x", 2), Ok(None));
        assert_eq!(accept(&q, "ann", "y", 2), Ok(None));
        assert_eq!(accept(&q, "ann", "z", 2), Err(Refusal::AtCapacity(2)));
        // Refused whole: z is still queued.
        assert_eq!(q.position("z"), Some(0));
        let release = AgentChange::Release {
            agent_id: "ann".into(),
        };
        assert_eq!(q.apply("x", None, Some(release)), Ok(None));
        assert_eq!(accept(&q, "ann", "z", 2), Ok(None));
        assert!(q.is_empty());
        assert_eq!(q.agent_conversations("ann"), ["x", "y", "z"]);
    }

    #[test]
    fn requeue_releases_and_adds_in_one_step() {
        let q = QueueState::default();
        q.enqueue(entry("x", 1));
        assert_eq!(accept(&q, "ann", "x", 1), Ok(None));
        let release = AgentChange::Release {
            agent_id: "ann".into(),
        };
        let add = QueueChange::Add(entry("x", 5));
        assert_eq!(q.apply("x", Some(add), Some(release)), Ok(Some(0)));
        assert_eq!(accept(&q, "bob", "x", 1), Ok(None));
        assert_eq!(accept(&q, "ann", "y", 1), Ok(None));
    }
}
