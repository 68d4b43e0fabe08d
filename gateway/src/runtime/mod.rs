//! Running the gateway: executors, listeners, the mesh inbox, hand-over and shutdown.
//!
//! - [`node`]: one executor's context (id, mesh port, id maker, settings).
//! - [`mesh_msg`]: what executors send each other.
//! - [`executor`]: what each executor runs.
//! - [`listen`]: binding every listen address on every executor (SO_REUSEPORT).
//! - [`handoff`]: moving a TCP connection to the executor that owns its session.
//! - [`local_event`]: a tiny executor-local wake-up flag.

pub mod executor;
pub mod handoff;
pub mod listen;
pub mod local_event;
pub mod mesh_msg;
pub mod node;

use std::rc::Rc;

pub use executor::{run, Running};
pub use local_event::LocalEvent;
pub use mesh_msg::MeshMsg;
pub use node::Node;

use crate::engineio::EngineApp;
use crate::socketio::Remote;

/// Builds the application (Socket.IO server, raw Engine.IO echo, ...) on each executor.
pub trait AppFactory: Send + Sync + 'static {
    /// Called once on every executor, before it accepts connections.
    fn build(&self, node: &Rc<Node>) -> Rc<dyn LocalApp>;
}

/// One executor's application.
pub trait LocalApp: EngineApp {
    /// Socket.IO work sent by another executor.
    fn on_remote(&self, msg: Remote);
}
