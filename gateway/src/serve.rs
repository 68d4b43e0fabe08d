//! Running a gateway in the foreground until SIGINT or SIGTERM, and draining on the way out.
//!
//! SIGTERM (what orchestrators send before they stop a node): `/readyz` answers 503 at once,
//! the node keeps serving for `drain_delay` so balancers notice and send new clients elsewhere,
//! then it stops accepting, closes every Engine.IO session (clients see their transport close
//! and reconnect — through the balancer, to another node — resuming with `lastSeq`), lets
//! in-flight requests finish for at most `close_wait`, and returns. SIGINT (Ctrl-C at a
//! terminal) does the same without the delay. A second signal of either kind exits at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::runtime::{self, AppFactory};

/// Starts the executors, prints `listening on http://ADDR` for every bound address once they
/// accept connections, and returns after a clean shutdown on SIGINT/SIGTERM: when the first
/// signal arrived (the caller's remaining shutdown budget runs from there).
pub fn serve_until_signal(
    cfg: GatewayConfig,
    app: Arc<dyn AppFactory>,
) -> Result<Instant, GatewayError> {
    // Register before starting, so a signal during start-up is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let drain_delay = cfg.drain_delay;
    let mut running = runtime::run(cfg, app)?;
    for addr in &running.addrs {
        println!("listening on http://{addr}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let first = signals.forever().next();
    let signalled = Instant::now();
    running.health.begin_drain();
    // From here on, a second signal means "now": the operator (or the orchestrator's kill
    // timer) does not want to wait for the drain.
    std::thread::Builder::new()
        .name("livechat-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::warn!(signal = sig, "second signal: exiting without draining");
                std::process::exit(128 + sig);
            }
        })?;
    let delay = if first == Some(SIGTERM) {
        drain_delay
    } else {
        Duration::ZERO
    };
    tracing::info!(
        signal = first,
        drain_delay = ?delay,
        "draining: /readyz answers 503; new connections are accepted until the delay is over"
    );
    std::thread::sleep(delay);
    tracing::info!(
        "shutting down: no new connections, sessions closed, in-flight requests finishing"
    );
    running.stop();
    let counters = running.counters.snapshot();
    running.wait()?;
    tracing::info!(?counters, "stopped");
    Ok(signalled)
}
