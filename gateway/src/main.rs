//! `livechat`: the livechat server binary.
//!
//! `livechat serve` runs the gateway with one executor per core and the chat engine. With no
//! Redis / database / Kafka configured it runs the embedded single-node backend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use livechat_gateway::chat::{ChatApp, ChatConfig};
use livechat_gateway::config::{Cors, GatewayConfig, Transports};
use livechat_gateway::durable::{self, Durable};
use livechat_gateway::events::kafka::FLUSH_AT_STOP;
use livechat_gateway::events::Events;
use livechat_gateway::iopool::IoPool;

#[derive(Parser, Debug)]
#[command(name = "livechat", version, about = "Customer live chat backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply the database migrations this build carries to `chat.database.url`, then exit.
    Migrate(MigrateArgs),
    /// Check the settings (`--config` file, `LIVECHAT_*` variables) as `serve` would, without
    /// starting or connecting anything; exit 0 and say what would run, or exit 1 naming what
    /// is wrong.
    CheckConfig(CheckArgs),
}

/// `livechat check-config`.
#[derive(Args, Debug, Clone)]
struct CheckArgs {
    /// TOML file with `chat.*` settings; `LIVECHAT_CHAT_*` variables override it.
    #[arg(long, env = "LIVECHAT_CONFIG")]
    config: Option<PathBuf>,
    /// The addresses `serve` would listen on (development mode refuses public ones).
    #[command(flatten)]
    listen: ListenArg,
}

/// `--listen`, the same for `serve` and `check-config`.
#[derive(Args, Debug, Clone)]
struct ListenArg {
    /// Address to listen on (repeatable).
    #[arg(
        long = "listen",
        env = "LIVECHAT_LISTEN",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    listen: Vec<SocketAddr>,
}

/// `livechat migrate`.
#[derive(Args, Debug, Clone)]
struct MigrateArgs {
    /// TOML file with `chat.*` settings; `LIVECHAT_CHAT_*` variables override it.
    #[arg(long, env = "LIVECHAT_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL URL (`chat.database.url`).
    #[arg(long)]
    database_url: Option<String>,
}

/// Gateway flags shared by the binary and the examples.
#[derive(Args, Debug, Clone)]
struct ServeArgs {
    #[command(flatten)]
    listen: ListenArg,
    /// Number of executors (default: one per available CPU).
    #[arg(long, env = "LIVECHAT_EXECUTORS")]
    executors: Option<usize>,
    /// Do not pin executors to CPUs (by default executor i runs on the i-th CPU of the
    /// process's affinity mask, so `taskset -c 2,3` chooses the CPUs).
    #[arg(long, env = "LIVECHAT_NO_PIN")]
    no_pin: bool,
    /// Engine.IO ping interval.
    #[arg(long, env = "LIVECHAT_PING_INTERVAL_MS", default_value_t = 25_000)]
    ping_interval_ms: u64,
    /// Engine.IO ping timeout.
    #[arg(long, env = "LIVECHAT_PING_TIMEOUT_MS", default_value_t = 20_000)]
    ping_timeout_ms: u64,
    /// Largest message / polling body in bytes.
    #[arg(long, env = "LIVECHAT_MAX_PAYLOAD", default_value_t = 1_000_000)]
    max_payload: usize,
    /// Allowed CORS origin (repeatable; `*` for any).
    #[arg(
        long = "cors-origin",
        env = "LIVECHAT_CORS_ORIGIN",
        value_delimiter = ','
    )]
    cors_origin: Vec<String>,
    /// Allowed transports: `polling,websocket` or `websocket`.
    #[arg(long, env = "LIVECHAT_TRANSPORTS", default_value = "polling,websocket")]
    transports: Transports,
    /// TOML file with `chat.*` settings (see README); `LIVECHAT_CHAT_*` variables override it.
    #[arg(long, env = "LIVECHAT_CONFIG")]
    config: Option<PathBuf>,
    /// Redis URL (`chat.redis.url`): many nodes share it; unset = embedded single-node backend.
    #[arg(long)]
    redis_url: Option<String>,
    /// PostgreSQL URL (`chat.database.url`): durable conversation metadata.
    #[arg(long)]
    database_url: Option<String>,
    /// Kafka bootstrap brokers (`chat.kafka.brokers`): analytics events.
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Do not apply database migrations at start (run `livechat migrate` separately).
    #[arg(long, env = "LIVECHAT_NO_MIGRATE")]
    no_migrate: bool,
    /// After SIGTERM, how long to keep serving with `/readyz` at 503 before stopping
    /// (`chat.shutdown.drain-delay`, default 5s).
    #[arg(long, value_parser = duration_arg)]
    drain_delay: Option<Duration>,
    /// From SIGTERM to exit at most (`chat.shutdown.timeout`, default 30s).
    #[arg(long, value_parser = duration_arg)]
    shutdown_timeout: Option<Duration>,
    /// Serve the built-in demo pages at `/` and `/agent` (`chat.demo.enabled`; default on,
    /// off under `jwt`): `--demo` or `--demo=false`.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    demo: Option<bool>,
    /// Worker threads of the IO pool (PostgreSQL and Kafka), beside the executors.
    #[arg(long, env = "LIVECHAT_IO_THREADS", default_value_t = 1)]
    io_threads: usize,
    /// How many nice levels below the executors the IO pool's threads run (0–19; 0: the same
    /// priority). An executor sharing a core with them then preempts them at once.
    #[arg(long, env = "LIVECHAT_IO_NICE", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=19))]
    io_nice: u8,
    /// Limits against hostile clients (boxed: they would make `Command` lopsided).
    #[command(flatten)]
    limits: Box<LimitArgs>,
}

