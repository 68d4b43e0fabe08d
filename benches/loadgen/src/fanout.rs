//! `fanout`: R rooms × M members; P of the members publish `42["pub",{"t":..,"p":".."}]` at a
//! fixed total rate and every member (publishers included) records the latency of each `msg` it
//! receives. One step = publish for `--duration` seconds, then drain; `--sweep` raises the rate
//! until p99 > `--p99-limit-ms` or deliveries fall behind and reports the capacity.
//!
//! Several servers (`--url A --url B`: the nodes of one cluster): every room's members are
//! spread evenly over them, and publishers connect to the first only — "publisher on node A,
//! members on A and B". Latency is the same either way: the publisher's send time, stamped in
//! the payload by this process's clock, against the receive time.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;
use tokio::sync::watch;

use crate::client::{auto_source_ips, encode_event, Dialer, SioClient, SioPacket, Target};
use crate::clock::now_ns;
use crate::cpu::{CpuMeter, ForeignMeter, PidsSample};
use crate::histogram::Latency;
use crate::publisher::{self, Phase, SendCounters};
use crate::sweep::{self, Step, SweepCfg};

/// `fanout` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server URL; repeat it for the nodes of a cluster: each room's members are spread evenly
    /// over the URLs (in turn), publishers connect to the first URL only.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: Vec<String>,
    /// Rooms.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Members (connections) per room.
    #[arg(long, default_value_t = 50)]
    members: usize,
    /// Publishing members, spread over the rooms.
    #[arg(long, default_value_t = 100)]
    publishers: usize,
    /// Publishes per second, all publishers together (each is delivered to `members` sockets).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds per step.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Padding characters in each payload.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// Raise the rate step by step from `--rate` and report the capacity.
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
    /// A step fails when its delivery p99 exceeds this.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Concurrent connection handshakes.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Spread the connection attempts evenly over this many seconds. With the servers'
    /// pingInterval (25 s) this spreads the heartbeats too, instead of pinging every socket in
    /// the same instant every 25 s (which stalls every server for ~100 ms with 5,000 sockets).
    #[arg(long, default_value_t = 0.0)]
    connect_spread: f64,
    /// Loopback source addresses to spread connections over (0 = as needed).
    #[arg(long, default_value_t = 0)]
    source_ips: usize,
    /// Also report, per second of each step, the deliveries, the max latency and how many took
    /// more than 10 ms (finds periodic stalls).
    #[arg(long)]
    timeline: bool,
    /// Pid of the server under test, repeatable (one per node): their CPU use (summed; user
    /// and kernel apart; per delivery) is reported next to each step.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Pids of the backends the servers work with (Redis), repeatable: their CPU use (summed;
    /// per delivery) is reported next to each step and not counted as other processes
    /// disturbing the run.
    #[arg(long)]
    backend_pid: Vec<u32>,
    /// Name of the server under test, copied into the JSON results.
    #[arg(long, default_value = "server")]
    label: String,
}

/// Receive-side statistics of one step.
#[derive(Debug, Default)]
struct StepStats {
    since_ns: u64,
    latency: Latency,
    received: u64,
    stale: u64,
    last_ns: u64,
    /// Per second since `since_ns`: (deliveries, max latency ns, deliveries over 10 ms).
    per_sec: Vec<(u64, u64, u64)>,
    /// Per second since `since_ns`: the loadgen's own worst event-loop lag, ns (a 1 ms ticker's
    /// lateness), to tell loadgen stalls from server stalls.
    lag_per_sec: Vec<u64>,
    /// Deliveries by the index of the URL the receiving socket is connected to.
    received_by_url: Vec<u64>,
}

#[derive(Debug, Default)]
struct Shared {
    stats: RefCell<StepStats>,
    sends: SendCounters,
    recv_closed: Cell<u64>,
    bad_packets: Cell<u64>,
}

#[derive(serde::Deserialize)]
struct Stamp {
    t: u64,
}

