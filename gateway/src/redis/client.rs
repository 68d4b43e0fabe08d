//! [`Redis`]: what the chat backend talks to — one Redis ([`RedisConn`]) or a Redis Cluster
//! ([`ClusterConn`]) behind the same calls, so the store, the locks and the room fan-out do
//! not care which.
//!
//! Pub/Sub: on one Redis, `subscribe` is `SUBSCRIBE` (scripts `PUBLISH`); on a cluster it is
//! `SSUBSCRIBE` on the channel's shard (scripts `SPUBLISH`, [`Redis::publish_command`]), so a
//! room's messages reach only the master that owns the room's slot and its subscribers.
//!
//! Lives on: one executor (a handle; clones share the connections).

use std::future::Future;

use ::redis::{Cmd, FromRedisValue, PushInfo, ToRedisArgs, Value};
use futures_util::future::Either;

use super::{ClusterConn, Error, RedisConfig, RedisConn, Script};

/// One Redis or a cluster.
#[derive(Debug, Clone)]
pub enum Redis {
    /// One server (or a proxy in front of several).
    Single(RedisConn),
    /// A Redis Cluster.
    Cluster(ClusterConn),
}

/// Where a node's Redis is: one server, or the seed nodes of a cluster.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// `redis://` / `rediss://`.
    Single(RedisConfig),
    /// `redis+cluster://host:port[,host:port...]` (or `rediss+cluster://`): the settings of
    /// every node connection and the seeds.
    Cluster(RedisConfig, Vec<String>),
}

impl RedisTarget {
    /// Parses `redis[s]://...` or `redis[s]+cluster://host:port,host:port/`.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let cluster = ["redis+cluster://", "rediss+cluster://"]
            .iter()
            .find(|p| url.starts_with(*p));
        let Some(prefix) = cluster else {
            return Ok(Self::Single(RedisConfig::from_url(url)?));
        };
        let rest = &url[prefix.len()..];
        // Credentials apply to every node; hosts are the comma-separated list after them.
        let (auth, hosts_and_path) = match rest.rfind('@') {
            Some(at) => (&rest[..=at], &rest[at + 1..]),
            None => ("", rest),
        };
        let (hosts, path) = match hosts_and_path.find(['/', '?', '#']) {
            Some(i) => hosts_and_path.split_at(i),
            None => (hosts_and_path, ""),
        };
        let seeds: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.contains(':') && !h.ends_with(']') {
                    h.to_owned()
                } else {
                    format!("{h}:{}", super::config::DEFAULT_PORT)
                }
            })
            .collect();
        let first = seeds
            .first()
            .ok_or_else(|| Error::Config(format!("no node in {url:?}")))?;
        let scheme = if prefix.starts_with("rediss") {
            "rediss"
        } else {
            "redis"
        };
        let config = RedisConfig::from_url(&format!("{scheme}://{auth}{first}{path}"))?;
        if config.db != 0 {
            return Err(Error::Config("Redis Cluster has only database 0".into()));
        }
        Ok(Self::Cluster(config, seeds))
    }

    /// The settings every connection uses (timeouts are set here).
    pub fn config_mut(&mut self) -> &mut RedisConfig {
        match self {
            Self::Single(c) | Self::Cluster(c, _) => c,
        }
    }

    /// The handle for one executor (connects on first use).
    pub fn open(&self) -> Result<Redis, Error> {
        Ok(match self {
            Self::Single(c) => Redis::Single(RedisConn::new(c.clone())?),
            Self::Cluster(c, seeds) => Redis::Cluster(ClusterConn::new(c.clone(), seeds.clone())?),
        })
    }
}

impl Redis {
    /// Sends `cmd` (to the owner of its key's slot on a cluster) and returns its reply.
    pub fn query_value(&self, cmd: &Cmd) -> impl Future<Output = Result<Value, Error>> + 'static {
        match self {
            Self::Single(c) => Either::Left(c.query_value(cmd)),
            Self::Cluster(c) => Either::Right(c.query_value(cmd)),
        }
    }

    /// [`Redis::query_value`], converted to `T`.
    pub fn query<T: FromRedisValue + 'static>(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + 'static {
        match self {
            Self::Single(c) => Either::Left(c.query(cmd)),
            Self::Cluster(c) => Either::Right(c.query(cmd)),
        }
    }

    /// Runs `script` (on the owner of `keys[0]`'s slot on a cluster).
    pub async fn eval<T, K, A>(&self, script: &Script, keys: &[K], args: &[A]) -> Result<T, Error>
    where
        T: FromRedisValue,
        K: ToRedisArgs,
        A: ToRedisArgs,
    {
        match self {
            Self::Single(c) => c.eval(script, keys, args).await,
            Self::Cluster(c) => c.eval(script, keys, args).await,
        }
    }

    /// Subscribes to `channels` (sharded on a cluster); returns once confirmed.
    pub async fn subscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        match self {
            Self::Single(c) => c.subscribe(channels).await,
            Self::Cluster(c) => c.ssubscribe(channels).await,
        }
    }

    /// Unsubscribes from `channels`.
    pub async fn unsubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<(), Error> {
        match self {
            Self::Single(c) => c.unsubscribe(channels).await,
            Self::Cluster(c) => c.sunsubscribe(channels).await,
        }
    }

    /// The command scripts publish room events with: `PUBLISH`, or `SPUBLISH` on a cluster
    /// (the channel shares its slot with the keys the script touches).
    pub fn publish_command(&self) -> &'static str {
        match self {
            Self::Single(_) => "PUBLISH",
            Self::Cluster(_) => "SPUBLISH",
        }
    }

    /// Installs the push handler (Pub/Sub messages, disconnection notices) of every connection.
    pub fn set_push_handler(&self, handler: impl Fn(PushInfo) + 'static) {
        match self {
            Self::Single(c) => c.set_push_handler(handler),
            Self::Cluster(c) => c.set_push_handler(handler),
        }
    }

    /// The connection to every server that holds keys: the one Redis, or every master of the
    /// cluster (for `SCAN`, which walks one server's keys).
    pub async fn shards(&self) -> Result<Vec<RedisConn>, Error> {
        match self {
            Self::Single(c) => Ok(vec![c.clone()]),
            Self::Cluster(c) => c.masters().await,
        }
    }

    /// Command round trips and failed requests of every connection of this executor.
    pub fn command_stats(&self) -> (crate::metrics::Histogram, u64) {
        match self {
            Self::Single(c) => (c.latency(), c.errors()),
            Self::Cluster(c) => c.command_stats(),
        }
    }

    /// The single connection (tests, connection metrics); `None` on a cluster.
    pub fn single(&self) -> Option<&RedisConn> {
        match self {
            Self::Single(c) => Some(c),
            Self::Cluster(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_every_seed_and_share_the_credentials() {
        let RedisTarget::Cluster(c, seeds) =
            RedisTarget::from_url("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3")
                .unwrap()
        else {
            panic!("not a cluster");
        };
        assert_eq!(seeds, ["10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:6379"]);
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p"));
        assert!(!c.tls);
        assert!(matches!(
            RedisTarget::from_url("redis://127.0.0.1:6379/3").unwrap(),
            RedisTarget::Single(_)
        ));
        assert!(
            RedisTarget::from_url("redis+cluster://h:1/2").is_err(),
            "db 2"
        );
        assert!(
            RedisTarget::from_url("redis+cluster:///").is_err(),
            "no node"
        );
        let RedisTarget::Cluster(c, _) = RedisTarget::from_url("rediss+cluster://h:7000").unwrap()
        else {
            panic!("not a cluster");
        };
        assert!(c.tls);
    }
}
