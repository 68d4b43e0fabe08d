//! WebSocket churn soak: rounds of many Socket.IO-over-WebSocket connections opened and closed
//! (every close path) must leave the server's memory flat. A leak of a few hundred bytes per
//! connection shows up here as RSS growing every round; capacity kept after the first rounds
//! (maps sized for the peak, allocator arenas) does not grow after the warm-up.
//!
//! The leak this guards against: every session's heartbeat task and Socket.IO connect timer
//! were cancelled by dropping their `glommio::Task`, which in glommio 0.9 never frees the task
//! (~430 B per connection): RSS grew ~885 KiB every round of 2,000 connections, for good. Now
//! both tasks end by themselves and RSS stays within ~100 KiB from round 3 to round 8.
//!
//! Each round opens [`PER_ROUND`] connections (Engine.IO open, Socket.IO CONNECT to `/`), in
//! batches of [`AT_ONCE`] open together, closing each batch through the close paths in turn: a Close frame, a TCP reset,
//! a plain FIN, an Engine.IO close packet, a server-side Socket.IO disconnect, a client-side
//! Socket.IO disconnect. Then it waits for the server's view — the server process holds no
//! connection socket any more (`/proc/<pid>/fd`) — and reads the server's `VmRSS`.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use livechat_tests::ws::{WsClient, OP_CLOSE, SIO_WS_PATH};
use livechat_tests::{
    nofile_soft_limit, proc_open_sockets, proc_rss_kib, wait_open_sockets_at_most, Server,
};

/// Rounds of churn; the first [`WARM_UP`] let maps and allocator arenas reach their size.
const ROUNDS: usize = 8;
/// Rounds before the RSS the later rounds are compared with.
const WARM_UP: usize = 3;
/// Connections per round.
const PER_ROUND: usize = 2_000;
/// Connections open at the same time. Not all of a round at once: with two executors the
/// kernel splits each batch between them at random, and every executor's allocator keeps the
/// most it ever needed, so the bigger the batch, the longer that high-water mark creeps up
/// (by a few hundred KiB with all 2,000 open together) — noise that a leak test must not see.
/// A leak is per connection and shows the same at any batch size.
const AT_ONCE: usize = 250;
/// Most the server's RSS may grow from the end of the warm-up to the end of the last round.
/// A leak of 480 B per connection would add 2,000 × 5 × 480 B ≈ 4.7 MiB; allocator noise
/// over these rounds stays well below this.
const MAX_GROWTH_KIB: u64 = 1024;
/// How long the server may take to drop every connection of a round.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a client ends its connection.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// A WebSocket Close frame; the server echoes it and closes the TCP connection.
    CloseFrame,
    /// The server's echo of an event is left unread and the socket dropped: a TCP reset.
    Reset,
    /// The socket is dropped with nothing unread: a FIN without a Close frame.
    Fin,
    /// Engine.IO close packet `1`; the server ends the session and the connection.
    EngineIoClose,
    /// The server disconnects the Socket.IO socket (`41` sent to the client), then the client
    /// drops the connection.
    ServerDisconnect,
    /// Socket.IO DISCONNECT `41` from the client, then a Close frame.
    SioDisconnect,
}

const CLOSE_PATHS: [Ending; 6] = [
    Ending::CloseFrame,
    Ending::Reset,
    Ending::Fin,
    Ending::EngineIoClose,
    Ending::ServerDisconnect,
    Ending::SioDisconnect,
];

fn open(server: &Server) -> anyhow::Result<WsClient> {
    let mut ws = WsClient::connect(server.addr(), SIO_WS_PATH)?;
    ws.sio_connect()?;
    Ok(ws)
}

fn close(mut ws: WsClient, how: Ending) -> anyhow::Result<()> {
    match how {
        Ending::CloseFrame => {
            ws.send_frame(true, OP_CLOSE, &1000u16.to_be_bytes(), true)?;
            ws.expect_close()?;
        }
        Ending::Reset => {
            ws.send_text(r#"42["message","bye"]"#)?;
            ws.wait_unread()?;
            drop(ws);
        }
        Ending::Fin => drop(ws),
        Ending::EngineIoClose => {
            ws.send_text("1")?;
            ws.read_until_closed()?;
        }
        Ending::ServerDisconnect => {
            ws.send_text(r#"42["server-disconnect"]"#)?;
            ws.expect_text_matching(|t| t == "41")?;
            drop(ws);
        }
        Ending::SioDisconnect => {
            ws.send_text("41")?;
            ws.send_frame(true, OP_CLOSE, &1000u16.to_be_bytes(), true)?;
            ws.read_until_closed()?;
        }
    }
    Ok(())
}

/// One round: `PER_ROUND` connections, at most `at_once` open together, closed through every
/// close path; returns once the server holds only `baseline_sockets` sockets again.
fn round(server: &Server, at_once: usize, baseline_sockets: usize) -> anyhow::Result<()> {
    let mut done = 0;
    while done < PER_ROUND {
        let n = at_once.min(PER_ROUND - done);
        let mut clients = Vec::with_capacity(n);
        for i in 0..n {
            clients.push(open(server).with_context(|| format!("opening connection {i}"))?);
        }
        for (i, ws) in clients.into_iter().enumerate() {
            let how = CLOSE_PATHS[(done + i) % CLOSE_PATHS.len()];
            close(ws, how).with_context(|| format!("closing connection {i} with {how:?}"))?;
        }
        done += n;
    }
    wait_open_sockets_at_most(server.pid(), baseline_sockets, DRAIN_TIMEOUT)
}

fn soak(executors: &str) -> anyhow::Result<()> {
    let server = Server::conformance(executors, &[])?;
    let pid = server.pid();
    // The listeners (and whatever else the server opened at start): what is left between rounds.
    let baseline_sockets = proc_open_sockets(pid)?;
    // Client and server descriptors are counted separately (two processes); leave headroom.
    let at_once = nofile_soft_limit()
        .map_or(AT_ONCE, |n| {
            usize::try_from(n.saturating_sub(128)).unwrap_or(AT_ONCE)
        })
        .clamp(16, AT_ONCE);
    let mut rss = Vec::with_capacity(ROUNDS);
    let started = Instant::now();
    for r in 1..=ROUNDS {
        round(&server, at_once, baseline_sockets).with_context(|| format!("round {r}"))?;
        let kib = proc_rss_kib(pid)?;
        eprintln!(
            "--executors {executors}: round {r}: server RSS {kib} KiB ({:?})",
            started.elapsed()
        );
        rss.push(kib);
    }
    let base = rss[WARM_UP - 1];
    let last = rss[ROUNDS - 1];
    let growth = last.saturating_sub(base);
    ensure!(
        growth <= MAX_GROWTH_KIB,
        "--executors {executors}: server RSS grew {growth} KiB from round {WARM_UP} to round \
         {ROUNDS} ({} connections; at most {MAX_GROWTH_KIB} KiB allowed): {rss:?} KiB",
        PER_ROUND * (ROUNDS - WARM_UP)
    );
    Ok(())
}

#[test]
fn websocket_churn_leaves_server_memory_flat() -> anyhow::Result<()> {
    for executors in ["1", "2"] {
        soak(executors)?;
    }
    Ok(())
}
