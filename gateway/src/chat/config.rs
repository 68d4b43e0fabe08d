//! Chat settings: the seed's `chat.*` namespaces, from a TOML file (`--config`) and
//! `LIVECHAT_CHAT_<SECTION>_<KEY>` environment variables (env wins).
//!
//! ```toml
//! [chat.queue]
//! max-concurrent-by-agent = 3
//! broadcast-limit = 50
//! max-wait = "10m"
//! ```
//! Durations are `humantime`'s (`250ms`, `2s`, `10m`, `12h`, `1d`, `1h 30m`) or a number of
//! milliseconds.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::GatewayError as ChatError;

/// `chat.queue.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct QueueConfig {
    /// Conversations one agent may hold at once (429 beyond).
    pub max_concurrent_by_agent: usize,
    /// Entries sent in `queue:snapshot`.
    pub broadcast_limit: usize,
    /// Queue entries older than this leave the queue (status back to OPEN).
    #[serde(deserialize_with = "duration")]
    pub max_wait: Duration,
    /// Wait estimate per position (see `QueuePosition::estimate`).
    #[serde(deserialize_with = "duration")]
    pub estimated_wait_per_position: Duration,
    /// Snapshots are coalesced: at most one per this window.
    #[serde(deserialize_with = "duration")]
    pub snapshot_interval: Duration,
    /// Live `queue:position` updates cover the oldest this many queued conversations (each
    /// snapshot tick reads that many ids); the ones behind get updates once they move within
    /// it. 0: no updates on queue changes (a socket is still told its position when it joins
    /// or its conversation enters the queue, and the REST read answers it).
    pub position_limit: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_concurrent_by_agent: 3,
            broadcast_limit: 50,
            max_wait: Duration::from_secs(600),
            estimated_wait_per_position: Duration::from_secs(120),
            snapshot_interval: Duration::from_millis(50),
            position_limit: 500,
        }
    }
}

/// `chat.conversation.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConversationConfig {
    /// Idle conversations are closed after this.
    #[serde(deserialize_with = "duration")]
    pub inactivity_timeout: Duration,
    /// Conversations are closed at this age.
    #[serde(deserialize_with = "duration")]
    pub max_duration: Duration,
    /// Messages kept per conversation for history and resume (both backends).
    pub message_buffer: usize,
    /// Closed conversations are forgotten this long after closing (both backends).
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        Self {
            inactivity_timeout: Duration::from_secs(30 * 60),
            max_duration: Duration::from_secs(12 * 3600),
            message_buffer: 1000,
            retention: Duration::from_secs(3600),
        }
    }
}

/// `chat.message.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct MessageConfig {
    /// Longest message, in characters.
    pub max_length: usize,
    /// Largest `metadata` object of a message (and of an accept), in bytes of JSON.
    pub max_metadata_bytes: usize,
}

impl Default for MessageConfig {
    fn default() -> Self {
        Self {
            max_length: 4000,
            max_metadata_bytes: 4096,
        }
    }
}

/// `chat.limits.*`: node-wide caps, refused with 503 instead of growing without bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LimitsConfig {
    /// Live conversations the embedded backend keeps on this node (split evenly between its
    /// executors); a start beyond it is 503. (On Redis, Redis's `maxmemory` is the bound.)
    pub max_live_conversations: usize,
    /// Commands one executor runs or holds waiting for their conversation's turn at once;
    /// beyond it, new ones are 503.
    pub max_pending_commands: usize,
    /// Largest attribute set of a new conversation, in bytes of JSON.
    pub max_attributes_bytes: usize,
    /// Deepest nesting of any JSON a client sends (REST bodies, event payloads, auth).
    pub max_json_depth: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_live_conversations: 100_000,
            max_pending_commands: 10_000,
            max_attributes_bytes: 8192,
            max_json_depth: 16,
        }
    }
}

/// `chat.housekeeping.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct HousekeepingConfig {
    /// How often timeouts are checked.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
        }
    }
}

/// `chat.redis.*` (presence is kept in the embedded backend too).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RedisConfig {
    /// Redis URL (`redis://[user:password@]host[:port][/db]`); unset = embedded backend.
    pub url: Option<String>,
    /// Prefix of every key and channel.
    pub key_prefix: String,
    /// A conversation's keys expire this long after their last write.
    #[serde(deserialize_with = "duration")]
    pub conversation_ttl: Duration,
    /// Presence entries expire after this.
    #[serde(deserialize_with = "duration")]
    pub presence_ttl: Duration,
    /// How long one command to Redis may take before it fails (503): a slow, paused or
    /// unreachable Redis costs a request at most this (`request-timeout` is the old name).
    #[serde(deserialize_with = "duration", alias = "request-timeout")]
    pub command_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "lc".into(),
            conversation_ttl: Duration::from_secs(24 * 3600),
            presence_ttl: Duration::from_secs(300),
            command_timeout: Duration::from_secs(2),
        }
    }
}

