//! `idle`: open N Socket.IO WebSocket connections, hold them (answering pings) for `--hold`
//! seconds, report. The caller measures the server's RSS: it waits for `--ready-file` (written
//! once every connection is up) and reads `/proc/<server pid>/status`.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::client::{auto_source_ips, Dialer, SioClient, Target};
use crate::cpu::CpuMeter;

/// `idle` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Seconds to hold them once all are up.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Handshake query (e.g. `room=idle`); empty for none.
    #[arg(long, default_value = "")]
    query: String,
    /// Concurrent connection handshakes.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Loopback source addresses to spread connections over (0 = as needed).
    #[arg(long, default_value_t = 0)]
    source_ips: usize,
    /// File written (with the connected count) once every connection is up.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Name of the server under test, copied into the JSON results.
    #[arg(long, default_value = "server")]
    label: String,
}

/// This process's resident set size in KiB (from /proc/self/status).
pub fn self_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the scenario.
pub async fn run(a: Args) -> Result<()> {
    let target = Target::parse(&a.url)?;
    let n = a.connections;
    let k = if a.source_ips == 0 {
        auto_source_ips(n)
    } else {
        a.source_ips
    };
    let dialer = Rc::new(Dialer::new(a.connect_concurrency, Duration::from_secs(60)));
    let closed = Rc::new(Cell::new(0usize));
    let rss0 = self_rss_kib();
    let cpu = CpuMeter::start();
    let t0 = Instant::now();
    for i in 0..n {
        let (target, dialer, closed, q) = (
            target.clone(),
            dialer.clone(),
            closed.clone(),
            a.query.clone(),
        );
        let src = target.source_ip(i, k);
        tokio::task::spawn_local(async move {
            let Some(mut c) = dialer.run(SioClient::connect(&target, &q, src)).await else {
                return;
            };
            while let Ok(Some(_)) = c.recv().await {}
            closed.set(closed.get() + 1);
        });
    }
    dialer.wait_for(n, Duration::from_secs(300)).await;
    let connect_s = t0.elapsed().as_secs_f64();
    let connect_cpu = cpu.percent();
    let connected = dialer.connected.get();
    let first_error = dialer.first_error.borrow().clone();
    eprintln!(
        "[idle {}] {connected}/{n} connected in {connect_s:.1}s ({} failed{}), loadgen CPU {connect_cpu:.0}%",
        a.label,
        dialer.failed.get(),
        first_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
    );
    if let Some(f) = &a.ready_file {
        std::fs::write(f, format!("{connected}\n"))?;
    }
    let hold_cpu = CpuMeter::start();
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    let rss1 = self_rss_kib();
    let out = json!({
        "scenario": "idle", "label": a.label, "connections": n, "connected": connected,
        "failed": dialer.failed.get(), "first_error": first_error,
        "closed_during_hold": closed.get(), "connect_s": connect_s,
        "connect_rate_per_s": connected as f64 / connect_s.max(1e-9),
        "loadgen_cpu_pct": connect_cpu, "loadgen_hold_cpu_pct": hold_cpu.percent(),
        "loadgen_rss_per_conn_kib": (rss1.saturating_sub(rss0)) as f64 / connected.max(1) as f64,
        "hold_s": a.hold,
    });
    println!("{out}");
    eprintln!(
        "[idle {}] held {connected} for {}s, {} closed meanwhile; loadgen {:.1} KiB/conn",
        a.label,
        a.hold,
        closed.get(),
        (rss1.saturating_sub(rss0)) as f64 / connected.max(1) as f64
    );
    Ok(())
}
