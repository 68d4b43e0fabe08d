//! `livechat-shard-router`: which glommio executor owns what, and how executors talk.
//!
//! Architecture Invariant: this is the only crate that knows executor ids. Everything else
//! holds an opaque [`ExecutorId`] handed out here and asks this crate where a thing lives.
//!
//! - [`executor_id`]: the opaque executor id.
//! - [`owned_id`]: random ids (Engine.IO session ids, socket ids) that carry their owner executor.
//! - [`mesh`]: the full mesh of bounded flume channels between executors, wired before they start.
//! - [`launch`]: starting one pinned glommio executor per core, each with its mesh port.
//! - [`shard_map`]: consistent hashing of conversation ids onto executors.
//! - [`counters`]: drop counters; every place that drops something counts it here.
//! - [`error`]: this crate's error type.

pub mod counters;
pub mod error;
pub mod executor_id;
pub mod launch;
pub mod mesh;
pub mod owned_id;
pub mod shard_map;

pub use counters::{Counters, CountersSnapshot};
pub use error::RouterError;
pub use executor_id::ExecutorId;
pub use launch::{allowed_cpus, available_cpus, launch, LaunchConfig, Launched, Shard};
pub use mesh::{Mesh, MeshPort};
pub use owned_id::OwnedIds;
pub use shard_map::ShardMap;
