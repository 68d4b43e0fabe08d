//! `lifecycle` (livechat only, REST): C workers, one keep-alive HTTP connection each, each
//! looping through a whole conversation as fast as the server answers — start
//! (`POST /api/conversations`) → queue → accept (as agent `ag-<worker>`) → close. Closed-loop
//! load: the offered rate is whatever C outstanding requests give. Measures completed
//! conversations per second (steps/s = 4×), per-step latency (HDR: p50/p99/p99.9/max), status
//! codes (any non-2xx or transport error is counted; the run fails when more than
//! `--max-error-pct` of the requests fail), and the CPU of the loadgen, the server and its
//! backends. One JSON line per run, like the other modes.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::json;

use crate::client::Target;
use crate::clock::now_ns;
use crate::cpu::{CpuMeter, ForeignMeter, PidMeter};
use crate::histogram::Latency;
use crate::http::HttpConn;
use crate::sweep;

/// `lifecycle` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server URL (`livechat serve`). Repeat it for several nodes sharing one Redis: worker `w`
    /// talks to node `w % nodes`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: Vec<String>,
    /// Concurrent workers (one keep-alive connection each, one request outstanding each).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds run before the measurement (not counted: connection pools, caches).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// The run fails when more than this percentage of the measured requests fail.
    #[arg(long, default_value_t = 1.0)]
    max_error_pct: f64,
    /// Pid of the server under test: its CPU use is reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Pids of the backends (Redis, PostgreSQL backends, the broker; repeatable): their CPU use
    /// is reported (summed) and not counted as other processes disturbing the run.
    #[arg(long)]
    backend_pid: Vec<u32>,
    /// Name of the configuration under test, copied into the JSON results.
    #[arg(long, default_value = "livechat")]
    label: String,
}

/// The four requests of one conversation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    Start = 0,
    Queue = 1,
    Accept = 2,
    Close = 3,
}

const STEPS: [StepKind; 4] = [
    StepKind::Start,
    StepKind::Queue,
    StepKind::Accept,
    StepKind::Close,
];

impl StepKind {
    fn name(self) -> &'static str {
        match self {
            StepKind::Start => "start",
            StepKind::Queue => "queue",
            StepKind::Accept => "accept",
            StepKind::Close => "close",
        }
    }
}

/// What the measured window saw.
#[derive(Debug, Default)]
struct Stats {
    latency: [Latency; 4],
    /// Requests that got an answer (any status), per step.
    requests: [u64; 4],
    /// Non-2xx answers and transport errors, per step.
    errors: [u64; 4],
    /// Status codes of every answer (`0` = transport error, no answer).
    statuses: BTreeMap<u16, u64>,
    /// Conversations whose close succeeded.
    conversations: u64,
    first_error: Option<String>,
}

