//! The engine's own tests: every lifecycle step through [`execute`] on the embedded store,
//! wrapped in a store that fails on demand — a backend error in the middle of a transition, a
//! version conflict, a full mailbox — and after each failure, proof that nothing was half
//! applied (status, queue, agent slots).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use livechat_core::store::{ConversationStore, Cutoffs, Due, MessagePage};
use livechat_core::{
    ChatParticipant, Command, Commit, Committed, ConversationMetadata, ConversationStatus,
    LifecycleError, MessageType, Metadata, ParticipantKind, QueueEntry, Refusal, Timestamp,
};
use livechat_shard_router::{Counters, Mesh, ShardMap};

use super::*;
use crate::chat::store::embedded::{EmbeddedStore, QUEUE_KEY};
use crate::config::GatewayConfig;
use crate::runtime::{MeshMsg, Node};

/// The embedded store, failing on demand.
struct Faulty {
    inner: Rc<EmbeddedStore>,
    /// The next N loads fail.
    fail_loads: Cell<u32>,
    /// The next N commits fail with a backend error (before reaching the store).
    fail_commits: Cell<u32>,
    /// The next N commits are refused as version conflicts.
    conflicts: Cell<u32>,
    /// Commits that reached the inner store.
    commits: Cell<u32>,
}

fn backend_down() -> GatewayError {
    GatewayError::Io(std::io::Error::other("backend down (injected)"))
}

fn take(c: &Cell<u32>) -> bool {
    let n = c.get();
    if n > 0 {
        c.set(n - 1);
    }
    n > 0
}

impl ConversationStore for Faulty {
    type Error = GatewayError;
    async fn load(&self, id: &str) -> Result<Option<ConversationMetadata>, GatewayError> {
        if take(&self.fail_loads) {
            return Err(backend_down());
        }
        self.inner.load(id).await
    }
    async fn commit(&self, c: Commit) -> Result<Result<Committed, Refusal>, GatewayError> {
        if take(&self.fail_commits) {
            return Err(backend_down());
        }
        if take(&self.conflicts) {
            return Ok(Err(Refusal::Conflict));
        }
        self.commits.set(self.commits.get() + 1);
        self.inner.commit(c).await
    }
    async fn messages(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<(ConversationMetadata, MessagePage)>, GatewayError> {
        self.inner.messages(id, after, limit).await
    }
    async fn queue_page(&self, page: usize, size: usize) -> Result<Vec<QueueEntry>, GatewayError> {
        self.inner.queue_page(page, size).await
    }
    async fn queue_position(&self, id: &str) -> Result<Option<usize>, GatewayError> {
        self.inner.queue_position(id).await
    }
    async fn agent_conversations(
        &self,
        agent_id: &str,
        statuses: &[ConversationStatus],
    ) -> Result<Vec<ConversationMetadata>, GatewayError> {
        self.inner.agent_conversations(agent_id, statuses).await
    }
    async fn touch_presence(&self, id: &str, now: Timestamp) -> Result<(), GatewayError> {
        self.inner.touch_presence(id, now).await
    }
    async fn last_seen(&self, id: &str) -> Result<Option<Timestamp>, GatewayError> {
        self.inner.last_seen(id).await
    }
    async fn due(&self, c: Cutoffs) -> Result<Vec<Due>, GatewayError> {
        self.inner.due(c).await
    }
    async fn try_lead(&self, lease_ms: u64) -> Result<bool, GatewayError> {
        self.inner.try_lead(lease_ms).await
    }
    async fn forget(&self, id: &str, before: Timestamp) -> Result<bool, GatewayError> {
        self.inner.forget(id, before).await
    }
}

/// Runs `test` on a one-executor node (the executor owns everything, no mesh hops).
fn on_node<F, Fut>(test: F)
where
    F: FnOnce(Rc<Faulty>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let ports = Mesh::build::<MeshMsg>(1, 16, Arc::new(Counters::default()));
            let Some(port) = ports.into_iter().next() else {
                return;
            };
            let node = Node::new(Arc::new(GatewayConfig::default()), port);
            let inner =
                EmbeddedStore::install(&node, Arc::new(ShardMap::new(1)), 100, 60_000, None);
            let store = Rc::new(Faulty {
                inner,
                fail_loads: Cell::new(0),
                fail_commits: Cell::new(0),
                conflicts: Cell::new(0),
                commits: Cell::new(0),
            });
            test(store).await;
        })
        .unwrap()
        .join()
        .unwrap();
}

