//! Socket.IO v5, server side, on top of [`crate::engineio`].
//!
//! - [`packet`]: the packet codec (byte slices, no sockets).
//! - [`server`]: [`SocketIo`] (configuration shared by executors) and [`Io`] (one executor's server).
//! - [`namespace`]: namespaces and their handlers; per-executor room index.
//! - [`socket`]: one client in one namespace.
//! - [`event`]: received events, acks, encoding.
//! - [`broadcast`]: emitting to rooms across executors.
//! - `conn`: the Socket.IO state of one Engine.IO session (private).

pub mod broadcast;
mod conn;
pub mod event;
pub mod namespace;
pub mod packet;
pub mod server;
pub mod socket;

pub use broadcast::BroadcastOperator;
pub use event::{AckError, AckResponse, AckSender, Event};
pub use namespace::{ConnectContext, ConnectFuture, Namespace, Refusal};
pub(crate) use server::IoInner;
pub use server::{Io, Remote, SocketIo, SocketOp};
pub use socket::Socket;
