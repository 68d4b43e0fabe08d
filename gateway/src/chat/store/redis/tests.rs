//! The Redis store against a real Redis: the engine's steps (`exec`) on it, two "nodes" (two
//! stores, two connections) racing, the repairs of what a crash between cross-slot steps
//! leaves, and a corrupt value — each on one Redis and on a three-master Redis Cluster.

use std::time::Duration;

use livechat_core::store::{ConversationStore, Cutoffs, Due};
use livechat_core::{
    ChatParticipant, Command, ConversationStatus, LifecycleError, MessageType, Metadata,
    ParticipantKind, Refusal, Timestamp,
};

use super::lock::LockPolicy;
use super::{RedisStore, RedisStoreConfig};
use crate::chat::exec::{append, create, execute, Decide};
use crate::chat::ids::{new_uuid, now};
use crate::error::GatewayError;
use crate::redis::RedisTarget;

fn store(url: &str, prefix: &str) -> RedisStore {
    let conn = RedisTarget::from_url(url).unwrap().open().unwrap();
    RedisStore::new(
        conn,
        RedisStoreConfig {
            prefix: prefix.into(),
            message_buffer: 5,
            conversation_ttl: Duration::from_secs(600),
            presence_ttl: Duration::from_secs(60),
            lock: LockPolicy::default(),
        },
        None,
    )
}

/// Two stores sharing one Redis and one prefix: two nodes.
fn nodes(url: &str) -> (RedisStore, RedisStore) {
    let prefix = format!("t-{}", &new_uuid()[..8]);
    (store(url, &prefix), store(url, &prefix))
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

fn send(text: &str, key: Option<&str>) -> Command {
    by(customer(), text, key)
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

async fn queued(s: &RedisStore) -> String {
    let id = create(s, new_uuid(), customer(), Metadata::new(), now())
        .await
        .unwrap()
        .conversation
        .id;
    execute(s, &id, &mut cmd(Command::Enqueue { channel: None }), now)
        .await
        .unwrap();
    id
}

async fn status(s: &RedisStore, id: &str) -> ConversationStatus {
    s.load(id).await.unwrap().unwrap().status
}

async fn lifecycle_messages_and_resume_pages(url: String) {
    let (a, _) = nodes(&url);
    let id = queued(&a).await;
    assert_eq!(a.queue_position(&id).await.unwrap(), Some(0));
    let out = execute(&a, &id, &mut accept("ann", 3), now).await.unwrap();
    assert_eq!(out.conversation.status, ConversationStatus::Assigned);
    assert_eq!(a.queue_position(&id).await.unwrap(), None);
    for i in 1..=7 {
        let (m, _) = append(&a, &id, send(&format!("m{i}"), None), now())
            .await
            .unwrap();
        assert_eq!(m.seq, i);
    }
    let (first, _) = append(&a, &id, send("x", Some("k")), now()).await.unwrap();
    let (again, announce) = append(&a, &id, send("x", Some("k")), now()).await.unwrap();
    assert_eq!(first.seq, again.seq);
    assert!(announce.is_empty());
    // Buffer of 5: 4..8 kept.
    let (_, page) = a.messages(&id, Some(6), 100).await.unwrap().unwrap();
    assert!(page.complete);
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![7, 8]
    );
    let (_, page) = a.messages(&id, Some(1), 100).await.unwrap().unwrap();
    assert!(!page.complete, "seq 2 and 3 were trimmed");
    let (_, page) = a
        .messages(&id, Some(u64::MAX), usize::MAX)
        .await
        .unwrap()
        .unwrap();
    assert!(page.messages.is_empty());
    let close = Command::Close {
        by: agent("ann"),
        reason: None,
    };
    execute(&a, &id, &mut cmd(close), now).await.unwrap();
    assert!(matches!(
        append(&a, &id, send("late", None), now()).await,
        Err(GatewayError::Lifecycle(LifecycleError::Closed))
    ));
    let held = a.agent_conversations("ann", &[]).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].status, ConversationStatus::Closed);
    // Closed long enough ago: due for forgetting, then gone.
    let later = Timestamp(now().millis() + 1);
    let due = a.due(cutoffs(later)).await.unwrap();
    assert!(due.contains(&Due::Forget(id.clone())), "{due:?}");
    assert!(a.forget(&id, later).await.unwrap());
    assert!(a.load(&id).await.unwrap().is_none());
    assert!(a.agent_conversations("ann", &[]).await.unwrap().is_empty());
}