fn clock() -> Timestamp {
    Timestamp(1_750_000_000_000)
}

fn customer() -> ChatParticipant {
    ChatParticipant::new("cust", ParticipantKind::Customer, "Bob")
}

fn agent(id: &str) -> ChatParticipant {
    ChatParticipant::new(id, ParticipantKind::Agent, id)
}

fn cmd(c: Command) -> Decide {
    Box::new(move |_| Ok(Some(c.clone())))
}

fn accept(id: &str, max: usize) -> Decide {
    cmd(Command::Accept {
        agent: agent(id),
        max_per_agent: max,
    })
}

fn send(text: &str, key: Option<&str>) -> Decide {
    cmd(Command::Send {
        sender: customer(),
        content: text.into(),
        kind: MessageType::Text,
        metadata: Metadata::new(),
        client_message_id: key.map(str::to_owned),
        max_length: 100,
    })
}

fn enqueue() -> Decide {
    cmd(Command::Enqueue { channel: None })
}

async fn started(s: &Faulty) -> String {
    let out = create(s, new_uuid(), customer(), Metadata::new(), clock())
        .await
        .unwrap();
    out.conversation.id
}

async fn queued(s: &Faulty) -> String {
    let id = started(s).await;
    execute(s, &id, &mut enqueue(), clock).await.unwrap();
    id
}

async fn status(s: &Faulty, id: &str) -> ConversationStatus {
    s.load(id).await.unwrap().unwrap().status
}

#[test]
fn the_whole_lifecycle_commits_and_announces() {
    on_node(|s| async move {
        let id = started(&s).await;
        let out = execute(&*s, &id, &mut enqueue(), clock).await.unwrap();
        assert_eq!(out.position, Some(0));
        assert!(out.announce.queue_changed);
        let out = execute(&*s, &id, &mut accept("ann", 3), clock)
            .await
            .unwrap();
        assert_eq!(out.conversation.status, ConversationStatus::Assigned);
        assert_eq!(out.conversation.version, 3);
        assert_eq!(s.queue_position(&id).await.unwrap(), None);
        let out = execute(&*s, &id, &mut send("hi", None), clock)
            .await
            .unwrap();
        assert_eq!(out.message.map(|m| m.seq), Some(1));
        assert_eq!(
            out.conversation.version, 3,
            "a message is not a metadata change"
        );
        let close = Command::Close {
            by: agent("ann"),
            reason: None,
        };
        let out = execute(&*s, &id, &mut cmd(close), clock).await.unwrap();
        assert_eq!(out.conversation.status, ConversationStatus::Closed);
        assert_eq!(out.announce.messages.len(), 1);
        assert_eq!(out.announce.messages[0].seq, 2);
        let held = s.agent_conversations("ann", &[]).await.unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].status, ConversationStatus::Closed);
    });
}

#[test]
fn queue_ids_list_the_queue_oldest_first_like_its_pages() {
    on_node(|s| async move {
        let mut ids = vec![queued(&s).await, queued(&s).await, queued(&s).await];
        // One clock for all: ties are broken by id.
        ids.sort();
        let paged = s.queue_page(0, 10).await.unwrap();
        let paged: Vec<String> = paged.into_iter().map(|e| e.conversation_id).collect();
        assert_eq!(paged, ids);
        // The embedded store's own listing, and the trait's default (through the pages).
        assert_eq!(s.inner.queue_ids(10).await.unwrap(), ids);
        assert_eq!(s.queue_ids(2).await.unwrap(), ids[..2].to_vec());
        execute(&*s, &ids[0], &mut accept("ann", 3), clock)
            .await
            .unwrap();
        assert_eq!(s.inner.queue_ids(10).await.unwrap(), ids[1..].to_vec());
        assert!(s.inner.queue_ids(0).await.unwrap().is_empty());
    });
}

