//! The durable record against a real PostgreSQL (see [`super::test_db`]): group commit, the
//! version guard, reverts, the agent query, coalesced activity, an unreachable server.

use std::time::Duration;

use super::test_db::fresh;
use super::{pool, DatabaseConfig, Durable};
use livechat_core::store::{MetadataRepository, Written};
use livechat_core::{
    ChatParticipant, ConversationMetadata, ConversationStatus, Metadata, ParticipantKind, Timestamp,
};

fn conversation(id: &str, version: u64, status: ConversationStatus) -> ConversationMetadata {
    let mut attributes = Metadata::new();
    attributes.insert("channel".into(), "web".into());
    ConversationMetadata {
        id: id.into(),
        status,
        customer: ChatParticipant::new("cust", ParticipantKind::Customer, "Cy"),
        agent: None,
        created_at: Timestamp(1_700_000_000_000),
        updated_at: Timestamp(1_700_000_000_000 + version as i64),
        accepted_at: None,
        closed_at: None,
        closed_by: None,
        close_reason: None,
        tags: vec!["vip".into()],
        attributes,
        version,
    }
}

fn assigned(id: &str, version: u64, agent: &str, at: i64) -> ConversationMetadata {
    let mut c = conversation(id, version, ConversationStatus::Assigned);
    c.agent = Some(ChatParticipant::new(agent, ParticipantKind::Agent, "Ann"));
    c.accepted_at = Some(Timestamp(at));
    c.updated_at = Timestamp(at);
    c
}

#[test]
fn concurrent_writes_are_group_committed_and_read_back_whole() {
    let db = fresh(DatabaseConfig::default());
    let n = 300;
    let all: Vec<ConversationMetadata> = (0..n)
        .map(|i| conversation(&format!("c{i}"), 1, ConversationStatus::Open))
        .collect();
    let results = db.io.block_on(futures_util::future::join_all(
        all.iter().map(|c| db.durable.write(c)),
    ));
    assert!(results.iter().all(|r| matches!(r, Ok(Written::Applied))));
    let s = db.durable.stats().snapshot();
    assert_eq!(s.rows, n as u64);
    assert!(
        s.commits * 10 <= n as u64,
        "{n} concurrent writes took {} statements",
        s.commits
    );
    let back = db.io.block_on(db.durable.get("c7")).unwrap();
    assert_eq!(back.as_ref(), Some(&all[7]));
}

#[test]
fn a_stale_write_is_refused_and_the_same_version_may_be_rewritten() {
    let db = fresh(DatabaseConfig::default());
    let d = &db.durable;
    db.io.block_on(async {
        assert_eq!(
            d.write(&conversation("x", 1, ConversationStatus::Open))
                .await
                .unwrap(),
            Written::Applied
        );
        assert_eq!(
            d.write(&conversation("x", 3, ConversationStatus::Queued))
                .await
                .unwrap(),
            Written::Applied
        );
        // Older: refused, nothing changes.
        assert_eq!(
            d.write(&conversation("x", 2, ConversationStatus::Open))
                .await
                .unwrap(),
            Written::Stale { stored: 3 }
        );
        assert_eq!(
            d.get("x").await.unwrap().unwrap().status,
            ConversationStatus::Queued
        );
        // The same version again (a step re-written after a lost answer): applied.
        let again = assigned("x", 3, "ag", 1_700_000_000_100);
        assert_eq!(d.write(&again).await.unwrap(), Written::Applied);
        assert_eq!(d.get("x").await.unwrap().unwrap(), again);
    });
    assert_eq!(d.stats().snapshot().stale, 1);
}

#[test]
fn a_revert_puts_the_row_back_and_an_undone_start_removes_it() {
    let db = fresh(DatabaseConfig::default());
    let d = &db.durable;
    db.io.block_on(async {
        let before = conversation("y", 2, ConversationStatus::Queued);
        d.write(&before).await.unwrap();
        d.write(&assigned("y", 3, "ag", 1_700_000_000_200))
            .await
            .unwrap();
        d.revert("y", Some(&before), 3).await.unwrap();
        assert_eq!(d.get("y").await.unwrap().unwrap(), before);
        // Only over the version the undone write gave it.
        d.revert("y", None, 3).await.unwrap();
        assert!(d.get("y").await.unwrap().is_some());
        d.write(&conversation("z", 1, ConversationStatus::Open))
            .await
            .unwrap();
        d.revert("z", None, 1).await.unwrap();
        assert_eq!(d.get("z").await.unwrap(), None);
    });
}

