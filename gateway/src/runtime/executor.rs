//! What every executor runs: bind, accept, serve the mesh inbox, and shut down cleanly.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use glommio::net::TcpListener;
use livechat_shard_router::{launch, Counters, LaunchConfig, Launched, Shard};
use tracing::Instrument;

use super::health::{self, NodeHealth};
use super::{handoff, listen, unstall, AppFactory, LocalApp, MeshMsg, Node};
use crate::config::GatewayConfig;
use crate::engineio::{polling, websocket, Engine, EngineApp};
use crate::error::{CloseReason, GatewayError};
use crate::http::accept_backoff::AcceptBackoff;
use crate::http::conn::{self, HttpContext};
use crate::http::conn_limit::{Admission, ConnLimits};

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    /// The bound addresses (real ports).
    pub addrs: Vec<SocketAddr>,
    /// Node-wide counters.
    pub counters: Arc<Counters>,
    /// Draining flag and executor heartbeats (`/readyz`).
    pub health: Arc<NodeHealth>,
    stop: Option<flume::Sender<()>>,
    launched: Launched,
}

impl Running {
    /// Asks every executor to stop: stop accepting, close sessions, exit.
    pub fn stop(&mut self) {
        // Dropping the only sender wakes every executor's `recv` with "disconnected".
        self.stop.take();
    }

    /// Waits until every executor has exited.
    pub fn wait(self) -> Result<(), GatewayError> {
        self.launched.join().map_err(GatewayError::from)
    }
}

/// Starts the executors and returns once every one of them accepts connections.
pub fn run(cfg: GatewayConfig, app: Arc<dyn AppFactory>) -> Result<Running, GatewayError> {
    let (addrs, guards) = listen::resolve(&cfg.listen)?;
    let mut cfg = cfg;
    cfg.listen = addrs.clone();
    let cfg = Arc::new(cfg);
    let counters = Arc::new(Counters::default());
    // Node-wide: descriptors are a process resource and a client's connections land anywhere.
    let limits = ConnLimits::new(
        cfg.connection_cap(),
        cfg.max_connections_per_ip,
        cfg.trusted_proxies.clone(),
        counters.clone(),
    );
    tracing::info!(
        max_connections = cfg.connection_cap(),
        per_ip = cfg.max_connections_per_ip,
        "connection caps"
    );
    let launch_cfg = LaunchConfig {
        executors: cfg
            .executors
            .unwrap_or_else(livechat_shard_router::available_cpus),
        mailbox_capacity: cfg.mailbox_capacity,
        pin: cfg.pin,
        ..LaunchConfig::default()
    };
    let health = NodeHealth::new(launch_cfg.executors);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    let launched = {
        let cfg = cfg.clone();
        let health = health.clone();
        launch(
            &launch_cfg,
            counters.clone(),
            move |shard: Shard<MeshMsg>| {
                let span = tracing::info_span!("executor", id = %shard.id());
                executor_main(
                    shard,
                    cfg.clone(),
                    limits.clone(),
                    health.clone(),
                    app.clone(),
                    ready_tx.clone(),
                    stop_rx.clone(),
                )
                .instrument(span)
            },
        )?
    };
    for _ in 0..launch_cfg.executors {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GatewayError::Startup(e)),
            Err(_) => {
                return Err(GatewayError::Startup(
                    "an executor died while starting".into(),
                ))
            }
        }
    }
    drop(guards);
    Ok(Running {
        addrs,
        counters,
        health,
        stop: Some(stop_tx),
        launched,
    })
}