#[test]
fn accept_has_a_single_winner() {
    on_node(|s| async move {
        let id = queued(&s).await;
        execute(&*s, &id, &mut accept("ann", 3), clock)
            .await
            .unwrap();
        let second = execute(&*s, &id, &mut accept("bob", 3), clock).await;
        assert!(matches!(
            second,
            Err(GatewayError::Lifecycle(LifecycleError::AssignedToOther(_)))
        ));
        // The same agent again: idempotent, nothing written.
        let commits = s.commits.get();
        execute(&*s, &id, &mut accept("ann", 3), clock)
            .await
            .unwrap();
        assert_eq!(s.commits.get(), commits);
    });
}

#[test]
fn the_cap_is_checked_in_the_commit_and_refuses_it_whole() {
    on_node(|s| async move {
        let a = queued(&s).await;
        let b = queued(&s).await;
        execute(&*s, &a, &mut accept("ann", 1), clock)
            .await
            .unwrap();
        let refused = execute(&*s, &b, &mut accept("ann", 1), clock).await;
        assert!(matches!(
            refused,
            Err(GatewayError::Lifecycle(LifecycleError::AgentAtCapacity(1)))
        ));
        assert_eq!(status(&s, &b).await, ConversationStatus::Queued);
        assert_eq!(s.queue_position(&b).await.unwrap(), Some(0));
    });
}

#[test]
fn a_backend_error_during_accept_leaves_queue_status_and_slots_alone() {
    on_node(|s| async move {
        let a = queued(&s).await;
        s.fail_commits.set(1);
        assert!(execute(&*s, &a, &mut accept("ann", 1), clock)
            .await
            .is_err());
        assert_eq!(status(&s, &a).await, ConversationStatus::Queued);
        assert_eq!(s.queue_position(&a).await.unwrap(), Some(0));
        // No slot was taken: with a cap of 1 the agent can still accept.
        execute(&*s, &a, &mut accept("ann", 1), clock)
            .await
            .unwrap();
        assert_eq!(status(&s, &a).await, ConversationStatus::Assigned);
    });
}

#[test]
fn a_failed_requeue_keeps_the_assignment_and_its_slot() {
    // The seed's bug: re-queueing freed the agent's slot first, then failed to queue.
    on_node(|s| async move {
        let a = queued(&s).await;
        execute(&*s, &a, &mut accept("ann", 1), clock)
            .await
            .unwrap();
        s.fail_commits.set(1);
        assert!(execute(&*s, &a, &mut enqueue(), clock).await.is_err());
        let meta = s.load(&a).await.unwrap().unwrap();
        assert_eq!(meta.status, ConversationStatus::Assigned);
        assert_eq!(meta.agent.map(|a| a.id).as_deref(), Some("ann"));
        assert_eq!(s.queue_position(&a).await.unwrap(), None);
        // Still holding the slot: a second conversation is over the cap of 1.
        let b = queued(&s).await;
        assert!(execute(&*s, &b, &mut accept("ann", 1), clock)
            .await
            .is_err());
        // The re-queue succeeds once the backend is back, releasing the slot.
        execute(&*s, &a, &mut enqueue(), clock).await.unwrap();
        execute(&*s, &b, &mut accept("ann", 1), clock)
            .await
            .unwrap();
    });
}

#[test]
fn a_load_error_changes_nothing() {
    on_node(|s| async move {
        let a = queued(&s).await;
        s.fail_loads.set(1);
        assert!(execute(&*s, &a, &mut accept("ann", 1), clock)
            .await
            .is_err());
        assert_eq!(status(&s, &a).await, ConversationStatus::Queued);
    });
}

#[test]
fn conflicts_are_retried_on_fresh_state_then_reported() {
    on_node(|s| async move {
        let a = queued(&s).await;
        s.conflicts.set(MAX_ATTEMPTS as u32 - 1);
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = loads.clone();
        // Counts how often the decision is made: once per attempt, each on a fresh load.
        let mut decide: Decide = Box::new(move |_| {
            Ok(Some(Command::Accept {
                agent: agent("ann"),
                max_per_agent: 3,
            }))
        });
        let counting: Decide = Box::new(move |m| {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            decide(m)
        });
        let mut counting = counting;
        execute(&*s, &a, &mut counting, clock).await.unwrap();
        assert_eq!(
            loads.load(std::sync::atomic::Ordering::Relaxed),
            MAX_ATTEMPTS
        );
        assert_eq!(status(&s, &a).await, ConversationStatus::Assigned);

        let b = queued(&s).await;
        s.conflicts.set(MAX_ATTEMPTS as u32);
        let r = execute(&*s, &b, &mut accept("bob", 3), clock).await;
        assert!(matches!(r, Err(GatewayError::Contended(_))), "{r:?}");
        assert_eq!(r.map(|_| ()).unwrap_err().status(), 409);
        assert_eq!(status(&s, &b).await, ConversationStatus::Queued);
    });
}

