//! Gateway settings: listen addresses, Engine.IO timers and limits, CORS, transports, and the
//! limits that keep hostile clients from exhausting the node (connection caps, request
//! deadlines, per-address rates, trusted proxies).
//!
//! Defaults follow Node's `engine.io` / `socket.io` servers so existing clients behave the same;
//! the hostile-input limits are generous enough that no well-behaved client meets them.

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::http::cidr::Cidr;

/// Which Engine.IO transports clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling allowed.
    pub polling: bool,
    /// WebSocket allowed.
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Self {
            polling: true,
            websocket: true,
        }
    }
}

impl std::str::FromStr for Transports {
    type Err = String;

    /// Parses `polling,websocket`, `websocket`, `polling`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut t = Transports {
            polling: false,
            websocket: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "polling" => t.polling = true,
                "websocket" => t.websocket = true,
                other => return Err(format!("unknown transport {other:?}")),
            }
        }
        if !t.polling && !t.websocket {
            return Err("at least one transport is required".into());
        }
        Ok(t)
    }
}

/// Cross-origin policy for browser clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins (`https://app.example.com`), or `*` for any. Empty: no CORS headers.
    pub origins: Vec<String>,
}

impl Cors {
    /// The value of `Access-Control-Allow-Origin` for a request from `origin`, if allowed.
    pub fn allow<'a>(&'a self, origin: &'a str) -> Option<&'a str> {
        if self.origins.iter().any(|o| o == "*") {
            Some("*")
        } else if self.origins.iter().any(|o| o == origin) {
            Some(origin)
        } else {
            None
        }
    }
}

/// All gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Addresses every executor listens on (port 0 picks one port for all executors).
    pub listen: Vec<SocketAddr>,
    /// Number of executors; `None` = one per available CPU.
    pub executors: Option<usize>,
    /// Pin executors to CPUs.
    pub pin: bool,
    /// URL path of the Engine.IO endpoint (`/socket.io/`, or `/engine.io/` for raw Engine.IO).
    pub path: String,
    /// Server ping period.
    pub ping_interval: Duration,
    /// How long to wait for a pong before closing.
    pub ping_timeout: Duration,
    /// How long a started upgrade may take before the half-open WebSocket is dropped.
    pub upgrade_timeout: Duration,
    /// How long a Socket.IO client may stay without joining any namespace.
    pub connect_timeout: Duration,
    /// Largest accepted message / polling body (advertised as `maxPayload`).
    pub max_payload: usize,
    /// Allowed transports.
    pub transports: Transports,
    /// CORS policy.
    pub cors: Cors,
    /// Most packets queued for one session before it is closed as a slow consumer.
    pub max_queued_packets: usize,
    /// Capacity of each cross-executor mailbox.
    pub mailbox_capacity: usize,
    /// Most open client connections on the node (all executors; beyond, a connection is
    /// closed right after `accept`). `None`: derived from the descriptor limit
    /// (`RLIMIT_NOFILE` minus a reserve, see [`GatewayConfig::connection_cap`]).
    pub max_connections: Option<usize>,
    /// Most concurrent connections from one client address (IPv6: one /64), node-wide; beyond,
    /// 429. 0: no limit. Trusted proxies are exempt.
    pub max_connections_per_ip: u32,
    /// HTTP requests per second per client address (REST, Engine.IO polling, upgrades; not
    /// `/healthz`), per executor; beyond, 429. 0: no limit.
    pub rest_rate: f64,
    /// Burst of the per-address request rate.
    pub rest_burst: u32,
    /// Peers whose `X-Forwarded-For` names the client address (default: none).
    pub trusted_proxies: Vec<Cidr>,
    /// How long a request head may take from its first byte (then 408 and close).
    pub head_timeout: Duration,
    /// How long a request body may take from the end of its head (then 408 and close).
    pub body_timeout: Duration,
    /// After SIGTERM, how long the node keeps serving while `/readyz` answers 503, so that
    /// balancers take it out of rotation before it stops accepting.
    pub drain_delay: Duration,
    /// Once it stops, how long an executor waits for its open connections to finish (sessions
    /// closed, in-flight requests answered) before it exits anyway.
    pub close_wait: Duration,
}

impl GatewayConfig {
    /// The node-wide connection cap: `max_connections`, or (unset) derived from the process's
    /// soft descriptor limit, or no cap when that is unlimited or unknown.
    pub fn connection_cap(&self) -> usize {
        use crate::http::conn_limit::{default_cap, nofile_soft_limit};
        match self.max_connections {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => nofile_soft_limit().map_or(usize::MAX, default_cap),
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            executors: None,
            pin: true,
            path: "/socket.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            connect_timeout: Duration::from_millis(45_000),
            max_payload: 1_000_000,
            transports: Transports::default(),
            cors: Cors::default(),
            max_queued_packets: 10_000,
            mailbox_capacity: 4096,
            max_connections: None,
            max_connections_per_ip: 1024,
            rest_rate: 100.0,
            rest_burst: 200,
            trusted_proxies: Vec::new(),
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            close_wait: Duration::from_secs(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse() {
        assert_eq!(
            "websocket".parse(),
            Ok(Transports {
                polling: false,
                websocket: true
            })
        );
        assert_eq!("polling, websocket".parse(), Ok(Transports::default()));
        assert!("".parse::<Transports>().is_err());
        assert!("carrier-pigeon".parse::<Transports>().is_err());
    }

    #[test]
    fn cors_allow_list() {
        let c = Cors {
            origins: vec!["https://a.example".into()],
        };
        assert_eq!(c.allow("https://a.example"), Some("https://a.example"));
        assert_eq!(c.allow("https://b.example"), None);
        let any = Cors {
            origins: vec!["*".into()],
        };
        assert_eq!(any.allow("https://b.example"), Some("*"));
        assert_eq!(Cors::default().allow("x"), None);
    }
}
