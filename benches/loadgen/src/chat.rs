//! `chat` (livechat only, against `livechat serve`): per conversation a customer socket (the
//! server starts the conversation), REST queue + accept, and an agent socket joined to it.
//! Customers emit `chat:message` with an ack at a fixed total rate; we measure the ack latency
//! (`43<id>[ChatMessage]`), the delivery latency to the agent (`chat:message` event) and the
//! stored messages per second. `--sweep` raises the rate until ack p99 > `--p99-limit-ms`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use livechat_gateway::socketio::packet::{PacketKind, Payload};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::client::{auto_source_ips, encode_event, Dialer, SioClient, SioPacket, Target};
use crate::clock::now_ns;
use crate::cpu::{CpuMeter, ForeignMeter, PidMeter};
use crate::histogram::Latency;
use crate::http::HttpConn;
use crate::publisher::{self, Phase, SendCounters};
use crate::sweep::{self, Step, SweepCfg};

/// `chat` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server URL (`livechat serve`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Conversations (each: one customer and one agent socket).
    #[arg(long, default_value_t = 100)]
    conversations: usize,
    /// Messages per second, all customers together.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds per step.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Raise the rate step by step from `--rate`.
    #[arg(long)]
    sweep: bool,
    /// Rate multiplier between sweep steps.
    #[arg(long, default_value_t = 1.5)]
    factor: f64,
    /// Most rising sweep steps.
    #[arg(long, default_value_t = 14)]
    max_steps: usize,
    /// Bisection steps after the first failing one.
    #[arg(long, default_value_t = 2)]
    refine: usize,
    /// Re-runs of a failing rising step before it counts as failed.
    #[arg(long, default_value_t = 1)]
    retries: usize,
    /// A step fails when its ack p99 exceeds this.
    #[arg(long, default_value_t = 5.0)]
    p99_limit_ms: f64,
    /// Concurrent conversation set-ups.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Pid of the server under test: its CPU use is reported next to each step.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Name of the server under test, copied into the JSON results.
    #[arg(long, default_value = "livechat")]
    label: String,
    /// Pids of the backends the server works with (Redis; PostgreSQL backends, the broker),
    /// repeatable: their CPU use (summed) is reported next to each step and not counted as
    /// other processes disturbing the run.
    #[arg(long)]
    backend_pid: Vec<u32>,
}

#[derive(Debug, Default)]
struct StepStats {
    since_ns: u64,
    ack: Latency,
    delivery: Latency,
    acked: u64,
    ack_errors: u64,
    delivered: u64,
    last_ack_ns: u64,
    first_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    stats: RefCell<StepStats>,
    sends: SendCounters,
    agents_closed: Cell<u64>,
}

#[derive(Deserialize)]
struct MessageBody {
    content: Option<String>,
    error: Option<String>,
    code: Option<String>,
}

impl Shared {
    fn on_customer_packet(&self, p: &SioPacket) {
        let now = now_ns();
        let Ok(pk) = p.decode() else { return };
        let (PacketKind::Ack, Payload::Ack { args }) = (pk.kind, &pk.payload) else {
            return; // the customer's own chat:message echo, system events
        };
        let body = args
            .first()
            .and_then(|a| serde_json::from_str::<MessageBody>(a.get()).ok());
        let mut s = self.stats.borrow_mut();
        match body {
            Some(MessageBody {
                content: Some(c),
                error: None,
                ..
            }) => {
                let Ok(t) = c.parse::<u64>() else { return };
                if t >= s.since_ns {
                    s.ack.record_ns(now.saturating_sub(t));
                    s.acked += 1;
                    s.last_ack_ns = now;
                }
            }
            other => {
                s.ack_errors += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(match other {
                        Some(b) => format!("{:?} {:?}", b.error, b.code),
                        None => p.decode().map(|d| format!("{d:?}")).unwrap_or_default(),
                    });
                }
            }
        }
    }

    fn on_agent_packet(&self, p: &SioPacket) {
        let now = now_ns();
        let Some((name, Some(arg))) = p.event() else {
            return;
        };
        if name != "chat:message" {
            return;
        }
        let Ok(MessageBody {
            content: Some(c), ..
        }) = serde_json::from_str::<MessageBody>(&arg)
        else {
            return;
        };
        let Ok(t) = c.parse::<u64>() else { return };
        let mut s = self.stats.borrow_mut();
        if t >= s.since_ns {
            s.delivery.record_ns(now.saturating_sub(t));
            s.delivered += 1;
        }
    }
}