#[test]
fn a_stale_version_is_never_applied() {
    on_node(|s| async move {
        let a = queued(&s).await;
        let old = s.load(&a).await.unwrap().unwrap();
        execute(&*s, &a, &mut accept("ann", 3), clock)
            .await
            .unwrap();
        // A step decided on the old version (e.g. by another node) is refused whole.
        let close = Command::Close {
            by: customer(),
            reason: None,
        };
        let t = livechat_core::apply(&old, close, clock()).unwrap();
        let p = livechat_core::plan(Some(&old), t, clock(), new_uuid);
        assert_eq!(s.commit(p.commit).await.unwrap(), Err(Refusal::Conflict));
        assert_eq!(status(&s, &a).await, ConversationStatus::Assigned);
    });
}

#[test]
fn retried_messages_are_stored_once_and_closed_conversations_refuse() {
    on_node(|s| async move {
        let a = started(&s).await;
        let first = execute(&*s, &a, &mut send("hi", Some("k")), clock)
            .await
            .unwrap();
        let again = execute(&*s, &a, &mut send("hi", Some("k")), clock)
            .await
            .unwrap();
        assert_eq!(first.message, again.message);
        assert!(again.announce.is_empty());
        let close = Command::Close {
            by: customer(),
            reason: None,
        };
        execute(&*s, &a, &mut cmd(close), clock).await.unwrap();
        let late = execute(&*s, &a, &mut send("late", None), clock).await;
        assert!(matches!(
            late,
            Err(GatewayError::Lifecycle(LifecycleError::Closed))
        ));
        let (_, page) = s.messages(&a, Some(0), 100).await.unwrap().unwrap();
        assert_eq!(page.messages.len(), 2, "hi + the close notice");
    });
}

#[test]
fn a_queue_timeout_decided_before_a_requeue_does_nothing() {
    on_node(|s| async move {
        let a = queued(&s).await;
        // Enqueued at `clock()`; a cutoff before that is stale.
        let cutoff = clock().plus_millis(-1);
        let out = execute(
            &*s,
            &a,
            &mut cmd(Command::QueueTimeout {
                enqueued_by: cutoff,
            }),
            clock,
        )
        .await
        .unwrap();
        assert!(out.announce.is_empty());
        assert_eq!(status(&s, &a).await, ConversationStatus::Queued);
        let out = execute(
            &*s,
            &a,
            &mut cmd(Command::QueueTimeout {
                enqueued_by: clock(),
            }),
            clock,
        )
        .await
        .unwrap();
        assert_eq!(out.conversation.status, ConversationStatus::Open);
        assert_eq!(s.queue_position(&a).await.unwrap(), None);
    });
}

#[test]
fn a_refusing_decision_changes_nothing() {
    on_node(|s| async move {
        let a = queued(&s).await;
        let mut decide: Decide = Box::new(|_| Err(GatewayError::Forbidden("no".into())));
        let r = execute(&*s, &a, &mut decide, clock).await;
        assert!(matches!(r, Err(GatewayError::Forbidden(_))));
        let mut nothing: Decide = Box::new(|_| Ok(None));
        let out = execute(&*s, &a, &mut nothing, clock).await.unwrap();
        assert!(out.announce.is_empty());
        assert_eq!(s.commits.get(), 2, "start and enqueue only");
    });
}

