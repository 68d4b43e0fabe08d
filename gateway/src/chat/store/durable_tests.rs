//! Both stores with the durable record on (a real PostgreSQL, a real Redis): a step whose
//! durable write fails does not happen at all (503, Redis and memory untouched, slots free),
//! a step the live store refuses after its durable write puts the row back, and the rows
//! follow the live state version by version.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use livechat_core::store::{ConversationStore, MetadataRepository};
use livechat_core::{
    ChatParticipant, Command, ConversationStatus, LifecycleError, Metadata, ParticipantKind,
};
use livechat_shard_router::{Counters, Mesh, ShardMap};

use super::embedded::EmbeddedStore;
use super::redis::lock::LockPolicy;
use super::{RedisStore, RedisStoreConfig};
use crate::chat::exec::{create, execute, Decide};
use crate::chat::ids::{new_uuid, now};
use crate::config::GatewayConfig;
use crate::durable::test_db::fresh;
use crate::durable::{pool, DatabaseConfig, Durable};
use crate::error::GatewayError;
use crate::redis::test_server::{run, TestRedis};
use crate::redis::RedisTarget;
use crate::runtime::{MeshMsg, Node};

fn customer() -> ChatParticipant {
    ChatParticipant::new("cust", ParticipantKind::Customer, "Bob")
}

fn cmd(c: Command) -> Decide {
    Box::new(move |_| Ok(Some(c.clone())))
}

fn accept(agent: &str, max: usize) -> Decide {
    cmd(Command::Accept {
        agent: ChatParticipant::new(agent, ParticipantKind::Agent, agent),
        max_per_agent: max,
    })
}

fn close() -> Decide {
    cmd(Command::Close {
        by: customer(),
        reason: Some("done".into()),
    })
}

async fn queued<S: ConversationStore<Error = GatewayError>>(s: &S) -> String {
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

fn redis_store(url: &str, prefix: &str, durable: Durable) -> RedisStore {
    RedisStore::new(
        RedisTarget::from_url(url).unwrap().open().unwrap(),
        RedisStoreConfig {
            prefix: prefix.into(),
            message_buffer: 10,
            conversation_ttl: Duration::from_secs(600),
            presence_ttl: Duration::from_secs(60),
            lock: LockPolicy::default(),
        },
        Some(durable),
    )
}

/// A durable service whose database does not exist (nothing listens on port 1).
fn unreachable(db: &crate::durable::test_db::Db) -> Durable {
    let cfg = DatabaseConfig {
        url: Some("postgres://postgres@127.0.0.1:1/none".into()),
        acquire_timeout: Duration::from_millis(200),
        ..DatabaseConfig::default()
    };
    Durable::start(&cfg, pool(&cfg, &db.io).unwrap(), &db.io)
}

#[test]
fn redis_a_step_the_database_refuses_does_not_happen_and_succeeds_once_it_is_back() {
    let server = TestRedis::any();
    let db = fresh(DatabaseConfig::default());
    let (live, dead) = (db.durable.clone(), unreachable(&db));
    let prefix = format!("t-{}", &new_uuid()[..8]);
    run(async {
        let good = redis_store(server.url(), &prefix, live.clone());
        let down = redis_store(server.url(), &prefix, dead);
        let id = queued(&good).await;
        assert_eq!(live.get(&id).await.unwrap().unwrap().version, 2);

        // Accept with the database down: 503, and nothing changed in Redis.
        let err = execute(&down, &id, &mut accept("ag", 1), now)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
        assert_eq!(err.code(), "unavailable");
        let meta = good.load(&id).await.unwrap().unwrap();
        assert_eq!((meta.status, meta.version), (ConversationStatus::Queued, 2));
        assert_eq!(good.queue_position(&id).await.unwrap(), Some(0));

        // The database back: the same accept succeeds — the refused one held no slot (cap 1).
        let done = execute(&good, &id, &mut accept("ag", 1), now)
            .await
            .unwrap();
        assert_eq!(done.conversation.version, 3);
        let row = live.get(&id).await.unwrap().unwrap();
        assert_eq!(row.status, ConversationStatus::Assigned);
        assert_eq!(row.version, 3);
        assert_eq!(row.agent.map(|a| a.id).as_deref(), Some("ag"));
        assert_eq!(good.queue_position(&id).await.unwrap(), None);

        // Close and start with the database down: refused whole.
        let err = execute(&down, &id, &mut close(), now).await.unwrap_err();
        assert_eq!(err.status(), 503);
        assert_eq!(good.load(&id).await.unwrap().unwrap().version, 3);
        let fresh_id = new_uuid();
        let err = create(&down, fresh_id.clone(), customer(), Metadata::new(), now())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 503);
        assert_eq!(good.load(&fresh_id).await.unwrap(), None);

        // And the close, once possible, lands in both with the closer and the reason.
        let closed = execute(&good, &id, &mut close(), now).await.unwrap();
        let row = live.get(&id).await.unwrap().unwrap();
        assert_eq!(row, closed.conversation);
        assert_eq!(row.closed_by.as_deref(), Some("cust"));
        assert_eq!(row.close_reason.as_deref(), Some("done"));
    });
}

#[test]
fn redis_an_accept_over_the_cap_never_reaches_the_database() {
    let server = TestRedis::any();
    let db = fresh(DatabaseConfig::default());
    let live = db.durable.clone();
    let prefix = format!("t-{}", &new_uuid()[..8]);
    run(async {
        let s = redis_store(server.url(), &prefix, live.clone());
        let (a, b) = (queued(&s).await, queued(&s).await);
        execute(&s, &a, &mut accept("ag", 1), now).await.unwrap();
        let err = execute(&s, &b, &mut accept("ag", 1), now)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            GatewayError::Lifecycle(LifecycleError::AgentAtCapacity(1))
        ));
        let row = live.get(&b).await.unwrap().unwrap();
        assert_eq!((row.status, row.version), (ConversationStatus::Queued, 2));
        assert_eq!(live.stats().snapshot().reverts, 0);
    });
}

#[test]
fn embedded_a_step_refused_after_its_durable_write_puts_the_row_back() {
    let db = fresh(DatabaseConfig::default());
    let live = db.durable.clone();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let ports = Mesh::build::<MeshMsg>(1, 16, Arc::new(Counters::default()));
            let Some(port) = ports.into_iter().next() else {
                return;
            };
            let node = Node::new(Arc::new(GatewayConfig::default()), port);
            let s: Rc<EmbeddedStore> = EmbeddedStore::install(
                &node,
                Arc::new(ShardMap::new(1)),
                100,
                60_000,
                Some(live.clone()),
            );
            let (a, b) = (queued(&*s).await, queued(&*s).await);
            execute(&*s, &a, &mut accept("ag", 1), now).await.unwrap();
            // The embedded store writes the row first, then finds the agent at the cap.
            let err = execute(&*s, &b, &mut accept("ag", 1), now)
                .await
                .unwrap_err();
            assert_eq!(err.status(), 429);
            let row = live.get(&b).await.unwrap().unwrap();
            assert_eq!((row.status, row.version), (ConversationStatus::Queued, 2));
            assert_eq!(row.agent, None);
            assert_eq!(live.stats().snapshot().reverts, 1);
            let row = live.get(&a).await.unwrap().unwrap();
            assert_eq!(row, s.load(&a).await.unwrap().unwrap());
        })
        .unwrap()
        .join()
        .unwrap();
}
