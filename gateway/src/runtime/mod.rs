//! Running the gateway: executors, listeners, the mesh inbox, hand-over and shutdown.
//!
//! - [`node`]: one executor's context (id, mesh port, id maker, settings).
//! - [`mesh_msg`]: what executors send each other.
//! - [`executor`]: what each executor runs.
//! - [`listen`]: binding every listen address on every executor (SO_REUSEPORT).
//! - [`health`]: draining and executor heartbeats, for `/readyz`.
//! - [`handoff`]: moving a TCP connection to the executor that owns its session.
//! - [`local_event`]: a tiny executor-local wake-up flag.
//! - [`unstall`]: a per-executor timer bounding glommio 0.9's "parked with runnable tasks" stall.

pub mod executor;
pub mod handoff;
pub mod health;
pub mod listen;
pub mod local_event;
pub mod mesh_msg;
pub mod node;
pub mod unstall;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

pub use executor::{run, Running};
pub use health::NodeHealth;
pub use local_event::LocalEvent;
pub use mesh_msg::MeshMsg;
pub use node::Node;

use crate::engineio::EngineApp;
use crate::http::{RequestHead, Response};
use crate::socketio::Remote;

/// Builds the application (Socket.IO server, raw Engine.IO echo, ...) on each executor.
pub trait AppFactory: Send + Sync + 'static {
    /// Called once on every executor, before it accepts connections.
    fn build(&self, node: &Rc<Node>) -> Rc<dyn LocalApp>;
}

/// A response on its way (application HTTP handlers may await other executors).
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response>>>;

/// One executor's application.
pub trait LocalApp: EngineApp {
    /// Socket.IO work sent by another executor.
    fn on_remote(&self, msg: Remote);

    /// Serves an HTTP request on a path the gateway does not route itself (`None`: 404).
    fn http(
        self: Rc<Self>,
        _req: RequestHead,
        _body: Vec<u8>,
        _peer: SocketAddr,
    ) -> Option<ResponseFuture> {
        None
    }

    /// Checks the application's backends for `/readyz`: one (name, problem) per configured
    /// backend, `Ok` when it answers. Default: nothing to check.
    fn readiness(self: Rc<Self>) -> Readiness {
        Box::pin(async { Vec::new() })
    }
}

/// What [`LocalApp::readiness`] resolves to.
pub type Readiness = Pin<Box<dyn Future<Output = Vec<(&'static str, Result<(), String>)>>>>;