#[test]
fn a_full_queue_owner_mailbox_refuses_the_commit_whole() {
    glommio::LocalExecutorBuilder::default()
        .spawn(|| async {
            // Two executors in one thread: this one and the queue owner, whose mailbox (one
            // message) is already full.
            let map = Arc::new(ShardMap::new(2));
            let queue_owner = map.owner(QUEUE_KEY);
            let mut ports = Mesh::build::<MeshMsg>(2, 1, Arc::new(Counters::default()));
            // The queue owner's port stays alive (its inbox full, never drained).
            let Some(i) = ports.iter().position(|p| p.me() != queue_owner) else {
                return;
            };
            let port = ports.swap_remove(i);
            let node = Node::new(Arc::new(GatewayConfig::default()), port);
            let store = EmbeddedStore::install(&node, map, 100, 60_000, None);
            let id = create(&*store, new_uuid(), customer(), Metadata::new(), clock())
                .await
                .unwrap()
                .conversation
                .id;
            node.port()
                .try_send(queue_owner, MeshMsg::Run(Box::new(|_| {})))
                .unwrap();
            let r = execute(&*store, &id, &mut enqueue(), clock).await;
            assert!(matches!(r, Err(GatewayError::Unavailable(_))), "{r:?}");
            assert_eq!(r.map(|_| ()).unwrap_err().status(), 503);
            let meta = store.load(&id).await.unwrap().unwrap();
            assert_eq!(meta.status, ConversationStatus::Open);
            assert_eq!(meta.version, 1);
            // And the conversation is not stuck: a message still goes through.
            execute(&*store, &id, &mut send("still here", None), clock)
                .await
                .unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
}

fn message(text: &str, key: Option<&str>) -> Command {
    by(customer(), text, key)
}

#[test]
fn a_socket_message_is_one_store_call_refused_once_closed() {
    on_node(|s| async move {
        let a = started(&s).await;
        let (m, announce) = append(&*s, &a, message("hi", Some("k")), clock())
            .await
            .unwrap();
        assert_eq!(m.seq, 1);
        assert_eq!(announce.messages.len(), 1);
        let (again, announce) = append(&*s, &a, message("hi", Some("k")), clock())
            .await
            .unwrap();
        assert_eq!(again, m);
        assert!(announce.is_empty(), "a retry announces nothing");
        assert!(matches!(
            append(&*s, &a, message("  ", None), clock()).await,
            Err(GatewayError::Lifecycle(LifecycleError::EmptyContent))
        ));
        let close = Command::Close {
            by: customer(),
            reason: None,
        };
        execute(&*s, &a, &mut cmd(close), clock).await.unwrap();
        assert!(matches!(
            append(&*s, &a, message("late", None), clock()).await,
            Err(GatewayError::Lifecycle(LifecycleError::Closed))
        ));
        assert!(matches!(
            append(&*s, "nope", message("x", None), clock()).await,
            Err(GatewayError::NotFound(_))
        ));
        s.fail_commits.set(1);
        assert!(append(&*s, &a, message("x", None), clock()).await.is_err());
    });
}

fn by(sender: ChatParticipant, text: &str, key: Option<&str>) -> Command {
    Command::Send {
        sender,
        content: text.into(),
        kind: MessageType::Text,
        metadata: Metadata::new(),
        client_message_id: key.map(str::to_owned),
        max_length: 100,
    }
}

#[test]
fn only_the_stored_parties_write_and_a_retry_key_reveals_nothing_to_others() {
    on_node(|s| async move {
        let a = queued(&s).await;
        execute(&*s, &a, &mut accept("ann", 3), clock)
            .await
            .unwrap();
        let (first, _) = append(&*s, &a, by(agent("ann"), "mine", Some("k")), clock())
            .await
            .unwrap();
        let stranger = ChatParticipant::new("eve", ParticipantKind::Customer, "Eve");
        for intruder in [stranger, agent("bob")] {
            // Refused whole, even when presenting another sender's clientMessageId.
            for key in [None, Some("k")] {
                assert!(matches!(
                    append(&*s, &a, by(intruder.clone(), "x", key), clock()).await,
                    Err(GatewayError::Forbidden(_))
                ));
            }
        }
        // Re-queued: the agent loses the right at once; the customer keeps it.
        execute(&*s, &a, &mut enqueue(), clock).await.unwrap();
        assert!(matches!(
            append(&*s, &a, by(agent("ann"), "late", None), clock()).await,
            Err(GatewayError::Forbidden(_))
        ));
        let (m, _) = append(&*s, &a, by(customer(), "still here", None), clock())
            .await
            .unwrap();
        assert_eq!(m.seq, first.seq + 1, "refused messages took no seq");
    });
}
