//! Lua scripts: [`Script`] holds the source and its SHA1; [`RedisConn::eval`] runs it with
//! `EVALSHA` and, when the server does not know the script (`NOSCRIPT`: first use, a restart,
//! `SCRIPT FLUSH`, a fail-over), sends it once with `EVAL` — which runs it and caches it for
//! the next `EVALSHA` — transparently to the caller.
//!
//! Retrying is safe: a `NOSCRIPT` answer means nothing ran.

use std::future::Future;

use ::redis::{Cmd, FromRedisValue, ServerErrorKind, ToRedisArgs};

use super::conn::RedisConn;
use super::error::Error;

/// A Lua script and its SHA1 (the name `EVALSHA` uses).
///
/// Lives on: anywhere (plain data, `Send + Sync`); build it once, e.g. in a `static`
/// `LazyLock`, and share it between executors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    source: String,
    hash: String,
}

impl Script {
    /// Wraps `source`, computing its SHA1 as Redis does.
    pub fn new(source: &str) -> Script {
        Script {
            hash: ::redis::Script::new(source).get_hash().to_owned(),
            source: source.to_owned(),
        }
    }

    /// The lowercase hex SHA1 of the source.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The Lua source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl RedisConn {
    /// Runs `script` with `keys` (`KEYS[1..]`) and `args` (`ARGV[1..]`): `EVALSHA` (queued
    /// when this is called), and once more with `EVAL` if the server answers `NOSCRIPT`. The
    /// reply converts to `T`.
    pub fn eval<'a, T, K, A>(
        &'a self,
        script: &'a Script,
        keys: &'a [K],
        args: &'a [A],
    ) -> impl Future<Output = Result<T, Error>> + 'a
    where
        T: FromRedisValue + 'a,
        K: ToRedisArgs,
        A: ToRedisArgs,
    {
        let first = self.query_value(&eval_cmd("EVALSHA", script.hash(), keys, args));
        async move {
            let value = match first.await {
                Err(e) if e.server_kind() == Some(ServerErrorKind::NoScript) => {
                    self.shared().bump(|s| s.script_reloads += 1);
                    self.query_value(&eval_cmd("EVAL", script.source(), keys, args))
                        .await?
                }
                other => other?,
            };
            T::from_redis_value(value).map_err(Error::from)
        }
    }
}

/// `EVALSHA hash n keys... args...` or `EVAL source n keys... args...`.
pub(super) fn eval_cmd<K: ToRedisArgs, A: ToRedisArgs>(
    command: &str,
    script: &str,
    keys: &[K],
    args: &[A],
) -> Cmd {
    let mut cmd = ::redis::cmd(command);
    cmd.arg(script).arg(keys.len());
    for k in keys {
        cmd.arg(k);
    }
    for a in args {
        cmd.arg(a);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_sha1_redis_computes() {
        // `redis-cli SCRIPT LOAD "return 1"` answers this.
        let s = Script::new("return 1");
        assert_eq!(s.hash(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert_eq!(s.source(), "return 1");
    }
}
