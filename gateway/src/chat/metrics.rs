//! `GET /metrics`: the node's numbers in the Prometheus text format (`prometheus-client`).
//!
//! Runs on: the executor that received the scrape. Counters are kept per executor in `Cell`s
//! (`crate::metrics`); a scrape asks every executor for its report over the mesh
//! ([`crate::metrics::gather`], at most [`SCRAPE_DEADLINE`]), sums them, and adds the node-wide
//! atomics and the backends' statistics. See `docs/metrics.md`.
//!
//! - [`collect`]: one executor's report.
//! - [`render`]: the encoding.

pub mod collect;
pub mod render;

use std::rc::Rc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

use super::engine::Chat;
use super::store::Store;
use crate::http::Response;
use crate::metrics::{gather, Gathered};

/// How long a scrape waits for the executors' reports; later ones are counted missing.
pub const SCRAPE_DEADLINE: Duration = Duration::from_secs(1);

/// Serves a scrape: every executor's report, summed.
pub async fn serve(chat: Rc<Chat>) -> Response {
    let gathered = gather(&chat.node, collect::collect, SCRAPE_DEADLINE).await;
    Response::new(
        200,
        CONTENT_TYPE,
        render::render(&inputs(&chat, gathered)).into_bytes(),
    )
}

fn inputs(chat: &Chat, gathered: Gathered) -> render::Inputs {
    let events = &chat.services.events;
    render::Inputs {
        gathered,
        counters: chat.counters().snapshot(),
        events: events.stats().snapshot(),
        sink: events.sink(),
        durable: chat.services.durable.as_ref().map(|d| d.stats().snapshot()),
        redis: matches!(chat.store(), Store::Redis(_)),
    }
}
