//! The full mesh of bounded flume channels between the executors of one node.
//!
//! Built once, before any executor starts (like glommio's `examples/sharding.rs`), so every
//! executor holds a sender to every other one from its first instruction. Every channel is
//! bounded: a full mailbox is backpressure for async senders and a counted refusal for
//! `try_send`, never an unbounded queue.

use std::sync::Arc;

use crate::{Counters, ExecutorId, RouterError};

/// Builds meshes.
#[derive(Debug)]
pub struct Mesh;

impl Mesh {
    /// Creates the ports of an `executors`-wide mesh whose mailboxes hold `capacity` messages
    /// each. Port `i` goes to executor `i`.
    pub fn build<M: Send>(
        executors: usize,
        capacity: usize,
        counters: Arc<Counters>,
    ) -> Vec<MeshPort<M>> {
        assert!(executors > 0 && executors <= usize::from(u16::MAX));
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..executors).map(|_| flume::bounded(capacity)).unzip();
        receivers
            .into_iter()
            .enumerate()
            .map(|(i, inbox)| MeshPort {
                me: ExecutorId(i as u16),
                peers: senders.clone(),
                inbox,
                counters: counters.clone(),
            })
            .collect()
    }
}

/// One executor's end of the mesh: senders to every executor and its own inbox.
///
/// Lives on: the executor it was built for (moved there at start).
pub struct MeshPort<M> {
    me: ExecutorId,
    peers: Vec<flume::Sender<M>>,
    inbox: flume::Receiver<M>,
    counters: Arc<Counters>,
}

impl<M> std::fmt::Debug for MeshPort<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshPort")
            .field("me", &self.me)
            .field("executors", &self.peers.len())
            .finish()
    }
}

impl<M: Send> MeshPort<M> {
    /// The executor this port belongs to.
    pub fn me(&self) -> ExecutorId {
        self.me
    }

    /// Number of executors on this node.
    pub fn executor_count(&self) -> usize {
        self.peers.len()
    }

    /// Every executor of the node, this one included.
    pub fn executors(&self) -> impl Iterator<Item = ExecutorId> + '_ {
        (0..self.peers.len()).map(|i| ExecutorId(i as u16))
    }

    /// Every executor of the node but this one.
    pub fn others(&self) -> impl Iterator<Item = ExecutorId> + '_ {
        let me = self.me;
        self.executors().filter(move |&e| e != me)
    }

    /// The executor with index `index`, if the node has it.
    pub fn executor(&self, index: usize) -> Option<ExecutorId> {
        (index < self.peers.len()).then_some(ExecutorId(index as u16))
    }

    /// Node-wide counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Sends without waiting. A full mailbox is refused and counted; callers turn it into
    /// a 503 or a Socket.IO error.
    pub fn try_send(&self, to: ExecutorId, msg: M) -> Result<(), RouterError> {
        let tx = self.sender(to)?;
        tx.try_send(msg).map_err(|e| match e {
            flume::TrySendError::Full(_) => {
                Counters::bump(&self.counters.mesh_full);
                RouterError::Full(to)
            }
            flume::TrySendError::Disconnected(_) => {
                Counters::bump(&self.counters.mesh_disconnected);
                RouterError::Disconnected(to)
            }
        })
    }

    /// Sends, waiting while the mailbox is full (backpressure for the calling task).
    pub async fn send(&self, to: ExecutorId, msg: M) -> Result<(), RouterError> {
        let tx = self.sender(to)?;
        tx.send_async(msg).await.map_err(|_| {
            Counters::bump(&self.counters.mesh_disconnected);
            RouterError::Disconnected(to)
        })
    }

    /// Messages waiting in `of`'s mailbox now (0 for an executor the node does not have).
    /// Takes the channel's lock: for a scrape, not for a hot path.
    pub fn mailbox_depth(&self, of: ExecutorId) -> usize {
        self.peers.get(of.index()).map_or(0, flume::Sender::len)
    }

    /// This executor's inbox.
    pub fn inbox(&self) -> &flume::Receiver<M> {
        &self.inbox
    }

    fn sender(&self, to: ExecutorId) -> Result<&flume::Sender<M>, RouterError> {
        self.peers
            .get(to.index())
            .ok_or(RouterError::NoSuchExecutor(to.index()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_reaches_every_executor() {
        let ports = Mesh::build::<(usize, usize)>(3, 4, Arc::default());
        for p in &ports {
            for to in p.executors() {
                assert!(p.try_send(to, (p.me().index(), to.index())).is_ok());
            }
        }
        for p in &ports {
            let mut got: Vec<_> = p.inbox().drain().collect();
            got.sort();
            let want: Vec<_> = (0..3).map(|from| (from, p.me().index())).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn full_mailbox_is_refused_and_counted() {
        let ports = Mesh::build::<u8>(2, 1, Arc::default());
        let to = ports[1].me();
        assert!(ports[0].try_send(to, 1).is_ok());
        assert_eq!(ports[0].try_send(to, 2), Err(RouterError::Full(to)));
        assert_eq!(ports[0].counters().snapshot().mesh_full, 1);
        assert_eq!(ports[1].inbox().try_recv(), Ok(1));
    }

    #[test]
    fn mailbox_depth_counts_waiting_messages() {
        let ports = Mesh::build::<u8>(2, 4, Arc::default());
        let to = ports[1].me();
        assert_eq!(ports[0].mailbox_depth(to), 0);
        assert!(ports[0].try_send(to, 1).is_ok());
        assert!(ports[1].try_send(to, 2).is_ok());
        assert_eq!(ports[0].mailbox_depth(to), 2);
        assert_eq!(ports[1].mailbox_depth(ExecutorId(9)), 0);
    }

    #[test]
    fn unknown_executor_is_an_error() {
        let ports = Mesh::build::<u8>(1, 1, Arc::default());
        assert_eq!(ports[0].executor(1), None);
        assert_eq!(
            ports[0].try_send(ExecutorId(7), 0),
            Err(RouterError::NoSuchExecutor(7))
        );
    }
}
