//! Starting the executors: one glommio `LocalExecutor` per core, pinned, no work stealing.
//!
//! The mesh is wired here before any executor runs, so the first thing an executor does can
//! already be a send to any other.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

use crate::{Counters, ExecutorId, Mesh, MeshPort, RouterError};

/// How to start the executors.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// Number of executors (threads). Usually the number of available CPUs.
    pub executors: usize,
    /// Capacity of every mesh mailbox.
    pub mailbox_capacity: usize,
    /// Pin executor `i` to CPU `i % cpus` (on by default; tests on shared machines may turn it off).
    pub pin: bool,
    /// Thread name prefix.
    pub name: String,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            executors: available_cpus(),
            mailbox_capacity: 4096,
            pin: true,
            name: "livechat".into(),
        }
    }
}

/// What an executor gets when it starts.
///
/// Lives on: the executor it was made for.
#[derive(Debug)]
pub struct Shard<M> {
    /// This executor's end of the mesh.
    pub port: MeshPort<M>,
}

impl<M: Send> Shard<M> {
    /// This executor's id.
    pub fn id(&self) -> ExecutorId {
        self.port.me()
    }
}

/// The number of CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Running executors; [`Launched::join`] waits for all of them.
#[derive(Debug)]
pub struct Launched {
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
}

impl Launched {
    /// Waits until every executor has returned.
    pub fn join(self) -> Result<(), RouterError> {
        for h in self.handles {
            h.join().map_err(|e| RouterError::Launch(e.to_string()))?;
        }
        Ok(())
    }
}

/// Builds the mesh and starts `cfg.executors` executors, each running `main(shard)`.
pub fn launch<M, F, Fut>(
    cfg: &LaunchConfig,
    counters: Arc<Counters>,
    main: F,
) -> Result<Launched, RouterError>
where
    M: Send + 'static,
    F: Fn(Shard<M>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    if cfg.executors == 0 || cfg.executors > usize::from(u16::MAX) {
        return Err(RouterError::NoSuchExecutor(cfg.executors));
    }
    let ports = Mesh::build::<M>(cfg.executors, cfg.mailbox_capacity, counters);
    let cpus = glommio::CpuSet::online()
        .map(|s| s.into_iter().map(|l| l.cpu).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut handles = Vec::with_capacity(cfg.executors);
    for port in ports {
        let i = port.me().index();
        let placement = match (cfg.pin, cpus.is_empty()) {
            (true, false) => Placement::Fixed(cpus[i % cpus.len()]),
            _ => Placement::Unbound,
        };
        let main = main.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("{}-{}", cfg.name, i))
            // The io_uring buffer pool is for file IO, which we do not do: keep it small so
            // many executors fit in the default RLIMIT_MEMLOCK.
            .io_memory(64 << 10)
            .preempt_timer(Duration::from_millis(5))
            .spawn(move || main(Shard { port }))
            .map_err(|e| RouterError::Launch(e.to_string()))?;
        handles.push(handle);
    }
    Ok(Launched { handles })
}
