//! One conversation in the embedded backend: metadata, the message buffer with `seq`, and the
//! `clientMessageId` index.
//!
//! Lives on: the conversation's owner executor (`ShardMap::owner`). Never shared with another
//! executor; no atomics, no mutexes.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use livechat_core::store::MessagePage;
use livechat_core::{ChatMessage, ConversationMetadata};

use crate::chat::ids::activity_stamp;

/// The outcome of appending a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Stored with the next `seq`.
    New(ChatMessage),
    /// The `clientMessageId` was seen before: the first message, unchanged.
    Duplicate(ChatMessage),
}

impl Appended {
    /// The stored message either way.
    pub fn message(&self) -> &ChatMessage {
        match self {
            Self::New(m) | Self::Duplicate(m) => m,
        }
    }
}

/// Embedded state of one conversation.
#[derive(Debug)]
pub struct ConversationCell {
    /// Current metadata.
    pub meta: RefCell<ConversationMetadata>,
    /// [`activity_stamp`] of the last change to `meta`: "newest activity first" lists break
    /// ties of the millisecond `updatedAt` with it.
    pub activity: Cell<u64>,
    messages: RefCell<VecDeque<ChatMessage>>,
    next_seq: Cell<u64>,
    client_ids: RefCell<HashMap<String, u64>>,
    capacity: usize,
    /// A commit of this conversation is waiting for the queue owner: another commit decided
    /// on the same version must see a conflict, not slip in between.
    pub committing: Cell<bool>,
}

impl ConversationCell {
    /// A conversation keeping at most `capacity` messages.
    pub fn new(meta: ConversationMetadata, capacity: usize) -> Self {
        Self {
            meta: RefCell::new(meta),
            activity: Cell::new(activity_stamp()),
            messages: RefCell::new(VecDeque::new()),
            next_seq: Cell::new(1),
            client_ids: RefCell::new(HashMap::new()),
            capacity: capacity.max(1),
            committing: Cell::new(false),
        }
    }

    /// The next `seq` to be assigned (= messages stored so far + 1).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.get()
    }

    /// The stored message with this `clientMessageId`, if it is still kept.
    pub fn find_client_id(&self, key: &str) -> Option<ChatMessage> {
        let seq = *self.client_ids.borrow().get(key)?;
        self.get(seq)
    }

    /// Appends a message with the next `seq`, or returns the earlier one with the same
    /// `clientMessageId`.
    pub fn append(&self, mut msg: ChatMessage) -> Appended {
        if let Some(m) = msg
            .client_message_id
            .as_deref()
            .and_then(|k| self.find_client_id(k))
        {
            return Appended::Duplicate(m);
        }
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        msg.seq = seq;
        if let Some(key) = &msg.client_message_id {
            self.client_ids.borrow_mut().insert(key.clone(), seq);
        }
        let mut messages = self.messages.borrow_mut();
        messages.push_back(msg.clone());
        while messages.len() > self.capacity {
            if let Some(old) = messages.pop_front() {
                if let Some(key) = old.client_message_id {
                    self.client_ids.borrow_mut().remove(&key);
                }
            }
        }
        Appended::New(msg)
    }

    fn get(&self, seq: u64) -> Option<ChatMessage> {
        let messages = self.messages.borrow();
        let first = messages.front()?.seq;
        let idx = usize::try_from(seq.checked_sub(first)?).ok()?;
        messages.get(idx).cloned()
    }

    /// Messages with seq > `after` (the first `limit`), or the latest `limit`.
    pub fn page(&self, after: Option<u64>, limit: usize) -> MessagePage {
        let messages = self.messages.borrow();
        let first = messages.front().map_or(self.next_seq.get(), |m| m.seq);
        let last_seq = self.next_seq.get().saturating_sub(1);
        match after {
            None => {
                let skip = messages.len().saturating_sub(limit);
                MessagePage {
                    messages: messages.iter().skip(skip).cloned().collect(),
                    // Without `after` the caller asked for "the latest": complete unless the
                    // buffer already dropped some of those.
                    complete: skip > 0 || first == 1,
                    last_seq,
                }
            }
            Some(after) => {
                // `after` comes from clients (`lastSeq`): saturate, never overflow.
                let complete = after.saturating_add(1) >= first;
                let start = usize::try_from(after.saturating_add(1).saturating_sub(first))
                    .unwrap_or(usize::MAX);
                MessagePage {
                    messages: messages.iter().skip(start).take(limit).cloned().collect(),
                    complete,
                    last_seq,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livechat_core::{
        start, ChatParticipant, MessageDraft, MessageType, Metadata, ParticipantKind, Timestamp,
    };

    fn cell(cap: usize) -> ConversationCell {
        let customer = ChatParticipant::new("c", ParticipantKind::Customer, "C");
        ConversationCell::new(
            start("x".into(), customer, Metadata::new(), Timestamp(0)).conversation,
            cap,
        )
    }

    fn draft(text: &str, key: Option<&str>) -> MessageDraft {
        MessageDraft {
            kind: MessageType::Text,
            sender: ChatParticipant::new("c", ParticipantKind::Customer, "C"),
            content: text.into(),
            metadata: Metadata::new(),
            client_message_id: key.map(str::to_owned),
        }
    }

    fn msg(d: MessageDraft, id: String, at: Timestamp) -> ChatMessage {
        d.into_message(id, "x", 0, at)
    }

    #[test]
    fn seq_starts_at_one_and_has_no_gaps() {
        let c = cell(10);
        for i in 1..=5 {
            let m = c.append(msg(draft("m", None), format!("id{i}"), Timestamp(i as i64)));
            assert_eq!(m.message().seq, i);
        }
        let p = c.page(Some(2), 100);
        assert_eq!(
            p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(p.complete);
        assert_eq!(
            c.page(None, 2)
                .messages
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(
            c.page(Some(1), 2)
                .messages
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn client_message_id_deduplicates() {
        let c = cell(10);
        let a = c.append(msg(draft("hi", Some("k1")), "id1".into(), Timestamp(1)));
        let b = c.append(msg(
            draft("hi again", Some("k1")),
            "id2".into(),
            Timestamp(2),
        ));
        assert!(matches!(a, Appended::New(_)));
        assert_eq!(b, Appended::Duplicate(a.message().clone()));
        assert_eq!(c.next_seq(), 2);
    }

    #[test]
    fn dropped_messages_make_pages_incomplete() {
        let c = cell(3);
        for i in 0..5 {
            c.append(msg(
                draft("m", Some(&format!("k{i}"))),
                format!("id{i}"),
                Timestamp(0),
            ));
        }
        let p = c.page(Some(0), 100);
        assert!(!p.complete);
        assert_eq!(
            p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(c.page(Some(2), 100).complete);
        // The dropped message's key is forgotten with it.
        assert!(matches!(
            c.append(msg(draft("m", Some("k0")), "n".into(), Timestamp(0))),
            Appended::New(_)
        ));
    }
}