#[derive(Deserialize)]
struct SystemEvent {
    conversation: Option<Conversation>,
}

#[derive(Deserialize)]
struct Conversation {
    id: String,
}

/// Customer socket → conversation id → queue → accept → agent socket.
async fn set_up(
    t: &Target,
    i: usize,
    src: Option<std::net::IpAddr>,
) -> Result<(SioClient, SioClient, String)> {
    let mut customer = SioClient::connect(t, &format!("role=customer&token=c{i}"), src).await?;
    let id = loop {
        let p = customer.recv().await?.context("customer closed")?;
        if let Some((name, Some(arg))) = p.event() {
            if name == "system:error" {
                bail!("customer refused: {arg}");
            }
            if name == "system:event" {
                if let Some(c) = serde_json::from_str::<SystemEvent>(&arg)?.conversation {
                    break c.id;
                }
            }
        }
    };
    let mut http = HttpConn::connect(t.addr, &t.host).await?;
    let r = http
        .request(
            "POST",
            &format!("/api/conversations/{id}/queue"),
            &[],
            Some("{}"),
        )
        .await?;
    if r.status != 200 {
        bail!("queue: {} {}", r.status, String::from_utf8_lossy(&r.body));
    }
    let r = http
        .request(
            "POST",
            &format!("/api/agent/conversations/{id}/accept"),
            &[],
            Some(&format!(r#"{{"agentId":"a{i}"}}"#)),
        )
        .await?;
    if r.status != 200 {
        bail!("accept: {} {}", r.status, String::from_utf8_lossy(&r.body));
    }
    drop(http);
    let mut agent = SioClient::connect(
        t,
        &format!("role=agent&token=a{i}&conversationId={id}"),
        src,
    )
    .await?;
    loop {
        let p = agent.recv().await?.context("agent closed")?;
        match p.event() {
            Some((name, arg)) if name == "system:error" => bail!("agent refused: {arg:?}"),
            Some((name, _)) if name == "system:event" => break,
            _ => {}
        }
    }
    Ok((customer, agent, id))
}

/// Runs the scenario.
pub async fn run(a: Args) -> Result<()> {
    let target = Target::parse(&a.url)?;
    let n = a.conversations;
    let k = auto_source_ips(2 * n);
    let shared = Rc::new(Shared::default());
    let dialer = Rc::new(Dialer::new(a.connect_concurrency, Duration::from_secs(60)));
    let (phase_tx, phase_rx) = watch::channel(Phase::idle());
    let t0 = Instant::now();
    for i in 0..n {
        let (target, dialer, shared, rx) = (
            target.clone(),
            dialer.clone(),
            shared.clone(),
            phase_rx.clone(),
        );
        let src = target.source_ip(i, k);
        tokio::task::spawn_local(async move {
            let Some((customer, mut agent, id)) = dialer.run(set_up(&target, i, src)).await else {
                return;
            };
            let sh = shared.clone();
            tokio::task::spawn_local(async move {
                while let Ok(Some(p)) = agent.recv().await {
                    sh.on_agent_packet(&p);
                }
                sh.agents_closed.set(sh.agents_closed.get() + 1);
            });
            let mut ack = 0u64;
            let make = |ts: u64| {
                ack += 1;
                encode_event(
                    "chat:message",
                    Some(ack),
                    &format!(r#"{{"conversationId":"{id}","content":"{ts}"}}"#),
                )
            };
            let offset = i as f64 / n as f64;
            let _ = publisher::run(customer, rx, offset, &shared.sends, make, |p| {
                shared.on_customer_packet(p)
            })
            .await;
        });
    }
    drop(phase_rx);
    dialer.wait_for(n, Duration::from_secs(300)).await;
    let ok_n = dialer.connected.get();
    eprintln!(
        "[chat {}] {ok_n}/{n} conversations set up in {:.1}s ({} failed{})",
        a.label,
        t0.elapsed().as_secs_f64(),
        dialer.failed.get(),
        dialer
            .first_error
            .borrow()
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    if ok_n < n {
        bail!("only {ok_n} of {n} conversations were set up");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ctx = Ctx {
        a: &a,
        shared: &shared,
        phase: &phase_tx,
    };
    if a.sweep {
        let cfg = SweepCfg {
            start: a.rate,
            factor: a.factor,
            max_steps: a.max_steps,
            refine: a.refine,
            retries: a.retries,
        };
        let mut idx = 0;
        let result = sweep::sweep(cfg, |rate| {
            idx += 1;
            ctx.step(rate, idx)
        })
        .await;
        let best = result.best.as_ref();
        let limited = result
            .first_bad
            .as_ref()
            .map_or("max-steps".to_owned(), |b| b.why.clone());
        println!(
            "{}",
            json!({
                "scenario": "chat-sweep", "label": a.label, "conversations": n,
                "p99_limit_ms": a.p99_limit_ms,
                "capacity_stored_per_s": best.map_or(0.0, |b| b.throughput),
                "capacity_rate": best.map_or(0.0, |b| b.rate),
                "capacity_ack_p99_ms": best.map_or(0.0, |b| b.p99_ms),
                "capacity_loadgen_cpu_pct": best.map_or(0.0, |b| b.loadgen_cpu_pct),
                "first_bad_rate": result.first_bad.as_ref().map(|b| b.rate),
                "first_bad_loadgen_cpu_pct": result.first_bad.as_ref().map(|b| b.loadgen_cpu_pct),
                "limited_by": limited,
            })
        );
        eprintln!(
            "[chat {}] capacity {:.0} stored msgs/s with ack p99 ≤ {} ms; limited by: {limited}",
            a.label,
            best.map_or(0.0, |b| b.throughput),
            a.p99_limit_ms
        );
    } else {
        // A fixed-rate run is repeated (up to 3 times) while other processes disturb it.
        for attempt in 1..=4 {
            let s = ctx.step(a.rate, attempt).await;
            if !s.disturbed || attempt == 4 {
                break;
            }
            eprintln!(
                "[{}] disturbed by other processes; running it again",
                a.label
            );
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }
    Ok(())
}

struct Ctx<'a> {
    a: &'a Args,
    shared: &'a Shared,
    phase: &'a watch::Sender<Phase>,
}

impl Ctx<'_> {
    async fn step(&self, rate: f64, idx: usize) -> Step {
        let (a, sh) = (self.a, self.shared);
        *sh.stats.borrow_mut() = StepStats {
            since_ns: now_ns(),
            ..StepStats::default()
        };
        sh.sends.reset();
        let start = Instant::now();
        let until = start + Duration::from_secs(a.duration);
        let cpu = CpuMeter::start();
        let server_cpu = PidMeter::start(a.server_pid);
        let backend_cpu: Vec<PidMeter> = a
            .backend_pid
            .iter()
            .map(|&p| PidMeter::start(Some(p)))
            .collect();
        let foreign = ForeignMeter::start(a.server_pid);
        self.phase.send_replace(Phase {
            rate_each: rate / a.conversations as f64,
            start,
            until,
        });
        tokio::time::sleep_until(until.into()).await;
        let cpu_pct = cpu.percent();
        let server_cpu_pct = server_cpu.percent();
        let backend_cpu_pct = (!backend_cpu.is_empty()).then(|| {
            backend_cpu
                .iter()
                .map(|m| m.percent().unwrap_or(0.0))
                .sum::<f64>()
        });
        let foreign_pct = foreign
            .percent()
            .map(|f| (f - backend_cpu_pct.unwrap_or(0.0)).max(0.0));
        let disturbed = foreign_pct.is_some_and(|f| f > sweep::DISTURBED_PCT);
        self.phase.send_replace(Phase::idle());
        let drain_end = Instant::now() + Duration::from_secs(10);
        let mut last = (0, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (acked, delivered) = {
                let s = sh.stats.borrow();
                (s.acked + s.ack_errors, s.delivered)
            };
            let sent = sh.sends.sent.get();
            if (acked >= sent && delivered >= sent) || Instant::now() >= drain_end {
                break;
            }
            if acked + delivered != last.0 {
                last = (acked + delivered, Instant::now());
            } else if last.1.elapsed() >= Duration::from_secs(1) {
                break;
            }
        }
        // Take the step's statistics; late arrivals land in a throw-away default.
        let s = std::mem::take(&mut *sh.stats.borrow_mut());
        let sent = sh.sends.sent.get();
        let secs = ((s.last_ack_ns.saturating_sub(s.since_ns)) as f64 / 1e9).max(a.duration as f64);
        let stored = s.acked as f64 / secs;
        let (ack, del) = (s.ack.summary(), s.delivery.summary());
        let missed = sh.sends.missed.get();
        let mut why = Vec::new();
        if ack.p99_ms > a.p99_limit_ms {
            why.push(format!(
                "ack p99 {:.1} ms > {} ms",
                ack.p99_ms, a.p99_limit_ms
            ));
        }
        if (s.acked as f64) < sent as f64 * 0.999 || (s.delivered as f64) < sent as f64 * 0.999 {
            why.push(format!(
                "behind (acked {} delivered {} of {sent})",
                s.acked, s.delivered
            ));
        }
        if s.ack_errors > 0 {
            why.push(format!(
                "{} ack errors ({})",
                s.ack_errors,
                s.first_error.clone().unwrap_or_default()
            ));
        }
        if missed > 0 || (sent as f64) < rate * a.duration as f64 * 0.98 {
            why.push(format!("loadgen behind (sent {sent}, CPU {cpu_pct:.0}%)"));
        }
        let ok = why.is_empty();
        println!(
            "{}",
            json!({
                "scenario": "chat", "label": a.label, "step": idx, "mode": if a.sweep { "sweep" } else { "fixed" },
                "conversations": a.conversations, "rate_per_s": rate, "duration_s": a.duration,
                "sent": sent, "acked": s.acked, "ack_errors": s.ack_errors,
                "delivered": s.delivered, "stored_per_s": stored,
                "ack_p50_ms": ack.p50_ms, "ack_p99_ms": ack.p99_ms,
                "ack_p999_ms": ack.p999_ms, "ack_max_ms": ack.max_ms,
                "delivery_p50_ms": del.p50_ms, "delivery_p99_ms": del.p99_ms,
                "delivery_p999_ms": del.p999_ms, "delivery_max_ms": del.max_ms,
                "loadgen_cpu_pct": cpu_pct, "server_cpu_pct": server_cpu_pct, "backend_cpu_pct": backend_cpu_pct, "foreign_cpu_pct": foreign_pct, "disturbed": disturbed, "missed_tokens": missed,
                "agents_closed": sh.agents_closed.get(), "customers_closed": sh.sends.closed.get(),
                "ok": ok, "why": why.join("; "),
            })
        );
        eprintln!(
            "[chat {}] step {idx}: {:.0} msg/s → stored {:.0}/s | ack {} | agent delivery {} | loadgen CPU {:.0}% server CPU {} other {} {}",
            a.label,
            rate,
            stored,
            ack.line(),
            del.line(),
            cpu_pct,
            server_cpu_pct.map_or("-".to_owned(), |c| format!("{c:.0}%")),
            foreign_pct.map_or("-".to_owned(), |c| format!("{c:.0}%")),
            if ok { "OK".to_owned() } else { format!("FAIL: {}", why.join("; ")) }
        );
        tokio::time::sleep(Duration::from_millis(if ok { 500 } else { 3000 })).await;
        Step {
            rate,
            ok,
            throughput: stored,
            p99_ms: ack.p99_ms,
            loadgen_cpu_pct: cpu_pct,
            why: why.join("; "),
            disturbed,
        }
    }
}
