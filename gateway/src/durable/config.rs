//! `chat.database.*`: where PostgreSQL is and how hard to try.
//!
//! ```toml
//! [chat.database]
//! url = "postgres://livechat@db.internal/livechat"   # env LIVECHAT_CHAT_DATABASE_URL
//! pool-size = 8
//! statement-timeout = "5s"
//! acquire-timeout = "2s"
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::chat::config::duration;

/// `chat.database.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=...]`; unset = no durable
    /// metadata (Redis or the embedded store only).
    pub url: Option<String>,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Longest one statement may run (set on the server as `statement_timeout`; the IO pool
    /// also gives up on its side a little later, for a server that stopped answering).
    #[serde(deserialize_with = "duration")]
    pub statement_timeout: Duration,
    /// Longest a request waits for a pooled connection (PostgreSQL down: the 503 comes after
    /// this).
    #[serde(deserialize_with = "duration")]
    pub acquire_timeout: Duration,
    /// Most rows one group commit writes (the rest go in the next one).
    pub batch_max: usize,
    /// Writes and reads waiting for the writer at most (beyond: 503 at once).
    pub queue_capacity: usize,
    /// Message activity (`updated_at`) is written at most once per conversation per this.
    #[serde(deserialize_with = "duration")]
    pub touch_interval: Duration,
    /// Conversations with unwritten activity kept at most (beyond: the touch is dropped and
    /// counted; the next lifecycle write carries `updated_at` anyway).
    pub touch_capacity: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 8,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(2),
            batch_max: 512,
            queue_capacity: 8192,
            touch_interval: Duration::from_secs(1),
            touch_capacity: 100_000,
        }
    }
}