impl Shared {
    /// A packet received by a socket connected to URL number `url`.
    fn on_packet(&self, p: &SioPacket, url: usize) {
        let now = now_ns();
        let stamp = match p.decode() {
            Ok(pk) => match pk.payload {
                livechat_gateway::socketio::packet::Payload::Event { name, args }
                    if name == "msg" =>
                {
                    args.first()
                        .and_then(|a| serde_json::from_str::<Stamp>(a.get()).ok())
                }
                _ => return,
            },
            Err(_) => None,
        };
        let Some(Stamp { t }) = stamp else {
            self.bad_packets.set(self.bad_packets.get() + 1);
            return;
        };
        let mut s = self.stats.borrow_mut();
        if t < s.since_ns {
            s.stale += 1;
            return;
        }
        let lat = now.saturating_sub(t);
        s.latency.record_ns(lat);
        s.received += 1;
        if s.received_by_url.len() <= url {
            s.received_by_url.resize(url + 1, 0);
        }
        s.received_by_url[url] += 1;
        s.last_ns = now;
        let sec = ((now - s.since_ns) / 1_000_000_000) as usize;
        if sec < 600 {
            if s.per_sec.len() <= sec {
                s.per_sec.resize(sec + 1, (0, 0, 0));
            }
            let e = &mut s.per_sec[sec];
            e.0 += 1;
            e.1 = e.1.max(lat);
            e.2 += u64::from(lat > 10_000_000);
        }
    }
}