fn cutoffs(closed_before: Timestamp) -> Cutoffs {
    let long_ago = Timestamp(0);
    Cutoffs {
        now: now(),
        queued_before: long_ago,
        created_before: long_ago,
        idle_before: long_ago,
        closed_before,
        limit: 100,
    }
}

async fn two_nodes_accepting_one_conversation_have_one_winner(url: String) {
    let (a, b) = nodes(&url);
    let id = queued(&a).await;
    let (ra, rb) = futures_lite::future::zip(
        execute(&a, &id, &mut accept("ann", 3), now),
        execute(&b, &id, &mut accept("bob", 3), now),
    )
    .await;
    let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{ra:?} {rb:?}");
    let loser = if ra.is_ok() { rb } else { ra };
    assert!(matches!(
        loser,
        Err(GatewayError::Lifecycle(LifecycleError::AssignedToOther(_)))
    ));
    // The loser's claim was given back: it can still take one conversation at cap 1.
    let other = queued(&a).await;
    let meta = a.load(&id).await.unwrap().unwrap();
    let winner = meta.agent.unwrap().id;
    let loser_id = if winner == "ann" { "bob" } else { "ann" };
    execute(&b, &other, &mut accept(loser_id, 1), now)
        .await
        .unwrap();
}

async fn the_cap_holds_across_nodes(url: String) {
    let (a, b) = nodes(&url);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(queued(&a).await);
    }
    // The queue read by pages, and pages past Redis's signed 64-bit ranks: empty, not an error.
    assert_eq!(a.queue_page(0, 4).await.unwrap().len(), 4);
    assert_eq!(a.queue_page(1, 4).await.unwrap().len(), 2);
    // Live positions read the order alone: the same order as the pages (oldest first; ids
    // queued in one millisecond are in id order, so not necessarily in `ids`' order).
    let paged = a.queue_page(0, 10).await.unwrap();
    let paged: Vec<String> = paged.into_iter().map(|e| e.conversation_id).collect();
    assert_eq!(a.queue_ids(4).await.unwrap(), paged[..4].to_vec());
    assert_eq!(b.queue_ids(usize::MAX).await.unwrap(), paged);
    assert!(a.queue_ids(0).await.unwrap().is_empty());
    for page in [usize::MAX, usize::MAX / 4, i64::MAX as usize / 2] {
        assert!(
            a.queue_page(page, 4).await.unwrap().is_empty(),
            "page {page}"
        );
    }
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let s = if i % 2 == 0 { &a } else { &b };
        tasks.push(async move { execute(s, id, &mut accept("ann", 2), now).await });
    }
    // All at once, alternating between the two nodes.
    let mut granted = 0;
    for r in futures_util::future::join_all(tasks).await {
        match r {
            Ok(_) => granted += 1,
            Err(GatewayError::Lifecycle(LifecycleError::AgentAtCapacity(2))) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(granted, 2);
    let held = a
        .agent_conversations("ann", &[ConversationStatus::Assigned])
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    for id in &ids {
        let s = status(&a, id).await;
        assert!(matches!(
            s,
            ConversationStatus::Queued | ConversationStatus::Assigned
        ));
    }
}

async fn a_stale_version_is_refused(url: String) {
    let (a, b) = nodes(&url);
    let id = queued(&a).await;
    let old = a.load(&id).await.unwrap().unwrap();
    execute(&b, &id, &mut accept("ann", 3), now).await.unwrap();
    let close = Command::Close {
        by: customer(),
        reason: None,
    };
    let t = livechat_core::apply(&old, close, now()).unwrap();
    let p = livechat_core::plan(Some(&old), t, now(), new_uuid);
    assert_eq!(a.commit(p.commit).await.unwrap(), Err(Refusal::Conflict));
    assert_eq!(status(&a, &id).await, ConversationStatus::Assigned);
}

async fn the_scan_repairs_what_a_crash_between_steps_leaves(url: String) {
    let (a, _) = nodes(&url);
    let conn = a.conn();
    // A slot taken whose commit never came (crash after the claim).
    let ghost = new_uuid();
    let mut sadd = redis::cmd("SADD");
    sadd.arg(a.keys.agent_held("ann")).arg(&ghost);
    let _: i64 = conn.query(&sadd).await.unwrap();
    // A queue entry of a conversation that is not QUEUED (crash after an accept's commit).
    let id = queued(&a).await;
    let mut hset = redis::cmd("HSET");
    hset.arg(a.keys.meta(&id)).arg("st").arg("ASSIGNED");
    let _: i64 = conn.query(&hset).await.unwrap();
    a.due(cutoffs(Timestamp(0))).await.unwrap();
    assert_eq!(a.queue_position(&id).await.unwrap(), None);
    let mut members = redis::cmd("SMEMBERS");
    members.arg(a.keys.agent_held("ann"));
    let held: Vec<String> = conn.query(&members).await.unwrap();
    assert!(held.is_empty(), "{held:?}");
}

async fn a_corrupt_value_is_an_error_for_that_conversation_only(url: String) {
    let (a, _) = nodes(&url);
    let bad = queued(&a).await;
    let good = queued(&a).await;
    let mut hset = redis::cmd("HSET");
    hset.arg(a.keys.meta(&bad)).arg("meta").arg("{not json");
    let _: i64 = a.conn().query(&hset).await.unwrap();
    let e = a.load(&bad).await.unwrap_err();
    assert!(matches!(e, GatewayError::Corrupt(_)), "{e}");
    assert_eq!(e.status(), 500);
    assert!(execute(&a, &bad, &mut accept("ann", 3), now).await.is_err());
    assert!(a.messages(&bad, None, 10).await.is_err());
    execute(&a, &good, &mut accept("ann", 3), now)
        .await
        .unwrap();
}

async fn only_the_stored_parties_write_and_a_retry_key_reveals_nothing_to_others(url: String) {
    let (a, b) = nodes(&url);
    let id = queued(&a).await;
    execute(&a, &id, &mut accept("ann", 3), now).await.unwrap();
    let mine = by(agent("ann"), "mine", Some("k"));
    let (first, _) = append(&a, &id, mine, now()).await.unwrap();
    let stranger = ChatParticipant::new("eve", ParticipantKind::Customer, "Eve");
    for intruder in [stranger, agent("bob")] {
        for key in [None, Some("k")] {
            let cmd = by(intruder.clone(), "x", key);
            // From either node: the script decides.
            assert!(matches!(
                append(&b, &id, cmd, now()).await,
                Err(GatewayError::Forbidden(_))
            ));
        }
    }
    execute(&a, &id, &mut cmd(Command::Enqueue { channel: None }), now)
        .await
        .unwrap();
    let late = by(agent("ann"), "late", None);
    assert!(matches!(
        append(&a, &id, late, now()).await,
        Err(GatewayError::Forbidden(_))
    ));
    let (m, _) = append(&b, &id, send("still here", None), now())
        .await
        .unwrap();
    assert_eq!(m.seq, first.seq + 1, "refused messages took no seq");
    // A conversation written before the parties were kept as fields: read from the JSON.
    let mut hdel = redis::cmd("HDEL");
    hdel.arg(a.keys.meta(&id)).arg("cu").arg("ag");
    let _: i64 = a.conn().query(&hdel).await.unwrap();
    append(&a, &id, send("old layout", None), now())
        .await
        .unwrap();
    let eve = by(
        ChatParticipant::new("eve", ParticipantKind::Customer, "Eve"),
        "x",
        None,
    );
    assert!(matches!(
        append(&a, &id, eve, now()).await,
        Err(GatewayError::Forbidden(_))
    ));
}

/// Each scenario twice: on one Redis (`LIVECHAT_TEST_REDIS_URL` or a throwaway server) and on a
/// throwaway three-master Redis Cluster.
macro_rules! on_one_redis_and_on_a_cluster {
    ($($name:ident),* $(,)?) => {
        mod one_redis {
            $(
                #[test]
                fn $name() {
                    let server = crate::redis::test_server::TestRedis::any();
                    crate::redis::test_server::run(super::$name(server.url().to_owned()));
                }
            )*
        }
        mod cluster {
            $(
                #[test]
                fn $name() {
                    let cluster = crate::redis::test_cluster::TestCluster::start();
                    crate::redis::test_server::run(super::$name(cluster.url()));
                }
            )*
        }
    };
}

on_one_redis_and_on_a_cluster!(
    lifecycle_messages_and_resume_pages,
    two_nodes_accepting_one_conversation_have_one_winner,
    the_cap_holds_across_nodes,
    a_stale_version_is_refused,
    the_scan_repairs_what_a_crash_between_steps_leaves,
    a_corrupt_value_is_an_error_for_that_conversation_only,
    only_the_stored_parties_write_and_a_retry_key_reveals_nothing_to_others,
);
