//! Capacity sweeps: run steps at a rising offered rate (×`factor`) until one fails (p99 over
//! the limit, or deliveries falling behind), then bisect (geometric mean) between the last good
//! and the first bad rate a few times. Capacity = the highest throughput of a good step below
//! the first (confirmed) failure.

use std::future::Future;

/// Outcome of one fixed-rate step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Offered rate of the step (scenario units: publishes/s or messages/s).
    pub rate: f64,
    /// p99 within the limit and nothing lost or late.
    pub ok: bool,
    /// Achieved throughput (delivered msgs/s for fan-out, stored msgs/s for chat).
    pub throughput: f64,
    /// p99 latency of the step's criterion, ms.
    pub p99_ms: f64,
    /// Loadgen CPU over the step, % of one core.
    pub loadgen_cpu_pct: f64,
    /// Why the step failed (empty when ok).
    pub why: String,
    /// Other processes used more than [`DISTURBED_PCT`] of a core during the step.
    pub disturbed: bool,
}

/// Foreign CPU use (% of one core) above which a step counts as disturbed by other jobs.
pub const DISTURBED_PCT: f64 = 10.0;

/// Most re-runs of a step that failed while other jobs were using the machine.
const DISTURBED_RERUNS: usize = 3;

/// Runs one step; a failing step that other processes disturbed is run again (after a pause)
/// up to [`DISTURBED_RERUNS`] times. Every run is kept in `steps`.
pub async fn run_undisturbed<F, Fut>(rate: f64, run: &mut F, steps: &mut Vec<Step>) -> Step
where
    F: FnMut(f64) -> Fut,
    Fut: Future<Output = Step>,
{
    let mut s = run(rate).await;
    steps.push(s.clone());
    for _ in 0..DISTURBED_RERUNS {
        if s.ok || !s.disturbed {
            break;
        }
        eprintln!("[sweep] step at {rate:.0}/s disturbed by other processes; running it again");
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        s = run(rate).await;
        steps.push(s.clone());
    }
    s
}

/// Sweep parameters.
#[derive(Debug, Clone, Copy)]
pub struct SweepCfg {
    /// First rate.
    pub start: f64,
    /// Multiplier between steps.
    pub factor: f64,
    /// Most rising steps.
    pub max_steps: usize,
    /// Bisection steps after the first failure.
    pub refine: usize,
    /// A failing rising step is run again this many times before it counts as failed (one-off
    /// stalls on a shared machine should not end the sweep).
    pub retries: usize,
}

/// Result of a sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The good step with the highest throughput.
    pub best: Option<Step>,
    /// The first failing step (what limited the sweep).
    pub first_bad: Option<Step>,
    /// Every step in order.
    pub steps: Vec<Step>,
}

/// Runs the sweep; `run(rate)` performs one step.
pub async fn sweep<F, Fut>(cfg: SweepCfg, mut run: F) -> Sweep
where
    F: FnMut(f64) -> Fut,
    Fut: Future<Output = Step>,
{
    let mut steps = Vec::new();
    let mut good: Option<Step> = None;
    let mut bad: Option<Step> = None;
    let mut rate = cfg.start;
    for _ in 0..cfg.max_steps {
        let mut s = run_undisturbed(rate, &mut run, &mut steps).await;
        for _ in 0..cfg.retries {
            if s.ok {
                break;
            }
            s = run_undisturbed(rate, &mut run, &mut steps).await;
        }
        if s.ok {
            good = Some(s);
            rate *= cfg.factor;
        } else {
            bad = Some(s);
            break;
        }
    }
    let first_bad = bad.clone();
    if let Some(mut g) = good.clone() {
        for _ in 0..cfg.refine {
            let Some(b) = bad.clone() else { break };
            let s = run_undisturbed((g.rate * b.rate).sqrt(), &mut run, &mut steps).await;
            if s.ok {
                g = s;
            } else {
                bad = Some(s);
            }
        }
    }
    let limit = bad.as_ref().map_or(f64::INFINITY, |b| b.rate);
    let best = steps
        .iter()
        .filter(|s| s.ok && s.rate < limit)
        .max_by(|a, b| a.throughput.total_cmp(&b.throughput))
        .cloned();
    Sweep {
        best,
        first_bad,
        steps,
    }
}