pub use super::auth::config::{JwtConfig, RateConfig, SecurityConfig, SecurityMode};

/// `chat.socket.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SocketConfig {
    /// Room every `scope=queue` agent joins.
    pub queue_room: String,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            queue_room: "agent-queue".into(),
        }
    }
}

/// `chat.shutdown.*`: what SIGTERM does (see `serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long the node keeps serving with `/readyz` at 503 before it stops accepting, so
    /// balancers take it out of rotation first (their probe interval × failures to act, plus
    /// a margin).
    #[serde(deserialize_with = "duration")]
    pub drain_delay: Duration,
    /// From the signal to the exit, at most: the drain delay, closing sessions and in-flight
    /// requests, and flushing PostgreSQL writes and Kafka events. Orchestrators' kill timers
    /// (Kubernetes `terminationGracePeriodSeconds`) must be longer.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

impl ShutdownConfig {
    /// How long executors wait for connections after closing sessions: half of what the
    /// timeout leaves after the delay (the other half is the IO pool's flush), at least 1 s.
    pub fn close_wait(&self) -> Duration {
        (self.timeout.saturating_sub(self.drain_delay) / 2).max(Duration::from_secs(1))
    }

    /// Refuses a timeout that leaves no time after the drain delay.
    pub fn check(&self) -> Result<(), ChatError> {
        if self.timeout <= self.drain_delay + Duration::from_secs(1) {
            return Err(ChatError::Config(format!(
                "chat.shutdown.timeout ({:?}) must exceed chat.shutdown.drain-delay ({:?}) by more than 1s",
                self.timeout, self.drain_delay
            )));
        }
        Ok(())
    }
}

/// All `chat.*` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ChatConfig {
    /// `chat.queue`.
    pub queue: QueueConfig,
    /// `chat.conversation`.
    pub conversation: ConversationConfig,
    /// `chat.message`.
    pub message: MessageConfig,
    /// `chat.housekeeping`.
    pub housekeeping: HousekeepingConfig,
    /// `chat.redis`.
    pub redis: RedisConfig,
    /// `chat.database` (PostgreSQL).
    pub database: crate::durable::DatabaseConfig,
    /// `chat.kafka`.
    pub kafka: crate::events::KafkaConfig,
    /// `chat.events`.
    pub events: crate::events::EventsConfig,
    /// `chat.security`.
    pub security: SecurityConfig,
    /// `chat.socket`.
    pub socket: SocketConfig,
    /// `chat.limits`.
    pub limits: LimitsConfig,
    /// `chat.demo` (the built-in demo pages).
    pub demo: super::demo::DemoConfig,
    /// `chat.shutdown`.
    pub shutdown: ShutdownConfig,
}

/// Tables nested inside a section, reachable from the environment as `SECTION_SUB_KEY`.
const NESTED: &[(&str, &str)] = &[("security", "jwt"), ("security", "rate")];

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    chat: ChatConfig,
}

impl ChatConfig {
    /// Reads `path` (if given), then applies `LIVECHAT_CHAT_*` variables from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ChatError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| ChatError::Config(format!("cannot read {}: {e}", p.display())))?,
            None => String::new(),
        };
        Self::parse(&text, env)
    }

    /// Parses TOML text plus environment overrides.
    pub fn parse(
        text: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ChatError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e| ChatError::Config(format!("{e}")))?;
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("LIVECHAT_CHAT_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once('_') else {
                continue;
            };
            let key = key.to_ascii_lowercase().replace('_', "-");
            let section = section.to_ascii_lowercase();
            let value = match v.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => v
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .unwrap_or_else(|_| toml::Value::String(v.clone())),
            };
            // `SECTION_SUB_KEY` for the tables nested in a section (`chat.security.jwt`).
            let (path, key) = match NESTED.iter().find(|(sec, sub)| {
                *sec == section && key.strip_prefix(sub).is_some_and(|k| k.starts_with('-'))
            }) {
                Some((_, sub)) => (
                    vec![section.clone(), sub.to_string()],
                    key[sub.len() + 1..].to_owned(),
                ),
                None => (vec![section], key),
            };
            let mut at = &mut table;
            for name in std::iter::once("chat".to_owned()).chain(path) {
                let next = at
                    .entry(name)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match next {
                    toml::Value::Table(t) => at = t,
                    _ => return Err(ChatError::Config(format!("{k}: not a table in the file"))),
                }
            }
            at.insert(key, value);
        }
        let file: ConfigFile = table
            .try_into()
            .map_err(|e: toml::de::Error| ChatError::Config(e.to_string()))?;
        Ok(file.chat)
    }
}

