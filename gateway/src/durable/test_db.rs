//! A real PostgreSQL for tests: `LIVECHAT_TEST_DATABASE_URL` when set (the README test
//! command sets it), else a throwaway server started with `scripts/pg-throwaway.sh` and
//! stopped when the test process ends. Every test works in a database of its own, created on
//! that server and migrated.

use std::sync::OnceLock;

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
pub(crate) struct Db {
    pub io: IoPool,
    pub durable: Durable,
    pub pool: sqlx::PgPool,
    pub cfg: DatabaseConfig,
}

pub(crate) fn fresh(cfg: DatabaseConfig) -> Db {
    let io = IoPool::new(1, 0).unwrap();
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