impl Stats {
    /// Counts a failed request; `status` (`0` = no answer) goes to the status counts unless
    /// `None` (already counted there).
    fn note_error(&mut self, step: StepKind, status: Option<u16>, what: String) {
        self.errors[step as usize] += 1;
        if let Some(status) = status {
            *self.statuses.entry(status).or_default() += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(format!("{}: {what}", step.name()));
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    stats: RefCell<Stats>,
    /// Set when the workers should stop starting new conversations.
    stop: Cell<bool>,
    /// Workers still running.
    running: Cell<usize>,
    /// Reconnections after transport errors (over the whole run).
    reconnects: Cell<u64>,
}

#[derive(Deserialize)]
struct Started {
    id: String,
}

/// One request; latency and status go to `shared`. `Ok(Some(body))` on 2xx, `Ok(None)` on
/// another status, `Err` on a transport error (the connection is then unusable).
async fn step(
    shared: &Shared,
    conn: &mut HttpConn,
    kind: StepKind,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Option<Vec<u8>>> {
    let t = Instant::now();
    let r = conn.request("POST", path, headers, Some(body)).await;
    let took = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut s = shared.stats.borrow_mut();
    match r {
        Ok(r) => {
            s.requests[kind as usize] += 1;
            s.latency[kind as usize].record_ns(took);
            if (200..300).contains(&r.status) {
                *s.statuses.entry(r.status).or_default() += 1;
                Ok(Some(r.body))
            } else {
                let what = format!("{} {}", r.status, String::from_utf8_lossy(&r.body));
                s.note_error(kind, Some(r.status), what);
                Ok(None)
            }
        }
        Err(e) => {
            s.requests[kind as usize] += 1;
            s.note_error(kind, Some(0), format!("transport: {e:#}"));
            Err(e)
        }
    }
}

/// One conversation start to close. `Ok(())` also when a step was refused (counted; the
/// conversation is abandoned); `Err` on a transport error.
async fn conversation(
    shared: &Shared,
    conn: &mut HttpConn,
    customer: &str,
    agent: &str,
) -> Result<()> {
    let Some(body) = step(
        shared,
        conn,
        StepKind::Start,
        "/api/conversations",
        &[("X-Participant-Id", customer)],
        r#"{"channel":"web"}"#,
    )
    .await?
    else {
        return Ok(());
    };
    let id = match serde_json::from_slice::<Started>(&body) {
        Ok(s) => s.id,
        Err(e) => {
            // Answered 2xx (counted there) but unusable: a failed start.
            let what = format!("start response: {e}");
            shared
                .stats
                .borrow_mut()
                .note_error(StepKind::Start, None, what);
            return Ok(());
        }
    };
    let agent_h = [("X-Agent-Id", agent)];
    let plan = [
        (
            StepKind::Queue,
            format!("/api/conversations/{id}/queue"),
            "{}",
            &[][..],
        ),
        (
            StepKind::Accept,
            format!("/api/agent/conversations/{id}/accept"),
            r#"{"displayName":"A"}"#,
            &agent_h[..],
        ),
        (
            StepKind::Close,
            format!("/api/agent/conversations/{id}/close"),
            "{}",
            &agent_h[..],
        ),
    ];
    for (kind, path, body, headers) in plan {
        if step(shared, conn, kind, &path, headers, body)
            .await?
            .is_none()
        {
            return Ok(());
        }
    }
    shared.stats.borrow_mut().conversations += 1;
    Ok(())
}

/// One worker: conversations back to back on one keep-alive connection until told to stop.
async fn worker(shared: Rc<Shared>, target: Target, w: usize, nonce: u64) {
    let agent = format!("ag-{w}");
    let mut seq = 0u64;
    let mut conn: Option<HttpConn> = None;
    while !shared.stop.get() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match HttpConn::connect(target.addr, &target.host).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    shared.stats.borrow_mut().note_error(
                        StepKind::Start,
                        Some(0),
                        format!("connect: {e:#}"),
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        seq += 1;
        let customer = format!("lc-{nonce}-{w}-{seq}");
        if conversation(&shared, c, &customer, &agent).await.is_err() {
            conn = None;
            shared.reconnects.set(shared.reconnects.get() + 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    shared.running.set(shared.running.get() - 1);
}

/// Runs the scenario.
pub async fn run(a: Args) -> Result<()> {
    if a.clients == 0 || a.url.is_empty() {
        bail!("--clients and --url must not be empty");
    }
    let targets = a
        .url
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<Vec<_>>>()?;
    let shared = Rc::new(Shared::default());
    let nonce = now_ns() ^ (u64::from(std::process::id()) << 40);
    shared.running.set(a.clients);
    for w in 0..a.clients {
        let t = targets[w % targets.len()].clone();
        tokio::task::spawn_local(worker(shared.clone(), t, w, nonce));
    }
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let warm = std::mem::take(&mut *shared.stats.borrow_mut());
    eprintln!(
        "[lifecycle {}] warm-up {}s: {} conversations, {} errors{}",
        a.label,
        a.warmup,
        warm.conversations,
        warm.errors.iter().sum::<u64>(),
        warm.first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );

    let start = Instant::now();
    let cpu = CpuMeter::start();
    let server_cpu = PidMeter::start(a.server_pid);
    let backend_cpu: Vec<PidMeter> = a
        .backend_pid
        .iter()
        .map(|&p| PidMeter::start(Some(p)))
        .collect();
    let foreign = ForeignMeter::start(a.server_pid);
    tokio::time::sleep(Duration::from_secs(a.duration)).await;
    // The window ends here: take its statistics (late answers land in a throw-away default).
    let s = std::mem::take(&mut *shared.stats.borrow_mut());
    let secs = start.elapsed().as_secs_f64();
    let cpu_pct = cpu.percent();
    let server_cpu_pct = server_cpu.percent();
    let backend_pcts: Vec<Option<f64>> = backend_cpu.iter().map(PidMeter::percent).collect();
    let backend_cpu_pct = (!backend_pcts.is_empty())
        .then(|| backend_pcts.iter().map(|p| p.unwrap_or(0.0)).sum::<f64>());
    let foreign_pct = foreign
        .percent()
        .map(|f| (f - backend_cpu_pct.unwrap_or(0.0)).max(0.0));
    let disturbed = foreign_pct.is_some_and(|f| f > sweep::DISTURBED_PCT);
    shared.stop.set(true);
    let drain_until = Instant::now() + Duration::from_secs(10);
    while shared.running.get() > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let requests: u64 = s.requests.iter().sum();
    let errors: u64 = s.errors.iter().sum();
    let error_pct = if requests == 0 {
        100.0
    } else {
        errors as f64 / requests as f64 * 100.0
    };
    let conv_per_s = s.conversations as f64 / secs;
    let mut latency = serde_json::Map::new();
    let mut errors_by_step = serde_json::Map::new();
    for k in STEPS {
        latency.insert(
            k.name().to_owned(),
            serde_json::to_value(s.latency[k as usize].summary())?,
        );
        errors_by_step.insert(k.name().to_owned(), s.errors[k as usize].into());
    }
    let mut why = Vec::new();
    if s.conversations == 0 {
        why.push("no conversation completed".to_owned());
    }
    if error_pct > a.max_error_pct {
        why.push(format!(
            "{errors} of {requests} requests failed ({error_pct:.2} % > {} %)",
            a.max_error_pct
        ));
    }
    let ok = why.is_empty();
    let out = json!({
        "scenario": "lifecycle", "label": a.label, "clients": a.clients, "nodes": targets.len(),
        "duration_s": secs, "conversations": s.conversations,
        "conversations_per_s": conv_per_s, "steps_per_s": 4.0 * conv_per_s,
        "requests": requests, "requests_per_s": requests as f64 / secs,
        "errors": errors, "error_pct": error_pct, "errors_by_step": errors_by_step,
        "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "first_error": s.first_error, "reconnects": shared.reconnects.get(),
        "latency": latency,
        "loadgen_cpu_pct": cpu_pct, "server_cpu_pct": server_cpu_pct,
        "backend_cpu_pct": backend_cpu_pct, "foreign_cpu_pct": foreign_pct,
        "disturbed": disturbed, "ok": ok, "why": why.join("; "),
    });
    println!("{out}");
    let line = |k: StepKind| s.latency[k as usize].summary().line();
    eprintln!(
        "[lifecycle {}] {} clients: {:.0} conversations/s = {:.0} steps/s | errors {errors}/{requests} {:?}{} | loadgen CPU {:.0}% server CPU {} backends {} other {}{}",
        a.label,
        a.clients,
        conv_per_s,
        4.0 * conv_per_s,
        s.statuses,
        s.first_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default(),
        cpu_pct,
        server_cpu_pct.map_or("-".to_owned(), |c| format!("{c:.0}%")),
        backend_cpu_pct.map_or("-".to_owned(), |c| format!("{c:.0}%")),
        foreign_pct.map_or("-".to_owned(), |c| format!("{c:.0}%")),
        if ok { String::new() } else { format!(" FAIL: {}", why.join("; ")) }
    );
    for k in STEPS {
        eprintln!("[lifecycle {}]   {:<6} {}", a.label, k.name(), line(k));
    }
    if !ok {
        bail!("lifecycle run failed: {}", why.join("; "));
    }
    Ok(())
}