/// Parses a `humantime` duration (`250ms`, `2s`, `10m`, `12h`, `1d`, `1h 30m`) or a plain
/// number of milliseconds (`5`), which humantime refuses for want of a unit but the settings
/// have always taken.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    match s.parse::<u64>() {
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => humantime::parse_duration(s).ok(),
    }
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(t) => parse_duration(&t).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid duration {t:?} (use 250ms, 2s, 10m, 12h)"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_file() {
        let c = ChatConfig::parse("", std::iter::empty()).unwrap();
        assert_eq!(c.queue.max_concurrent_by_agent, 3);
        assert_eq!(c.queue.max_wait, Duration::from_secs(600));
        assert_eq!(c.queue.position_limit, 500);
        assert_eq!(c.conversation.inactivity_timeout, Duration::from_secs(1800));
        assert_eq!(c.message.max_length, 4000);
        assert_eq!(c.redis.presence_ttl, Duration::from_secs(300));
    }

    #[test]
    fn file_and_env_overrides() {
        let text = "[chat.queue]\nmax-wait = \"300ms\"\nmax-concurrent-by-agent = 2\n[chat.housekeeping]\ninterval = 100\n";
        let env = vec![(
            "LIVECHAT_CHAT_QUEUE_MAX_CONCURRENT_BY_AGENT".to_string(),
            "5".to_string(),
        )];
        let c = ChatConfig::parse(text, env.into_iter()).unwrap();
        assert_eq!(c.queue.max_wait, Duration::from_millis(300));
        assert_eq!(c.queue.max_concurrent_by_agent, 5);
        assert_eq!(c.housekeeping.interval, Duration::from_millis(100));
    }

    #[test]
    fn position_limit_from_file_and_env_and_refused_when_not_a_count() {
        let c = ChatConfig::parse("[chat.queue]\nposition-limit = 20\n", std::iter::empty());
        assert_eq!(c.unwrap().queue.position_limit, 20);
        let env = [(
            "LIVECHAT_CHAT_QUEUE_POSITION_LIMIT".to_owned(),
            "0".to_owned(),
        )];
        let c = ChatConfig::parse("", env.into_iter()).unwrap();
        assert_eq!(c.queue.position_limit, 0, "0 turns live updates off");
        for bad in ["-1", "\"many\"", "1.5"] {
            let text = format!("[chat.queue]\nposition-limit = {bad}\n");
            assert!(
                ChatConfig::parse(&text, std::iter::empty()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_errors() {
        assert!(
            ChatConfig::parse("[chat.queue]\nmax-wiat = \"1s\"\n", std::iter::empty()).is_err()
        );
        assert!(
            ChatConfig::parse("[chat.queue]\nmax-wait = \"soon\"\n", std::iter::empty()).is_err()
        );
    }

    #[test]
    fn shutdown_settings_from_env_and_their_check() {
        let env = [
            (
                "LIVECHAT_CHAT_SHUTDOWN_DRAIN_DELAY".to_owned(),
                "2s".to_owned(),
            ),
            (
                "LIVECHAT_CHAT_SHUTDOWN_TIMEOUT".to_owned(),
                "12s".to_owned(),
            ),
        ];
        let c = ChatConfig::parse("", env.into_iter()).unwrap();
        assert_eq!(c.shutdown.drain_delay, Duration::from_secs(2));
        assert_eq!(c.shutdown.timeout, Duration::from_secs(12));
        assert!(c.shutdown.check().is_ok());
        // Half of what the timeout leaves after the delay; the other half is the IO flush.
        assert_eq!(c.shutdown.close_wait(), Duration::from_secs(5));
        let d = ShutdownConfig::default();
        assert_eq!(
            (d.drain_delay, d.timeout),
            (Duration::from_secs(5), Duration::from_secs(30))
        );
        let tight = ShutdownConfig {
            drain_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(6),
        };
        assert!(tight.check().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("5"), Some(Duration::from_millis(5)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration(" 2s "), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1_500)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("-5"), None);
    }
}
