//! The durable record against a real PostgreSQL: `LIVECHAT_TEST_DATABASE_URL` when set (the
//! README test command sets it), else a throwaway server started with
//! `scripts/pg-throwaway.sh` and stopped when the test process ends. Every test works in a
//! database of its own, created from that URL's server.

use std::sync::OnceLock;
use std::time::Duration;

use livechat_core::store::{MetadataRepository, Written};
use livechat_core::{
    ChatParticipant, ConversationMetadata, ConversationStatus, Metadata, ParticipantKind, Timestamp,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{migrate, pool, DatabaseConfig, Durable};
use crate::iopool::IoPool;

/// The server's URL, started once per test process when none is given.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("LIVECHAT_TEST_DATABASE_URL") {
            return url;
        }
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let dir = std::env::temp_dir().join(format!("lc-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let out = std::process::Command::new(format!("{root}/scripts/pg-throwaway.sh"))
            .arg("start")
            .arg(&dir)
            .output()
            .expect("scripts/pg-throwaway.sh runs");
        assert!(
            out.status.success(),
            "throwaway PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Stops the server once this process is gone.
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {root}/scripts/pg-throwaway.sh stop {dir}; rm -rf {dir}",
                pid = std::process::id(),
                dir = dir.display()
            ))
            .spawn();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

/// A fresh, migrated database and a running service on it.
struct Db {
    io: IoPool,
    durable: Durable,
    pool: sqlx::PgPool,
    cfg: DatabaseConfig,
}

fn fresh(cfg: DatabaseConfig) -> Db {
    let io = IoPool::new(1).unwrap();
    let name = format!("lc_t_{}", uuid::Uuid::new_v4().simple());
    let admin: PgConnectOptions = server_url().parse().unwrap();
    io.block_on(async {
        let mut c = admin.connect().await.expect("the test PostgreSQL answers");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let url = admin.database(&name).to_url_lossy().to_string();
    let cfg = DatabaseConfig {
        url: Some(url),
        ..cfg
    };
    let pool = pool(&cfg, &io).unwrap();
    io.block_on(migrate(&pool)).unwrap();
    let durable = Durable::start(&cfg, pool.clone(), &io);
    Db {
        io,
        durable,
        pool,
        cfg,
    }
}

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
    let db = fresh(DatabaseConfig {
        touch_interval: Duration::from_millis(50),
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