async fn executor_main(
    shard: Shard<MeshMsg>,
    cfg: Arc<GatewayConfig>,
    limits: Arc<ConnLimits>,
    health: Arc<NodeHealth>,
    factory: Arc<dyn AppFactory>,
    ready: mpsc::Sender<Result<(), String>>,
    stop: flume::Receiver<()>,
) {
    let node = Node::new(cfg.clone(), shard.port);
    let app = factory.build(&node);
    let engine = Engine::new(node.clone(), app.clone() as Rc<dyn EngineApp>);
    let http = HttpContext::new(
        node.clone(),
        engine.clone(),
        app.clone(),
        limits.clone(),
        health.clone(),
    );
    let mut listeners = Vec::new();
    for addr in &cfg.listen {
        match TcpListener::bind(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                let _ = ready.send(Err(format!("cannot listen on {addr}: {e}")));
                return;
            }
        }
    }
    // Keeps glommio 0.9 from sleeping with woken tasks unrun for longer than
    // `unstall::PERIOD` (see there); ends with the node.
    unstall::start(Rc::downgrade(&node));
    health::start_beating(health, node.executor().index(), Rc::downgrade(&node));
    let inbox = glommio::spawn_local(inbox_loop(node.clone(), engine.clone(), app, limits));
    let accepts: Vec<_> = listeners
        .into_iter()
        .map(|l| glommio::spawn_local(accept_loop(l, http.clone(), node.clone())))
        .collect();
    let _ = ready.send(Ok(()));
    tracing::debug!("accepting connections");
    let _ = stop.recv_async().await;
    tracing::debug!(sessions = engine.session_count(), "shutting down");
    drop(accepts);
    node.begin_shutdown();
    engine.close_all(CloseReason::Shutdown);
    // In-flight requests finish and sessions flush their close packets, for at most this.
    let deadline = Instant::now() + cfg.close_wait;
    while node.connections() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    drop(inbox);
}

async fn accept_loop(listener: TcpListener, http: Rc<HttpContext>, node: Rc<Node>) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = match listener.accept().await {
            Ok(s) => {
                backoff.succeeded();
                s
            }
            Err(e) => {
                // Out of descriptors (or buffers): retrying at once would spin and log
                // thousands of lines; wait a little longer each time, log once per window.
                Counters::bump(&node.counters().http_accept_errors);
                let next = backoff.failed(Instant::now());
                if let Some(failures) = next.log {
                    tracing::warn!(
                        error = %e,
                        failures,
                        open = http.limits().open(),
                        "accept failed; backing off"
                    );
                }
                glommio::timer::sleep(next.wait).await;
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        // Admission first, so a refused connection costs no more syscalls than the close.
        let (slot, over_ip) = match http.limits().admit(peer.ip()) {
            Admission::Admitted(slot) => (slot, false),
            Admission::AddressFull(slot) => (slot, true),
            Admission::NodeFull => {
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let guard = node.connection_guard();
        let http = http.clone();
        let span = tracing::debug_span!("conn", %peer);
        glommio::spawn_local(
            async move {
                let _guard = guard;
                conn::serve(http, stream, peer, slot, over_ip).await;
            }
            .instrument(span),
        )
        .detach();
    }
}

async fn inbox_loop(
    node: Rc<Node>,
    engine: Rc<Engine>,
    app: Rc<dyn LocalApp>,
    limits: Arc<ConnLimits>,
) {
    while let Ok(msg) = node.port().inbox().recv_async().await {
        match msg {
            MeshMsg::Poll(req) => polling::serve(&engine, req),
            MeshMsg::PollAborted(sid) => polling::aborted(&engine, &sid),
            MeshMsg::WebSocket { fd, req } => {
                let stream = handoff::attach(fd);
                let guard = node.connection_guard();
                // Its slot was given back on the executor it left; count it here again.
                let slot = limits.adopt(req.handshake.remote_addr.ip());
                let engine = engine.clone();
                glommio::spawn_local(async move {
                    let _guard = guard;
                    let _slot = slot;
                    websocket::serve(engine, stream, req).await;
                })
                .detach();
            }
            MeshMsg::SocketIo(remote) => app.on_remote(remote),
            MeshMsg::Run(f) => f(&node),
        }
    }
}
