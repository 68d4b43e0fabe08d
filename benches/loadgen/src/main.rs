//! `livechat-loadgen`: a Socket.IO v5 (Engine.IO v4, WebSocket) load generator for livechat and
//! the peer servers in `benches/peers/`. One thread (tokio current-thread runtime), one task per
//! connection, fixed offered rates, HDR latency histograms, and its own CPU use reported next to
//! every result. See `BENCHMARKS.md` and `benches/compare.sh`.

mod accept;
mod chat;
mod client;
mod clock;
mod cpu;
mod fanout;
mod histogram;
mod http;
mod idle;
mod lifecycle;
mod publisher;
mod rate;
mod sweep;

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "livechat-loadgen",
    about = "Socket.IO load generator (fan-out, chat, idle, accept, lifecycle)"
)]
struct Cli {
    /// Hard limit on the whole run, seconds (the process exits non-zero when reached).
    #[arg(long, global = true, default_value_t = 1200)]
    max_seconds: u64,
    /// File descriptors to ask for (RLIMIT_NOFILE).
    #[arg(long, global = true, default_value_t = 200_000)]
    nofile: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Rooms with members and publishers; `pub` is broadcast back as `msg`.
    Fanout(fanout::Args),
    /// The livechat chat pipeline: customer → chat:message (ack) → agent.
    Chat(chat::Args),
    /// Hold N idle connections (the caller measures server RSS).
    Idle(idle::Args),
    /// A agents racing to accept each of Q queued conversations.
    Accept(accept::Args),
    /// Workers looping start → queue → accept → close over REST, as fast as answered.
    Lifecycle(lifecycle::Args),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    clock::start();
    match cpu::raise_nofile(cli.nofile) {
        Ok(n) => eprintln!("[loadgen] RLIMIT_NOFILE {n}"),
        Err(e) => eprintln!("[loadgen] WARNING: {e}"),
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let limit = Duration::from_secs(cli.max_seconds);
    let result = local.block_on(&rt, async move {
        let work = async move {
            match cli.cmd {
                Cmd::Fanout(a) => fanout::run(a).await,
                Cmd::Chat(a) => chat::run(a).await,
                Cmd::Idle(a) => idle::run(a).await,
                Cmd::Accept(a) => accept::run(a).await,
                Cmd::Lifecycle(a) => lifecycle::run(a).await,
            }
        };
        match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => bail!("--max-seconds {} reached", limit.as_secs()),
        }
    });
    // Dropping the LocalSet and the runtime closes every connection.
    drop(local);
    drop(rt);
    result
}
