//! The scrape across executors: the executor that received `GET /metrics` asks every executor
//! of the node (itself included) for its [`ExecutorSnapshot`] with a `MeshMsg::Run` closure and
//! a flume reply channel, and adds up what arrives before a deadline. An executor that does not
//! answer in time (stalled, or its mailbox full) is left out of the sums and counted as
//! missing, so one stuck executor cannot hang the scrape.
//!
//! Runs on: the executor that received the scrape; each [`Collect`] on its own executor.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::LocalBoxFuture;

use super::ExecutorSnapshot;
use crate::runtime::Node;

/// Reads one executor's numbers, on that executor (a plain `fn`, so it may cross the mesh).
pub type Collect = fn(&Rc<Node>) -> LocalBoxFuture<'static, ExecutorSnapshot>;

/// The node's numbers from one scrape.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// The sum over the executors that answered.
    pub total: ExecutorSnapshot,
    /// Executors that did not answer before the deadline.
    pub missing: usize,
    /// Each executor's mailbox length when the scrape began (index = executor).
    pub mailbox_depths: Vec<usize>,
}

/// Adds up answers as they arrive; an executor answers at most once, and whoever never
/// answered is missing.
///
/// Lives on: the executor running the scrape.
#[derive(Debug)]
pub struct Tally {
    answered: Vec<bool>,
    total: ExecutorSnapshot,
}

impl Tally {
    /// Waiting for `executors` answers.
    pub fn new(executors: usize) -> Self {
        Self {
            answered: vec![false; executors],
            total: ExecutorSnapshot::default(),
        }
    }

    /// Executor `index` answered `s`; a second answer, or an unknown executor, is ignored
    /// (false).
    pub fn add(&mut self, index: usize, s: &ExecutorSnapshot) -> bool {
        match self.answered.get_mut(index) {
            Some(seen) if !*seen => {
                *seen = true;
                self.total.add(s);
                true
            }
            _ => false,
        }
    }

    /// Whether every executor answered.
    pub fn complete(&self) -> bool {
        self.answered.iter().all(|&a| a)
    }

    /// The sum and the number of executors that did not answer.
    pub fn finish(self) -> (ExecutorSnapshot, usize) {
        let missing = self.answered.iter().filter(|&&a| !a).count();
        (self.total, missing)
    }
}

/// Asks every executor of `node` for its snapshot (`collect` runs there) and sums what arrives
/// within `deadline`.
pub async fn gather(node: &Rc<Node>, collect: Collect, deadline: Duration) -> Gathered {
    let until = Instant::now() + deadline;
    let executors: Vec<_> = node.port().executors().collect();
    // Before our own requests join the queues.
    let mailbox_depths = executors
        .iter()
        .map(|&e| node.port().mailbox_depth(e))
        .collect();
    let (tx, rx) = flume::bounded::<(usize, ExecutorSnapshot)>(executors.len());
    for &e in &executors {
        let tx = tx.clone();
        let asked = node.run_on(e, move |node| {
            let (index, read) = (node.executor().index(), collect(node));
            glommio::spawn_local(async move {
                let _ = tx.try_send((index, read.await));
            })
            .detach();
        });
        if let Err(err) = asked {
            tracing::debug!(executor = %e, error = %err, "executor not asked for its metrics");
        }
    }
    // Only the requests hold senders now: when every one of them is done, `recv` ends.
    drop(tx);
    let mut tally = Tally::new(executors.len());
    while !tally.complete() {
        let left = until.saturating_duration_since(Instant::now());
        let next = futures_lite::future::or(async { rx.recv_async().await.ok() }, async {
            glommio::timer::sleep(left).await;
            None
        })
        .await;
        match next {
            Some((index, s)) => {
                tally.add(index, &s);
            }
            None => break,
        }
    }
    let (total, missing) = tally.finish();
    if missing > 0 {
        tracing::warn!(
            missing,
            "metrics scrape: executors did not answer within {deadline:?}"
        );
    }
    Gathered {
        total,
        missing,
        mailbox_depths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stored: u64, sockets: u64) -> ExecutorSnapshot {
        ExecutorSnapshot {
            messages_stored: stored,
            sockets,
            ..ExecutorSnapshot::default()
        }
    }

    #[test]
    fn the_sum_leaves_out_an_executor_that_did_not_answer() {
        let mut t = Tally::new(3);
        assert!(t.add(0, &report(2, 1)));
        assert!(t.add(2, &report(5, 3)));
        assert!(!t.complete());
        let (total, missing) = t.finish();
        assert_eq!(missing, 1);
        assert_eq!((total.messages_stored, total.sockets), (7, 4));
    }

    #[test]
    fn an_executor_counts_once_and_unknown_ones_not_at_all() {
        let mut t = Tally::new(2);
        assert!(t.add(1, &report(1, 0)));
        assert!(!t.add(1, &report(1, 0)), "second answer");
        assert!(!t.add(7, &report(1, 0)), "no such executor");
        assert!(t.add(0, &report(1, 0)));
        assert!(t.complete());
        let (total, missing) = t.finish();
        assert_eq!((total.messages_stored, missing), (2, 0));
    }

    fn counters_only(node: &Rc<Node>) -> LocalBoxFuture<'static, ExecutorSnapshot> {
        Box::pin(std::future::ready(node.metrics().snapshot()))
    }

    /// Three real executors over a real mesh: 0 scrapes, 1 serves its inbox, 2 never reads
    /// it (a stalled executor). The scrape ends at its deadline with 0 and 1 summed.
    #[test]
    fn a_stalled_executor_is_missing_and_the_others_are_summed() {
        use crate::config::GatewayConfig;
        use crate::runtime::MeshMsg;
        use livechat_shard_router::{launch, LaunchConfig, Shard};
        use std::sync::Arc;

        let cfg = Arc::new(GatewayConfig::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let launch_cfg = LaunchConfig {
            executors: 3,
            pin: false,
            ring_depth: 128,
            name: "gather-test".into(),
            ..LaunchConfig::default()
        };
        let alive = Duration::from_millis(1500);
        let launched = launch(&launch_cfg, Arc::default(), move |shard: Shard<MeshMsg>| {
            let (cfg, tx) = (cfg.clone(), tx.clone());
            async move {
                let node = Node::new(cfg, shard.port);
                node.metrics().messages_stored(node.executor().index() + 1);
                match node.executor().index() {
                    0 => {
                        let g = gather(&node, counters_only, Duration::from_millis(300)).await;
                        let _ = tx.send((g.total.messages_stored, g.missing, g.mailbox_depths));
                    }
                    1 => {
                        let serve = async {
                            while let Ok(msg) = node.port().inbox().recv_async().await {
                                if let MeshMsg::Run(f) = msg {
                                    f(&node);
                                }
                            }
                        };
                        futures_lite::future::or(serve, glommio::timer::sleep(alive)).await;
                    }
                    _ => glommio::timer::sleep(alive).await,
                }
            }
        })
        .expect("executors start");
        let (stored, missing, depths) = rx.recv().expect("a scrape result");
        assert_eq!(stored, 1 + 2, "executors 0 and 1");
        assert_eq!(missing, 1, "executor 2");
        assert_eq!(depths.len(), 3);
        launched.join().expect("executors end");
    }
}
