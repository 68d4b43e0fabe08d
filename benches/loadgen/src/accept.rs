//! `accept` (livechat only): Q queued conversations; for each, A agents race to accept it with
//! concurrent REST requests. Reports the accept latency histogram, status counts, and checks
//! that every conversation has exactly one winner (and that the stored agent is that winner).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::json;

use crate::client::Target;
use crate::clock::now_ns;
use crate::cpu::CpuMeter;
use crate::histogram::Latency;
use crate::http::HttpConn;

/// `accept` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server URL (`livechat serve`). Repeat it for several nodes sharing one Redis: agent `j`
    /// talks to node `j % nodes`, conversations are created on the first.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: Vec<String>,
    /// Agents racing for each conversation (one keep-alive connection each).
    #[arg(long, default_value_t = 16)]
    agents: usize,
    /// Queued conversations.
    #[arg(long, default_value_t = 500)]
    conversations: usize,
    /// Name of the server under test, copied into the JSON results.
    #[arg(long, default_value = "livechat")]
    label: String,
}

#[derive(Deserialize)]
struct Meta {
    id: String,
    agent: Option<Agent>,
}

#[derive(Deserialize)]
struct Agent {
    id: String,
}

/// Runs the scenario.
pub async fn run(a: Args) -> Result<()> {
    let targets = a
        .url
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<Vec<_>>>()?;
    let t = &targets[0];
    let mut setup = HttpConn::connect(t.addr, &t.host).await?;
    let mut ids = Vec::with_capacity(a.conversations);
    let t0 = Instant::now();
    for i in 0..a.conversations {
        let who = format!("acc-c{i}-{}", now_ns());
        let r = setup
            .request(
                "POST",
                "/api/conversations",
                &[("X-Participant-Id", &who)],
                Some(r#"{"channel":"web"}"#),
            )
            .await?;
        if r.status != 200 {
            bail!("create: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        let meta: Meta = serde_json::from_slice(&r.body).context("create response")?;
        let r = setup
            .request(
                "POST",
                &format!("/api/conversations/{}/queue", meta.id),
                &[],
                Some("{}"),
            )
            .await?;
        if r.status != 200 {
            bail!("queue: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        ids.push(meta.id);
    }
    eprintln!(
        "[accept {}] {} conversations created and queued in {:.1}s",
        a.label,
        ids.len(),
        t0.elapsed().as_secs_f64()
    );
    let mut agents = Vec::with_capacity(a.agents);
    for j in 0..a.agents {
        let t = &targets[j % targets.len()];
        agents.push(HttpConn::connect(t.addr, &t.host).await?);
    }
    let mut latency = Latency::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut violations = Vec::new();
    let cpu = CpuMeter::start();
    let race_start = Instant::now();
    for id in &ids {
        let path = format!("/api/agent/conversations/{id}/accept");
        let results = join_all(agents.iter_mut().enumerate().map(|(j, c)| {
            let body = format!(r#"{{"agentId":"ag{j}"}}"#);
            let path = path.clone();
            async move {
                let t = Instant::now();
                let r = c.request("POST", &path, &[], Some(&body)).await;
                (j, r.map(|r| r.status), t.elapsed())
            }
        }))
        .await;
        let mut winners = Vec::new();
        for (j, status, took) in results {
            let status = status?;
            latency.record_ns(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
            *statuses.entry(status).or_default() += 1;
            if status == 200 {
                winners.push(format!("ag{j}"));
            }
        }
        let r = setup
            .request("GET", &format!("/api/conversations/{id}"), &[], None)
            .await?;
        let stored = serde_json::from_slice::<Meta>(&r.body)
            .ok()
            .and_then(|m| m.agent)
            .map(|a| a.id);
        if winners.len() != 1 || stored.as_deref() != winners.first().map(String::as_str) {
            violations.push(format!(
                "{id}: winners {winners:?}, stored agent {stored:?}"
            ));
        }
    }
    let race_s = race_start
        .elapsed()
        .as_secs_f64()
        .max(Duration::from_millis(1).as_secs_f64());
    let requests: u64 = statuses.values().sum();
    let lat = latency.summary();
    let out = json!({
        "scenario": "accept", "label": a.label, "agents": a.agents, "nodes": targets.len(),
        "conversations": ids.len(), "requests": requests,
        "accepts_per_s": requests as f64 / race_s,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "violations": violations.len(), "first_violations": violations.iter().take(5).collect::<Vec<_>>(),
        "p50_ms": lat.p50_ms, "p99_ms": lat.p99_ms, "p999_ms": lat.p999_ms, "max_ms": lat.max_ms,
        "loadgen_cpu_pct": cpu.percent(),
    });
    println!("{out}");
    eprintln!(
        "[accept {}] {requests} accepts ({:?}) in {race_s:.1}s: {} | single-winner violations: {}",
        a.label,
        statuses,
        lat.line(),
        violations.len()
    );
    Ok(())
}