#[test]
fn an_agents_conversations_by_status_newest_activity_first() {
    let db = fresh(DatabaseConfig::default());
    let d = &db.durable;
    db.io.block_on(async {
        d.write(&assigned("a1", 3, "ag", 1_700_000_001_000))
            .await
            .unwrap();
        d.write(&assigned("a2", 3, "ag", 1_700_000_003_000))
            .await
            .unwrap();
        d.write(&assigned("b1", 3, "other", 1_700_000_002_000))
            .await
            .unwrap();
        let mut closed = assigned("a3", 4, "ag", 1_700_000_002_000);
        closed.status = ConversationStatus::Closed;
        closed.closed_at = Some(Timestamp(1_700_000_002_000));
        closed.closed_by = Some("ag".into());
        closed.close_reason = Some("solved".into());
        d.write(&closed).await.unwrap();
        let ids = |v: Vec<ConversationMetadata>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(
            ids(d.by_agent("ag", &[], 10).await.unwrap()),
            ["a2", "a3", "a1"]
        );
        assert_eq!(
            ids(d
                .by_agent("ag", &[ConversationStatus::Assigned], 10)
                .await
                .unwrap()),
            ["a2", "a1"]
        );
        assert_eq!(ids(d.by_agent("ag", &[], 1).await.unwrap()), ["a2"]);
        assert_eq!(d.get("a3").await.unwrap().unwrap(), closed);
    });
}

#[test]
fn activity_is_coalesced_and_never_moves_backwards() {
    // Long enough that the 101 touches below (microseconds apart) span at most two ticks even
    // on a loaded machine.
    let db = fresh(DatabaseConfig {
        touch_interval: Duration::from_millis(500),
        ..DatabaseConfig::default()
    });
    let d = &db.durable;
    let c = conversation("t", 1, ConversationStatus::Open);
    db.io.block_on(d.write(&c)).unwrap();
    for i in 1..=100 {
        d.touch("t", Timestamp(c.updated_at.millis() + i));
    }
    d.touch("t", Timestamp(0));
    let latest = c.updated_at.millis() + 100;
    let seen = db.io.block_on(async {
        for _ in 0..200 {
            let got = d.get("t").await.unwrap().unwrap().updated_at.millis();
            if got == latest {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        d.get("t").await.unwrap().unwrap().updated_at.millis()
    });
    assert_eq!(seen, latest);
    // 101 touches of one conversation, written as one row (or a few, if a tick fell between).
    let written = d.stats().snapshot().touches_written;
    assert!((1..=3).contains(&written), "{written} rows for 101 touches");
}

#[test]
fn an_unreachable_database_is_a_prompt_error_and_the_row_appears_once_it_is_back() {
    let db = fresh(DatabaseConfig::default());
    // A second service on a port nothing listens on.
    let dead = DatabaseConfig {
        url: Some("postgres://postgres@127.0.0.1:1/none".into()),
        acquire_timeout: Duration::from_millis(300),
        ..db.cfg.clone()
    };
    let dead_durable = Durable::start(&dead, pool(&dead, &db.io).unwrap(), &db.io);
    let c = conversation("u", 1, ConversationStatus::Open);
    let err = db.io.block_on(dead_durable.write(&c)).unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    assert_eq!(dead_durable.stats().snapshot().write_errors, 1);
    // The live service is unaffected.
    assert_eq!(
        db.io.block_on(db.durable.write(&c)).unwrap(),
        Written::Applied
    );
    let rows: i64 = db
        .io
        .block_on(sqlx::query_scalar("SELECT count(*) FROM conversations").fetch_one(&db.pool))
        .unwrap();
    assert_eq!(rows, 1);
}