/// Runs the scenario; prints JSON results on stdout and a summary on stderr.
pub async fn run(a: Args) -> Result<()> {
    let targets = a
        .url
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<Vec<_>>>()?;
    let n = a.rooms * a.members;
    if a.publishers == 0 || a.publishers > n {
        bail!("--publishers must be 1..=rooms×members ({n})");
    }
    let url_of = place(n, a.rooms, a.publishers, targets.len());
    let mut per_url = vec![0usize; targets.len()];
    for &u in &url_of {
        per_url[u] += 1;
    }
    let k = if a.source_ips == 0 {
        auto_source_ips(n)
    } else {
        a.source_ips
    };
    let shared = Rc::new(Shared::default());
    let dialer = Rc::new(Dialer::new(a.connect_concurrency, Duration::from_secs(30)));
    let (phase_tx, phase_rx) = watch::channel(Phase::idle());
    let pad = "x".repeat(a.payload_bytes);
    let publishers = a.publishers;
    let t0 = Instant::now();
    for (i, &url) in url_of.iter().enumerate() {
        let room = format!("room=r{}", i % a.rooms);
        let (target, dialer, shared) = (targets[url].clone(), dialer.clone(), shared.clone());
        let src = target.source_ip(i, k);
        let rx = (i < a.publishers).then(|| phase_rx.clone());
        let pad = pad.clone();
        let at = t0 + Duration::from_secs_f64(a.connect_spread * i as f64 / n as f64);
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(at.into()).await;
            let Some(client) = dialer.run(SioClient::connect(&target, &room, src)).await else {
                return;
            };
            match rx {
                Some(rx) => {
                    let make =
                        |ts| encode_event("pub", None, &format!(r#"{{"t":{ts},"p":"{pad}"}}"#));
                    let offset = i as f64 / publishers as f64;
                    let on_packet = |p: &SioPacket| shared.on_packet(p, url);
                    let _ =
                        publisher::run(client, rx, offset, &shared.sends, make, on_packet).await;
                }
                None => receive(client, &shared, url).await,
            }
        });
    }
    drop(phase_rx);
    dialer
        .wait_for(n, Duration::from_secs_f64(180.0 + a.connect_spread))
        .await;
    let connected = dialer.connected.get();
    eprintln!(
        "[fanout {}] {connected}/{n} connected in {:.1}s over {} URL(s) ({per_url:?} each; publishers on {}) ({} failed{})",
        a.label,
        t0.elapsed().as_secs_f64(),
        targets.len(),
        a.url[0],
        dialer.failed.get(),
        dialer
            .first_error
            .borrow()
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    if connected < n {
        bail!("only {connected} of {n} connections succeeded");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    if a.timeline {
        tokio::task::spawn_local(lag_ticker(shared.clone()));
    }

    let ctx = Ctx {
        a: &a,
        shared: &shared,
        phase: &phase_tx,
        per_url: &per_url,
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
        let out = json!({
            "scenario": "fanout-sweep", "label": a.label, "connections": n,
            "urls": a.url.len(), "connections_by_url": per_url,
            "rooms": a.rooms, "members": a.members, "publishers": a.publishers,
            "capacity_per_s": best.map_or(0.0, |b| b.throughput),
            "capacity_pub_rate": best.map_or(0.0, |b| b.rate),
            "capacity_p99_ms": best.map_or(0.0, |b| b.p99_ms),
            "capacity_loadgen_cpu_pct": best.map_or(0.0, |b| b.loadgen_cpu_pct),
            "first_bad_rate": result.first_bad.as_ref().map(|b| b.rate),
            "first_bad_loadgen_cpu_pct": result.first_bad.as_ref().map(|b| b.loadgen_cpu_pct),
            "limited_by": limited,
            "steps": result.steps.len(),
        });
        println!("{out}");
        eprintln!(
            "[fanout {}] capacity {:.0} delivered msgs/s at p99 {:.2} ms (loadgen CPU {:.0}%); limited by: {limited}",
            a.label,
            best.map_or(0.0, |b| b.throughput),
            best.map_or(0.0, |b| b.p99_ms),
            best.map_or(0.0, |b| b.loadgen_cpu_pct),
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

/// Measures how late a 1 ms ticker fires: the loadgen's own event-loop lag.
async fn lag_ticker(shared: Rc<Shared>) {
    let mut due = Instant::now();
    loop {
        due += Duration::from_millis(1);
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        let lag = u64::try_from(now.saturating_duration_since(due).as_nanos()).unwrap_or(0);
        let mut s = shared.stats.borrow_mut();
        let sec = (now_ns().saturating_sub(s.since_ns) / 1_000_000_000) as usize;
        if sec < 600 {
            if s.lag_per_sec.len() <= sec {
                s.lag_per_sec.resize(sec + 1, 0);
            }
            s.lag_per_sec[sec] = s.lag_per_sec[sec].max(lag);
        }
        drop(s);
        if now > due + Duration::from_millis(50) {
            due = now; // do not replay missed ticks after a long stall
        }
    }
}

/// Which URL each connection goes to: publishers (the first `publishers` connections, room
/// `i % rooms`) to the first; every other member to the URL with the fewest members of its
/// room so far (the lowest on ties). With one publisher per room this is plain round-robin
/// within each room: member m of a room on URL m mod k.
fn place(n: usize, rooms: usize, publishers: usize, urls: usize) -> Vec<usize> {
    let mut count = vec![vec![0usize; urls]; rooms];
    let mut out = vec![0usize; n];
    for i in 0..publishers.min(n) {
        count[i % rooms][0] += 1;
    }
    for (i, slot) in out.iter_mut().enumerate().skip(publishers) {
        let c = &mut count[i % rooms];
        let u = (0..urls).min_by_key(|&u| (c[u], u)).unwrap_or(0);
        c[u] += 1;
        *slot = u;
    }
    out
}

async fn receive(mut client: SioClient, shared: &Shared, url: usize) {
    loop {
        match client.recv().await {
            Ok(Some(p)) => shared.on_packet(&p, url),
            _ => {
                shared.recv_closed.set(shared.recv_closed.get() + 1);
                return;
            }
        }
    }
}

struct Ctx<'a> {
    a: &'a Args,
    shared: &'a Shared,
    phase: &'a watch::Sender<Phase>,
    /// Connections per URL.
    per_url: &'a [usize],
}

impl Ctx<'_> {
    /// One fixed-rate step: publish for `duration`, drain, report.
    async fn step(&self, rate: f64, idx: usize) -> Step {
        let a = self.a;
        let sh = self.shared;
        let members = a.members as u64;
        *sh.stats.borrow_mut() = StepStats {
            since_ns: now_ns(),
            ..StepStats::default()
        };
        sh.sends.reset();
        let start = Instant::now();
        let until = start + Duration::from_secs(a.duration);
        let cpu = CpuMeter::start();
        let server0 = PidsSample::take(&a.server_pid);
        let backend0 = PidsSample::take(&a.backend_pid);
        let excluded: Vec<u32> = a.server_pid.iter().chain(&a.backend_pid).copied().collect();
        let foreign = ForeignMeter::start_excluding(&excluded);
        self.phase.send_replace(Phase {
            rate_each: rate / a.publishers as f64,
            start,
            until,
        });
        tokio::time::sleep_until(until.into()).await;
        let cpu_pct = cpu.percent();
        let window = start.elapsed().as_secs_f64();
        let (server1, backend1) = (
            PidsSample::take(&a.server_pid),
            PidsSample::take(&a.backend_pid),
        );
        let pct = |d: Duration| d.as_secs_f64() / window * 100.0;
        let server_w = server1.sum_since(&server0);
        let backend_w = backend1.sum_since(&backend0);
        let server_cpu_pct = server_w.map(|t| pct(t.total()));
        let server_node_pct: Vec<Option<f64>> = server1
            .per_pid_since(&server0)
            .iter()
            .map(|t| t.map(|t| pct(t.total())))
            .collect();
        let foreign_pct = foreign.percent();
        let disturbed = foreign_pct.is_some_and(|f| f > sweep::DISTURBED_PCT);
        self.phase.send_replace(Phase::idle());
        // Drain: until everything arrived, nothing arrived for 1 s, or 10 s passed.
        let drain_end = Instant::now() + Duration::from_secs(10);
        let mut last = (sh.stats.borrow().received, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let got = sh.stats.borrow().received;
            let expected = sh.sends.sent.get() * members;
            if got >= expected || Instant::now() >= drain_end {
                break;
            }
            if got != last.0 {
                last = (got, Instant::now());
            } else if last.1.elapsed() >= Duration::from_secs(1) {
                break;
            }
        }
        // Take the step's statistics; late arrivals land in a throw-away default.
        let s = std::mem::take(&mut *sh.stats.borrow_mut());
        // CPU per delivery: from the step's start to the end of the drain (the deliveries of
        // everything published in the step) over the deliveries counted.
        let per_delivery = |before: &PidsSample, pids: &[u32]| {
            let t = PidsSample::take(pids).sum_since(before)?;
            let n = s.received.max(1) as f64;
            Some((
                t.total().as_secs_f64() * 1e6 / n,
                t.user.as_secs_f64() * 1e6 / n,
                t.sys.as_secs_f64() * 1e6 / n,
            ))
        };
        let server_pd = per_delivery(&server0, &a.server_pid);
        let backend_pd = per_delivery(&backend0, &a.backend_pid);
        let sent = sh.sends.sent.get();
        let expected = sent * members;
        let secs = ((s.last_ns.saturating_sub(s.since_ns)) as f64 / 1e9).max(a.duration as f64);
        let delivered = s.received as f64 / secs;
        let lat = s.latency.summary();
        let missed = sh.sends.missed.get();
        let offered_sent = rate * a.duration as f64;
        let mut why = Vec::new();
        if lat.p99_ms > a.p99_limit_ms {
            why.push(format!("p99 {:.1} ms > {} ms", lat.p99_ms, a.p99_limit_ms));
        }
        if (s.received as f64) < expected as f64 * 0.999 {
            why.push(format!("deliveries behind ({} of {expected})", s.received));
        }
        if missed > 0 || (sent as f64) < offered_sent * 0.98 {
            why.push(format!(
                "loadgen behind (sent {sent} of {offered_sent:.0}, CPU {cpu_pct:.0}%)"
            ));
        }
        let closed = sh.sends.closed.get() + sh.recv_closed.get();
        if closed > 0 {
            why.push(format!("{closed} connections closed"));
        }
        let ok = why.is_empty();
        if a.timeline {
            for (i, (n, max, slow)) in s.per_sec.iter().enumerate() {
                let lag = s.lag_per_sec.get(i).copied().unwrap_or(0);
                eprintln!(
                    "[fanout {}]   second {i:>3}: {n:>7} delivered, max {:>7.2} ms, {slow:>6} over 10 ms; loadgen lag max {:>6.2} ms",
                    a.label,
                    *max as f64 / 1e6,
                    lag as f64 / 1e6
                );
            }
        }
        let mut out = json!({
            "scenario": "fanout", "label": a.label, "step": idx, "mode": if a.sweep { "sweep" } else { "fixed" },
            "connections": a.rooms * a.members, "rooms": a.rooms, "members": a.members,
            "publishers": a.publishers, "payload_bytes": a.payload_bytes,
            "rate_pub_per_s": rate, "offered_per_s": rate * a.members as f64,
            "duration_s": a.duration, "sent": sent, "expected": expected,
            "received": s.received, "stale": s.stale, "delivered_per_s": delivered,
            "p50_ms": lat.p50_ms, "p99_ms": lat.p99_ms, "p999_ms": lat.p999_ms,
            "max_ms": lat.max_ms, "loadgen_cpu_pct": cpu_pct, "server_cpu_pct": server_cpu_pct, "foreign_cpu_pct": foreign_pct, "disturbed": disturbed, "missed_tokens": missed,
            "bad_packets": sh.bad_packets.get(), "closed": closed,
            "ok": ok, "why": why.join("; "),
        });
        // Several nodes and backends (a second object: one `json!` this size overflows the
        // macro recursion limit).
        let cluster = json!({
            "urls": a.url.len(), "connections_by_url": self.per_url, "received_by_url": s.received_by_url,
            "server_pids": a.server_pid.len(), "server_cpu_by_node_pct": server_node_pct,
            "server_user_pct": server_w.map(|t| pct(t.user)), "server_sys_pct": server_w.map(|t| pct(t.sys)),
            "server_us_per_delivery": server_pd.map(|d| d.0), "server_user_us_per_delivery": server_pd.map(|d| d.1), "server_sys_us_per_delivery": server_pd.map(|d| d.2),
            "backend_cpu_pct": backend_w.map(|t| pct(t.total())),
            "backend_user_pct": backend_w.map(|t| pct(t.user)), "backend_sys_pct": backend_w.map(|t| pct(t.sys)),
            "backend_us_per_delivery": backend_pd.map(|d| d.0), "backend_user_us_per_delivery": backend_pd.map(|d| d.1), "backend_sys_us_per_delivery": backend_pd.map(|d| d.2),
        });
        if let (Some(o), serde_json::Value::Object(c)) = (out.as_object_mut(), cluster) {
            o.extend(c);
        }
        println!("{out}");
        let backend = match (backend_w, backend_pd) {
            (Some(t), Some(d)) => format!(
                " backend CPU {:.0}% ({:.2} µs/delivery)",
                pct(t.total()),
                d.0
            ),
            _ => String::new(),
        };
        let per_node = if server_node_pct.len() > 1 {
            let each: Vec<String> = server_node_pct
                .iter()
                .map(|p| p.map_or("-".to_owned(), |p| format!("{p:.0}")))
                .collect();
            format!(" [{}]", each.join("+"))
        } else {
            String::new()
        };
        let server = match (server_w, server_pd) {
            (Some(t), Some(d)) => format!(
                "{:.0}%{per_node} (user {:.2} + sys {:.2} µs/delivery)",
                pct(t.total()),
                d.1,
                d.2
            ),
            _ => "-".to_owned(),
        };
        eprintln!(
            "[fanout {}] step {idx}: {:.0} pub/s → offered {:.0}/s delivered {:.0}/s, {} | loadgen CPU {:.0}% server CPU {server}{backend} other {} {}",
            a.label,
            rate,
            rate * a.members as f64,
            delivered,
            lat.line(),
            cpu_pct,
            foreign_pct.map_or("-".to_owned(), |c| format!("{c:.0}%")),
            if ok { "OK".to_owned() } else { format!("FAIL: {}", why.join("; ")) }
        );
        // Let a backlog clear before the next step (it is also excluded by timestamp).
        tokio::time::sleep(Duration::from_millis(if ok { 500 } else { 3000 })).await;
        Step {
            rate,
            ok,
            throughput: delivered,
            p99_ms: lat.p99_ms,
            loadgen_cpu_pct: cpu_pct,
            why: why.join("; "),
            disturbed,
        }
    }
}
