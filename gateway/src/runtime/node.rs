//! One executor's view of the node: its id, its mesh port, its id maker, its metrics and the
//! settings.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use livechat_shard_router::{Counters, ExecutorId, MeshPort, OwnedIds};

use super::MeshMsg;
use crate::config::GatewayConfig;
use crate::metrics::ExecutorMetrics;

/// Per-executor context shared by the HTTP, Engine.IO and Socket.IO layers.
///
/// Lives on: the executor named by [`Node::executor`].
#[derive(Debug)]
pub struct Node {
    cfg: Arc<GatewayConfig>,
    port: MeshPort<MeshMsg>,
    ids: OwnedIds,
    connections: Cell<usize>,
    metrics: ExecutorMetrics,
    extensions: RefCell<HashMap<TypeId, Rc<dyn Any>>>,
    // Dropping the sender wakes every clone of the receiver: a broadcast "we are stopping".
    stop_tx: RefCell<Option<flume::Sender<()>>>,
    stop_rx: flume::Receiver<()>,
}

impl Node {
    /// Context for the executor that owns `port`.
    pub fn new(cfg: Arc<GatewayConfig>, port: MeshPort<MeshMsg>) -> Rc<Self> {
        let (stop_tx, stop_rx) = flume::bounded(1);
        Rc::new(Self {
            stop_tx: RefCell::new(Some(stop_tx)),
            stop_rx,
            ids: OwnedIds::new(port.me()),
            cfg,
            port,
            connections: Cell::new(0),
            metrics: ExecutorMetrics::default(),
            extensions: RefCell::new(HashMap::new()),
        })
    }

    /// This executor.
    pub fn executor(&self) -> ExecutorId {
        self.port.me()
    }

    /// Settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// The mesh.
    pub fn port(&self) -> &MeshPort<MeshMsg> {
        &self.port
    }

    /// Makes ids owned by this executor.
    pub fn ids(&self) -> &OwnedIds {
        &self.ids
    }

    /// Node-wide drop counters.
    pub fn counters(&self) -> &Arc<Counters> {
        self.port.counters()
    }

    /// This executor's counters (`GET /metrics` sums them over the executors).
    pub fn metrics(&self) -> &ExecutorMetrics {
        &self.metrics
    }

    /// The executor of this node that owns `id`, if `id` is one of ours.
    pub fn owner_of(&self, id: &str) -> Option<ExecutorId> {
        OwnedIds::owner_of(id).and_then(|e| self.port.executor(e.index()))
    }

    /// Whether `id` names an executor of this node (cheap pre-check before routing).
    pub fn owns_or_routes(&self, id: &str) -> bool {
        self.owner_of(id).is_some()
    }

    /// Registers this executor's instance of an application type (one per type).
    pub fn set_extension<T: Any>(&self, value: Rc<T>) {
        self.extensions
            .borrow_mut()
            .insert(TypeId::of::<T>(), value);
    }

    /// This executor's instance of `T`, if registered.
    pub fn extension<T: Any>(&self) -> Option<Rc<T>> {
        let ext = self.extensions.borrow().get(&TypeId::of::<T>()).cloned()?;
        ext.downcast::<T>().ok()
    }

    /// Runs `f` on `executor` with its context (here, synchronously, when it is this one).
    pub fn run_on(
        self: &Rc<Self>,
        executor: ExecutorId,
        f: impl FnOnce(&Rc<Node>) + Send + 'static,
    ) -> Result<(), livechat_shard_router::RouterError> {
        if executor == self.executor() {
            f(self);
            Ok(())
        } else {
            self.port.try_send(executor, MeshMsg::Run(Box::new(f)))
        }
    }

    /// Resolves when this executor starts shutting down (idle keep-alive connections close).
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + 'static {
        let rx = self.stop_rx.clone();
        async move {
            let _ = rx.recv_async().await;
        }
    }

    /// Starts shutting down: wakes every [`Node::stopping`] waiter.
    pub fn begin_shutdown(&self) {
        self.stop_tx.borrow_mut().take();
    }

    /// Open TCP connections served by this executor.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// Counts one connection for as long as the guard lives.
    pub fn connection_guard(self: &Rc<Self>) -> ConnectionGuard {
        self.connections.set(self.connections.get() + 1);
        ConnectionGuard(self.clone())
    }
}

/// Decrements the connection count on drop.
#[derive(Debug)]
pub struct ConnectionGuard(Rc<Node>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.set(self.0.connections.get() - 1);
    }
}
