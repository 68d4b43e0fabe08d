//! A periodic timer per executor that bounds how long glommio 0.9 can leave a woken task
//! unrun while the executor sleeps.
//!
//! The glommio bug: `LocalExecutor::run` loops `poll_io` (which arms the preemption timer,
//! 5 ms here) → `run_task_queues` → park when that returned `false`. But `run_task_queues`
//! also returns `false` when `need_preempt()` is already true on its very first check — the
//! preemption timer expired (the thread was descheduled for more than 5 ms right after arming
//! it, which a loaded machine does often) or some other latency-ring completion arrived — so
//! it ran nothing. The loop then takes "nothing ran" for "nothing to run": `spin_poll_io`
//! reaps the timer's completion, which wakes no task, and `park()` sleeps in `io_uring_enter`
//! with tasks in the run queue. Nothing wakes the executor until unrelated I/O or a user
//! timer comes due: an accepted connection whose request is never read, a WebSocket frame
//! never read (the 10 s stalls of `ws_churn_soak`), any wake-up at all can be delayed that way.
//! Fixed upstream ("do not park the executor while a task queue is still runnable"); not in
//! 0.9, and the registry source cannot be patched here.
//!
//! The only thing user code can do about it is make sure a user timer is always pending: a
//! parking executor then sleeps at most until that timer, whose firing counts as a wake-up
//! (so it does not sleep again) and the next loop runs everything queued. So each executor
//! keeps one timer of [`PERIOD`] going: a stall lasts at most that long instead of until the
//! next client byte. Cost: one timer and one tiny task per executor, [`PERIOD`]⁻¹ wake-ups a
//! second when idle; nothing per connection or per message. Remove it once glommio has the fix.

use std::rc::Weak;
use std::time::Duration;

/// Longest a runnable task can wait on a sleeping executor.
pub const PERIOD: Duration = Duration::from_millis(50);

/// Starts the executor's timer; it stops once `owner` (the executor's long-lived context) is
/// dropped. Call once per executor, from inside it.
pub fn start<T: 'static>(owner: Weak<T>) {
    glommio::spawn_local(async move {
        while owner.strong_count() > 0 {
            glommio::timer::sleep(PERIOD).await;
        }
    })
    .detach();
}
