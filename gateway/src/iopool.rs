//! The IO pool: one tokio runtime beside the glommio executors, running what needs tokio —
//! PostgreSQL (sqlx) and Kafka (rdkafka) — on its own few threads.
//!
//! Built in `main` before any executor starts: a runtime built inside an executor thread would
//! inherit that executor's CPU pinning, and its workers would compete with the executor for
//! the core. Executors never poll a tokio future (they have no tokio context); they reach the
//! services here over bounded flume channels and await a flume reply, which needs no runtime.
//!
//! Its threads run at a lower scheduling priority than the executors (`--io-nice`, a nice
//! increment applied to every thread the runtime starts, and inherited by the threads
//! librdkafka starts from them): where the IO threads share a core with an executor, a waking
//! executor preempts them at once instead of waiting out their time slice. The executors carry
//! the latency users see; the IO pool's work is batched (group commit, lingering producer) and
//! loses nothing by waiting a few milliseconds. Measured in BENCHMARKS.md ("PostgreSQL and
//! Kafka"). Under full contention the weights still give the pool a share (~10 % of a core at
//! the default increment of 10), so it is slowed, never starved.
//!
//! Shutdown is explicit, not "when the last sender is gone": [`IoPool::shutdown`] tells every
//! service to stop, and each drains what is already queued, flushes, and ends; the pool waits
//! for them (bounded). Waiting for the channels to close would wait for every executor's
//! engine to be dropped, which a process that is exiting need not do.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::GatewayError;

/// The tokio runtime for database and broker IO.
#[derive(Debug)]
pub struct IoPool {
    runtime: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
    services: Mutex<Vec<JoinHandle<()>>>,
}

/// A service's view of the pool's shutdown.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown begins.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Waits `pause`, or less if shutdown begins first.
    ///
    /// Why the sinks pause between bursts: an executor's `try_send` into a channel costs a
    /// mutex and a push, unless a receiver is parked on it — then it also wakes the IO
    /// thread (a futex call on the executor, two context switches). A sink that takes one
    /// event, waits again, and is woken for the next paid that per message (~15 µs of node
    /// CPU per stored message with Kafka on, benches/durable.sh). Pausing after each burst
    /// means nobody is parked while events gather: at most one wake-up per pause, whatever
    /// the rate. Only for sinks nobody waits on (analytics, activity touches).
    pub async fn pause(&mut self, pause: Duration) {
        if self.is_stopping() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.wait() => {}
        }
    }

    /// The next request of `rx`: waits for one until shutdown begins, then only takes what is
    /// already queued; `None` when there is nothing more to do.
    pub async fn next<T>(&mut self, rx: &flume::Receiver<T>) -> Option<T> {
        if self.is_stopping() {
            return rx.try_recv().ok();
        }
        tokio::select! {
            got = rx.recv_async() => got.ok(),
            _ = self.wait() => rx.try_recv().ok(),
        }
    }
}

impl IoPool {
    /// A runtime with `threads` workers (`--io-threads`, at least 1), each of its threads
    /// `nice` steps below the process's priority (`--io-nice`; 0 keeps it).
    pub fn new(threads: usize, nice: u8) -> Result<Self, GatewayError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("livechat-io")
            .on_thread_start(move || lower_priority(nice))
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| GatewayError::Startup(format!("cannot start the IO pool: {e}")))?;
        Ok(Self {
            runtime,
            stop: watch::channel(false).0,
            services: Mutex::new(Vec::new()),
        })
    }

    /// The runtime's handle.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// What a service watches to know when to drain and end.
    pub fn stop_signal(&self) -> Stop {
        Stop(self.stop.subscribe())
    }

    /// Runs a service (a long-lived task that ends after [`Stop`] fires); shutdown waits for it.
    pub fn spawn_service(&self, f: impl Future<Output = ()> + Send + 'static) {
        let h = self.runtime.spawn(f);
        if let Ok(mut s) = self.services.lock() {
            s.push(h);
        }
    }

    /// Runs the blocking `f` on one of the pool's threads and waits for it, from a thread that
    /// is not an executor: what `f` starts (librdkafka's threads) inherits the pool's lower
    /// priority instead of the caller's.
    pub fn run_on_pool<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GatewayError> {
        self.runtime
            .block_on(self.runtime.spawn_blocking(f))
            .map_err(|e| GatewayError::Startup(format!("IO pool task failed: {e}")))
    }

    /// Runs `f` to completion on the pool, from a thread that is not an executor (`main`,
    /// start-up and shutdown).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Tells every service to drain, flush and end, waits up to `grace` for them, then stops
    /// the runtime. True when every service ended in time.
    pub fn shutdown(self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let services = self
            .services
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        let done = self.runtime.block_on(async {
            tokio::time::timeout(grace, futures_util::future::join_all(services))
                .await
                .is_ok()
        });
        self.runtime.shutdown_timeout(Duration::from_millis(200));
        done
    }
}

/// Lowers the calling thread's scheduling priority by `steps` nice levels (capped at 19, the
/// lowest). On Linux a nice value belongs to the thread, and threads it starts inherit it.
/// Raising a nice value needs no privilege; failing to is logged, not fatal (the pool works,
/// only without the preference).
#[allow(unsafe_code)] // two libc calls; std has no thread priority API
pub fn lower_priority(steps: u8) {
    if steps == 0 {
        return;
    }
    // SAFETY: getpriority/setpriority with PRIO_PROCESS and who = 0 act on the calling thread
    // on Linux and touch no memory of ours.
    unsafe {
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        if current == -1 && *libc::__errno_location() != 0 {
            return;
        }
        let target = (current + i32::from(steps)).min(19);
        if libc::setpriority(libc::PRIO_PROCESS, 0, target) != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lower the IO pool's priority"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn nice_of_this_thread() -> i32 {
        // SAFETY: as in lower_priority.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn pool_threads_and_what_they_start_run_below_the_caller() {
        let mine = nice_of_this_thread();
        let pool = IoPool::new(1, 5).unwrap();
        let worker = pool.block_on(async { pool_nice().await });
        let blocking = pool.run_on_pool(nice_of_this_thread).unwrap();
        let grandchild = pool
            .run_on_pool(|| std::thread::spawn(nice_of_this_thread).join().unwrap())
            .unwrap();
        assert_eq!(worker, (mine + 5).min(19));
        assert_eq!(blocking, (mine + 5).min(19));
        assert_eq!(grandchild, (mine + 5).min(19));
        assert_eq!(nice_of_this_thread(), mine, "the caller keeps its priority");
        assert!(pool.shutdown(Duration::from_secs(1)));
    }

    async fn pool_nice() -> i32 {
        tokio::spawn(async { nice_of_this_thread() }).await.unwrap()
    }

    #[test]
    fn zero_keeps_the_priority() {
        let mine = nice_of_this_thread();
        let pool = IoPool::new(1, 0).unwrap();
        assert_eq!(pool.run_on_pool(nice_of_this_thread).unwrap(), mine);
        assert!(pool.shutdown(Duration::from_secs(1)));
    }
}
