//! Running a gateway in the foreground until SIGINT or SIGTERM.

use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::runtime::{self, AppFactory};

/// Starts the executors, prints `listening on http://ADDR` for every bound address once they
/// accept connections, and returns after a clean shutdown on SIGINT/SIGTERM.
pub fn serve_until_signal(
    cfg: GatewayConfig,
    app: Arc<dyn AppFactory>,
) -> Result<(), GatewayError> {
    // Register before starting, so a signal during start-up is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let mut running = runtime::run(cfg, app)?;
    for addr in &running.addrs {
        println!("listening on http://{addr}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "shutting down");
    }
    running.stop();
    let counters = running.counters.snapshot();
    running.wait()?;
    tracing::info!(?counters, "stopped");
    Ok(())
}
