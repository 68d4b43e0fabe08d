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
    /// Pin executor `i` to the `i`-th CPU this process may run on, in ascending order, so
    /// `taskset -c 2,3 livechat serve` puts executor 0 on CPU 2 and executor 1 on CPU 3 (on by
    /// default; `--no-pin` turns it off, e.g. when several servers share a machine).
    pub pin: bool,
    /// Thread name prefix.
    pub name: String,
    /// Submission queue depth of each executor's io_uring rings. The kernel sizes the table it
    /// searches on every cancel from the ring size (`cq_entries / 32` buckets), and glommio
    /// cancels a timeout each time the executor wakes from sleep while every idle connection
    /// keeps a poll armed: with glommio's default 128 that table has 8 buckets, and at 5,000
    /// connections one cancel walked ~600 polls (7 % of the CPU under fan-out load).
    pub ring_depth: usize,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            executors: available_cpus(),
            mailbox_capacity: 4096,
            pin: true,
            name: "livechat".into(),
            ring_depth: 4096,
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

/// The CPUs this process may run on (its affinity mask, e.g. as set by `taskset` or a container's
/// cpuset), ascending. Falls back to every online CPU when the mask cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    let from_mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|list| parse_cpu_list(list.trim()))
        })
        .filter(|cpus| !cpus.is_empty());
    from_mask.unwrap_or_else(|| {
        let mut cpus: Vec<usize> = glommio::CpuSet::online()
            .map(|s| s.into_iter().map(|l| l.cpu).collect())
            .unwrap_or_default();
        // `CpuSet` iterates in hash order; executor i must land on the same CPU every start.
        cpus.sort_unstable();
        cpus.dedup();
        cpus
    })
}

/// Parses a kernel CPU list (`0-3,6,8-9`) into ascending CPU numbers; `None` if malformed.
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 1 << 16 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
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
    let cpus = if cfg.pin { allowed_cpus() } else { Vec::new() };
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
            .ring_depth(cfg.ring_depth.max(1))
            .spawn(move || main(Shard { port }))
            .map_err(|e| RouterError::Launch(e.to_string()))?;
        handles.push(handle);
    }
    Ok(Launched { handles })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_in_ascending_order() {
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(vec![0, 1, 2, 3, 6, 8, 9]));
        assert_eq!(parse_cpu_list("5,1"), Some(vec![1, 5]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    #[test]
    fn allowed_cpus_is_sorted_and_non_empty() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }
}
