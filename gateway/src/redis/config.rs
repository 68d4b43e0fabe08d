//! Connection settings and the `redis://` / `rediss://` URL parser.
//!
//! The URL grammar is the redis crate's (`redis::IntoConnectionInfo`, which needs no async
//! runtime): `redis://[user[:password]@]host[:port][/db]`, percent-decoded credentials, IPv6
//! hosts in brackets. That crate refuses `rediss://` unless it is built with its own TLS
//! stack, which we do not use (we drive the socket ourselves), so a `rediss://` URL is parsed
//! as `redis://` and the TLS flag (and `#insecure`) is taken from the original text.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ::redis::{ConnectionAddr, IntoConnectionInfo};

use super::error::Error;

/// Default port of Redis.
pub const DEFAULT_PORT: u16 = 6379;

/// Where and how to talk to Redis.
///
/// Lives on: anywhere (plain data, `Send`): build it once, clone it into each executor.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether to speak TLS (`rediss://`).
    pub tls: bool,
    /// With TLS: skip certificate and host name verification (`rediss://...#insecure`).
    /// For tests and throwaway setups only.
    pub tls_insecure: bool,
    /// With TLS: a PEM file of CA certificates to trust in addition to the system's roots
    /// (for a private CA). Not expressible in the URL; set it in code or configuration.
    pub tls_ca_file: Option<PathBuf>,
    /// ACL user name sent with `HELLO 3 AUTH` (`default` when only a password is given).
    pub username: Option<String>,
    /// Password sent with `HELLO 3 AUTH`. Never printed by `Debug`.
    pub password: Option<String>,
    /// Database selected with `SELECT` after the handshake (when not 0).
    pub db: i64,
    /// How long establishing a connection (TCP, TLS, `HELLO`, `SELECT`, re-subscribing) may
    /// take before it counts as failed.
    pub connect_timeout: Duration,
    /// How long one request waits for its reply before failing with
    /// [`Error::Timeout`].
    pub request_timeout: Duration,
    /// A connection on which the oldest request has waited this long while nothing at all was
    /// read is declared dead and closed (a half-open TCP connection would otherwise keep
    /// timing requests out forever). Longer than `request_timeout`.
    pub stall_timeout: Duration,
    /// At most this many requests wait for replies on one connection; more are refused with
    /// [`Error::Busy`].
    pub max_in_flight: usize,
    /// Wait at least this long after a failed connection attempt before the next one; doubles
    /// on each further failure up to `reconnect_backoff_max`.
    pub reconnect_backoff_min: Duration,
    /// Upper bound of the reconnect backoff.
    pub reconnect_backoff_max: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            tls: false,
            tls_insecure: false,
            tls_ca_file: None,
            username: None,
            password: None,
            db: 0,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            stall_timeout: Duration::from_secs(10),
            max_in_flight: 10_000,
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(2),
        }
    }
}

impl RedisConfig {
    /// Parses `redis://[user[:password]@]host[:port][/db]` or `rediss://...[#insecure]`; the
    /// other settings keep their defaults.
    pub fn from_url(url: &str) -> Result<RedisConfig, Error> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::Config(format!("not a redis URL: {}", redact(url))))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "redis" | "valkey" => false,
            "rediss" | "valkeys" => true,
            "unix" | "redis+unix" | "valkey+unix" => {
                return Err(Error::Config(
                    "unix socket URLs are not supported; use redis://host:port".to_owned(),
                ))
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown URL scheme {other:?}; expected redis:// or rediss://"
                )))
            }
        };
        // The redis crate ignores the fragment of a non-TLS URL; read it here.
        let (rest, fragment) = match rest.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (rest, None),
        };
        let tls_insecure = match fragment {
            None | Some("") => false,
            Some("insecure") if tls => true,
            Some(other) => {
                return Err(Error::Config(format!(
                    "unsupported URL fragment #{other} (only rediss://...#insecure)"
                )))
            }
        };
        let info = format!("redis://{rest}")
            .into_connection_info()
            .map_err(|e| Error::Config(format!("bad redis URL {}: {e}", redact(url))))?;
        let (host, port) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            other => return Err(Error::Config(format!("unsupported redis address {other}"))),
        };
        let settings = info.redis_settings();
        Ok(RedisConfig {
            host,
            port,
            tls,
            tls_insecure,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
            ..RedisConfig::default()
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("tls_insecure", &self.tls_insecure)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("reconnect_backoff_min", &self.reconnect_backoff_min)
            .field("reconnect_backoff_max", &self.reconnect_backoff_max)
            .finish()
    }
}

/// The URL without its credentials, for error messages.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://<redacted>@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> RedisConfig {
        match RedisConfig::from_url(url) {
            Ok(c) => c,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn host_only_gets_the_default_port_and_db_0() {
        let c = parse("redis://127.0.0.1");
        assert_eq!(
            (c.host.as_str(), c.port, c.db, c.tls),
            ("127.0.0.1", 6379, 0, false)
        );
        assert_eq!(c.addr(), "127.0.0.1:6379");
        assert_eq!((c.username, c.password), (None, None));
    }

    #[test]
    fn credentials_port_and_db_are_read_and_percent_decoded() {
        let c = parse("redis://alice:p%40ss%3Aword@cache.internal:6380/3");
        assert_eq!(c.host, "cache.internal");
        assert_eq!(c.port, 6380);
        assert_eq!(c.db, 3);
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("p@ss:word"));
    }

    #[test]
    fn password_only_leaves_the_user_unset() {
        let c = parse("redis://:secret@localhost/1");
        assert_eq!(c.username, None);
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(c.db, 1);
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets_and_get_them_back_in_addr() {
        let c = parse("redis://[::1]:7000");
        assert_eq!(c.host, "::1");
        assert_eq!(c.addr(), "[::1]:7000");
    }

    #[test]
    fn rediss_sets_tls_and_insecure_comes_from_the_fragment() {
        let c = parse("rediss://user:pw@redis.example:6390/2");
        assert!(c.tls && !c.tls_insecure);
        assert_eq!((c.port, c.db), (6390, 2));
        let c = parse("rediss://127.0.0.1:6390#insecure");
        assert!(c.tls && c.tls_insecure);
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        for url in [
            "http://localhost",
            "localhost:6379",
            "redis://localhost/notanumber",
            "redis://localhost#insecure",
            "unix:///tmp/redis.sock",
            "redis://0.0.0.0",
        ] {
            match RedisConfig::from_url(url) {
                Err(Error::Config(_)) => {}
                other => panic!("{url}: {other:?}"),
            }
        }
        let Err(e) = RedisConfig::from_url("redis://u:hunter2@localhost/x") else {
            panic!("accepted a bad db");
        };
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = parse("redis://u:hunter2@localhost");
        let text = format!("{c:?}");
        assert!(
            !text.contains("hunter2") && text.contains("<redacted>"),
            "{text}"
        );
    }
}
