//! Engine.IO v4, server side: sessions, long-polling, WebSocket, upgrade and heartbeat.
//!
//! - [`packet`]: the packet and payload codec (byte slices, no sockets).
//! - [`session`]: one session and its ordered outbound queue.
//! - [`polling`]: GET/POST handling on the owner executor.
//! - [`websocket`]: the WebSocket transport and the upgrade from polling.
//! - [`heartbeat`]: ping / pong timing.
//! - [`handler`]: the interface to the layer above (Socket.IO).
//!
//! [`Engine`] is one executor's Engine.IO server: the sessions this executor owns.

pub mod closed_sids;
pub mod handler;
pub mod heartbeat;
pub mod packet;
pub mod polling;
pub mod session;
pub mod websocket;
pub mod ws_frame;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub use handler::{EngineApp, Handshake, SessionHandler};
pub use packet::{Frame, Inbound};
pub use session::{Session, Transport};

use crate::config::GatewayConfig;
use crate::error::CloseReason;
use crate::runtime::Node;
use closed_sids::ClosedSids;

/// The Engine.IO server of one executor.
///
/// Lives on: one executor; owns exactly the sessions whose sid names that executor.
pub struct Engine {
    node: Rc<Node>,
    sessions: RefCell<HashMap<Box<str>, Rc<Session>>>,
    /// Polling sessions the client closed while no GET was parked (see `closed_sids`).
    client_closed: RefCell<ClosedSids>,
    app: Rc<dyn EngineApp>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("executor", &self.node.executor())
            .field("sessions", &self.sessions.borrow().len())
            .finish()
    }
}

impl Engine {
    /// An Engine.IO server for this executor, handing sessions to `app`.
    /// Registers itself on `node` as a `Weak<Engine>` (the metrics scrape finds it there; weak,
    /// because the engine already holds the node).
    pub fn new(node: Rc<Node>, app: Rc<dyn EngineApp>) -> Rc<Self> {
        let engine = Rc::new(Self {
            node: node.clone(),
            sessions: RefCell::new(HashMap::new()),
            client_closed: RefCell::new(ClosedSids::default()),
            app,
        });
        node.set_extension(Rc::new(Rc::downgrade(&engine)));
        engine
    }

    /// The engine of the executor that owns `node`, if it still runs.
    pub fn current(node: &Node) -> Option<Rc<Engine>> {
        node.extension::<std::rc::Weak<Engine>>()?.upgrade()
    }

    /// Settings.
    pub fn config(&self) -> &GatewayConfig {
        self.node.config()
    }

    /// This executor's node context.
    pub fn node(&self) -> &Rc<Node> {
        &self.node
    }

    /// A session owned by this executor.
    pub fn session(&self, sid: &str) -> Option<Rc<Session>> {
        self.sessions.borrow().get(sid).cloned()
    }

    /// Number of open sessions on this executor.
    pub fn session_count(&self) -> usize {
        self.sessions.borrow().len()
    }

    /// Open sessions on this executor by their current transport: `(polling, websocket)`.
    /// Walks the sessions: for a scrape, not for a hot path.
    pub fn sessions_by_transport(&self) -> (usize, usize) {
        let sessions = self.sessions.borrow();
        let ws = sessions
            .values()
            .filter(|s| s.transport() == Transport::WebSocket)
            .count();
        (sessions.len() - ws, ws)
    }

    /// Remembers that the client closed polling session `sid` while no GET was parked.
    pub(crate) fn remember_client_close(&self, sid: &str) {
        self.client_closed
            .borrow_mut()
            .insert(sid, std::time::Instant::now());
    }

    /// Whether a GET for the unknown `sid` is the first since its client closed the session
    /// (it was on its way then: answered `6`, once).
    pub(crate) fn take_client_close(&self, sid: &str) -> bool {
        self.client_closed
            .borrow_mut()
            .take(sid, std::time::Instant::now())
    }

    pub(crate) fn forget(&self, sid: &str) {
        self.sessions.borrow_mut().remove(sid);
    }

    /// Opens a session: registers it, starts its heartbeat and hands it to the application.
    /// Returns the open packet, which the transport sends first.
    pub fn open(
        self: &Rc<Self>,
        handshake: Handshake,
        transport: Transport,
    ) -> (Rc<Session>, Frame) {
        let sid = self.node.ids().next_id();
        let session = Session::new(sid, self, Rc::new(handshake), transport);
        let cfg = self.config();
        let upgrades: &[&str] = match transport {
            Transport::Polling if cfg.transports.websocket => &["websocket"],
            _ => &[],
        };
        let open = packet::open_packet(
            session.sid(),
            upgrades,
            cfg.ping_interval.as_millis() as u64,
            cfg.ping_timeout.as_millis() as u64,
            cfg.max_payload,
        );
        self.sessions
            .borrow_mut()
            .insert(session.sid().into(), session.clone());
        // Detached: the task ends by itself when the session closes (`Session::close` wakes
        // it), never by cancellation, which leaks the task in glommio 0.9 (see `heartbeat`).
        glommio::spawn_local(heartbeat::run(
            Rc::downgrade(&session),
            cfg.ping_interval,
            cfg.ping_timeout,
        ))
        .detach();
        session.set_handler(self.app.clone().open(&session));
        (session, open)
    }

    /// Applies one packet received on `session`.
    pub fn receive(self: &Rc<Self>, session: &Rc<Session>, packet: Inbound<'_>) {
        match packet {
            Inbound::Pong(_) => session.pong.notify(),
            Inbound::Close => session.close_by_client(),
            Inbound::Message(text) => {
                if let Some(h) = session.handler() {
                    h.on_message(session, text);
                }
            }
            Inbound::Binary(data) => {
                if let Some(h) = session.handler() {
                    h.on_binary(session, &data);
                }
            }
            // v4 clients do not ping (the server does), except `2probe` on the upgrading
            // WebSocket, which the WebSocket transport answers itself. Upgrade and noop outside
            // an upgrade mean nothing.
            Inbound::Ping(_) | Inbound::Upgrade | Inbound::Noop => {}
        }
    }

    /// Closes every session (shutdown).
    pub fn close_all(&self, reason: CloseReason) {
        let all: Vec<_> = self.sessions.borrow().values().cloned().collect();
        for s in all {
            s.close(reason);
        }
    }
}