/// `livechat serve` flags limiting what clients may hold and send.
#[derive(Args, Debug, Clone)]
struct LimitArgs {
    /// Most open client connections on the node; beyond, a connection is closed at accept
    /// (0: no cap; default: the descriptor limit minus a reserve).
    #[arg(long, env = "LIVECHAT_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most concurrent connections from one client address (IPv6: per /64); beyond, 429
    /// (0: no limit).
    #[arg(long, env = "LIVECHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 1024)]
    max_connections_per_ip: u32,
    /// HTTP requests per second per client address (per executor); beyond, 429 (0: no limit).
    #[arg(long, env = "LIVECHAT_REST_RATE", default_value_t = 100.0)]
    rest_rate: f64,
    /// Burst of the per-address request rate.
    #[arg(long, env = "LIVECHAT_REST_BURST", default_value_t = 200)]
    rest_burst: u32,
    /// Proxy address or CIDR whose `X-Forwarded-For` names the client (repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "LIVECHAT_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxy: Vec<livechat_gateway::config::Cidr>,
    /// How long a request head may take from its first byte (then 408).
    #[arg(long, env = "LIVECHAT_HEAD_TIMEOUT_MS", default_value_t = 10_000)]
    head_timeout_ms: u64,
    /// How long a request body may take from the end of its head (then 408).
    #[arg(long, env = "LIVECHAT_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    body_timeout_ms: u64,
}

impl ServeArgs {
    fn config(&self) -> GatewayConfig {
        GatewayConfig {
            listen: self.listen.listen.clone(),
            executors: self.executors,
            pin: !self.no_pin,
            ping_interval: Duration::from_millis(self.ping_interval_ms),
            ping_timeout: Duration::from_millis(self.ping_timeout_ms),
            max_payload: self.max_payload,
            cors: Cors {
                origins: self.cors_origin.clone(),
            },
            transports: self.transports,
            max_connections: self.limits.max_connections,
            max_connections_per_ip: self.limits.max_connections_per_ip,
            rest_rate: self.limits.rest_rate,
            rest_burst: self.limits.rest_burst,
            trusted_proxies: self.limits.trusted_proxy.clone(),
            head_timeout: Duration::from_millis(self.limits.head_timeout_ms),
            body_timeout: Duration::from_millis(self.limits.body_timeout_ms),
            ..GatewayConfig::default()
        }
    }
}

fn main() -> anyhow::Result<()> {
    init_logs()?;
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Migrate(args) => {
            let mut chat = ChatConfig::load(args.config.as_deref(), std::env::vars())?;
            if let Some(url) = &args.database_url {
                chat.database.url = Some(url.clone());
            }
            let io = IoPool::new(1, 0)?;
            let pool = durable::pool(&chat.database, &io)?;
            io.block_on(durable::migrate(&pool))?;
            tracing::info!("database migrations applied");
            Ok(())
        }
        Command::CheckConfig(args) => check_config(args),
    }
}

