//! Test-only failpoints in the cross-slot commit: with `LIVECHAT_FAILPOINT=<name>` in its
//! environment the process aborts — like `kill -9`: no lock given back, no undo, no flush —
//! when it reaches the named point. Tests (`tests/js/test/redis-faults.test.mjs`) use it to
//! show that a node dying between the steps of a multi-slot step leaves nothing half-done:
//! the conversation lock's lease expires and the housekeeping scan repairs the residue.
//!
//! Points: `after-claim` (an agent slot is claimed, the conversation not yet changed) and
//! `after-decision` (the conversation changed, the queue entry and released slots not yet
//! updated). Unset, as in production, a point costs one read of a cached value.

use std::sync::OnceLock;

/// The armed point, read once from the environment.
fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("LIVECHAT_FAILPOINT").ok())
        .as_deref()
}

/// Aborts the process when `name` is the armed failpoint.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("failpoint {name}: aborting (LIVECHAT_FAILPOINT)");
        std::process::abort();
    }
}