/// Everything `serve` checks before it starts: the settings parse (unknown keys and bad values
/// refused), the shutdown timing, the security mode against the listen addresses, the Redis
/// URL and TLS files, the token keys, the PostgreSQL URL. Nothing is connected.
fn check_config(args: CheckArgs) -> anyhow::Result<()> {
    let chat = ChatConfig::load(args.config.as_deref(), std::env::vars())?;
    chat.shutdown.check()?;
    chat.security.check(&args.listen.listen)?;
    if let Some(url) = &chat.database.url {
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
            .map_err(|e| anyhow::anyhow!("chat.database.url: {e}"))?;
    }
    let app = ChatApp::new(chat.clone(), 1)?;
    println!(
        "configuration ok: backend {}, security {}, database {}, kafka {}, demo {}",
        app.backend(),
        app.auth_mode(),
        if chat.database.url.is_some() {
            "on"
        } else {
            "off"
        },
        chat.kafka.brokers.as_deref().unwrap_or("off"),
        if chat.demo.enabled(&chat.security) {
            "on"
        } else {
            "off"
        },
    );
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = args.config();
    let mut chat = ChatConfig::load(args.config.as_deref(), std::env::vars())?;
    if let Some(url) = &args.redis_url {
        chat.redis.url = Some(url.clone());
    }
    if let Some(url) = &args.database_url {
        chat.database.url = Some(url.clone());
    }
    if let Some(brokers) = &args.kafka_brokers {
        chat.kafka.brokers = Some(brokers.clone());
    }
    if let Some(on) = args.demo {
        chat.demo.enabled = Some(on);
    }
    if chat.demo.enabled(&chat.security) {
        tracing::info!(
            "demo pages at / (customer) and /agent (agent console); --demo=false hides them"
        );
        if chat.security.mode() == livechat_gateway::chat::config::SecurityMode::Jwt {
            // They sign in with development-mode ids, which `jwt` does not believe.
            tracing::warn!(
                "chat.demo.enabled under chat.security.mode = jwt: the demo pages cannot sign in"
            );
        }
    }
    if let Some(d) = args.drain_delay {
        chat.shutdown.drain_delay = d;
    }
    if let Some(t) = args.shutdown_timeout {
        chat.shutdown.timeout = t;
    }
    chat.shutdown.check()?;
    cfg.drain_delay = chat.shutdown.drain_delay;
    cfg.close_wait = chat.shutdown.close_wait();
    // Development mode on a public address is refused before anything starts.
    chat.security.check(&cfg.listen)?;
    let executors = cfg
        .executors
        .unwrap_or_else(livechat_shard_router::available_cpus);
    cfg.executors = Some(executors);
    tracing::info!(executors, io_threads = args.io_threads, "starting livechat");
    if chat.redis.url.is_none() && chat.database.url.is_none() && chat.kafka.brokers.is_none() {
        tracing::info!(
            "no Redis, PostgreSQL or Kafka configured: running the embedded single-node backend"
        );
    }
    // Before any executor exists, so its threads are not pinned to an executor's core.
    let io = IoPool::new(args.io_threads, args.io_nice)?;
    let mut app = ChatApp::new(chat.clone(), executors)?;
    let durable = match &chat.database.url {
        Some(_) => {
            let pool = durable::pool(&chat.database, &io)?;
            if !args.no_migrate {
                io.block_on(durable::migrate(&pool))?;
                tracing::info!("database migrations applied");
            }
            let d = Durable::start(&chat.database, pool, &io);
            app = app.with_durable(d.clone());
            Some(d)
        }
        None => None,
    };
    let events = Events::start(&chat.kafka, &chat.events, &io)?;
    tracing::info!(
        backend = app.backend(),
        durable = durable.is_some(),
        events = events.sink(),
        "chat backend"
    );
    app = app.with_events(events.clone());
    if app.auth_mode() == "trust-headers" {
        tracing::warn!(
            allow_insecure = chat.security.allow_insecure,
            "DEVELOPMENT MODE (chat.security.mode = trust-headers): participant ids from headers \
             and handshakes are believed as given, so anyone can act as anyone; configure \
             chat.security.jwt for production"
        );
    } else {
        tracing::info!(
            mode = app.auth_mode(),
            anonymous_customers = chat.security.anonymous_customers,
            "callers authenticate with verified tokens"
        );
    }
    let served = livechat_gateway::serve::serve_until_signal(cfg, Arc::new(app));
    // Every executor has stopped: the IO services drain what is queued, flush, and end, within
    // what the shutdown timeout leaves.
    let left = match &served {
        Ok(signalled) => chat.shutdown.timeout.saturating_sub(signalled.elapsed()),
        Err(_) => chat.shutdown.timeout,
    };
    let grace = (chat.database.statement_timeout + FLUSH_AT_STOP + Duration::from_secs(1))
        .min(left.saturating_sub(Duration::from_millis(500)));
    let drained = io.shutdown(grace);
    tracing::info!(
        drained,
        events = ?events.stats().snapshot(),
        database = ?durable.as_ref().map(|d| d.stats().snapshot()),
        "IO pool stopped"
    );
    served?;
    Ok(())
}

/// Logs to stderr, filtered by `LIVECHAT_LOG` (a `tracing` filter, default `info`), as text or,
/// with `LIVECHAT_LOG_FORMAT=json`, one JSON object per line with the fields of every enclosing
/// span (`executor{id}`, `conn{peer}`) for log pipelines.
fn init_logs() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIVECHAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("LIVECHAT_LOG_FORMAT").as_deref() {
        Err(_) | Ok("" | "text") => builder.init(),
        Ok("json") => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .init(),
        Ok(other) => anyhow::bail!("LIVECHAT_LOG_FORMAT={other:?}: use text or json"),
    }
    Ok(())
}

/// A duration flag: `humantime` (`5s`, `250ms`, `1m`) or plain milliseconds.
fn duration_arg(s: &str) -> Result<Duration, String> {
    livechat_gateway::chat::config::parse_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?} (use 250ms, 5s, 1m)"))
}
