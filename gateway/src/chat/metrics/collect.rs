//! One executor's report to a scrape: its counters, its sessions, sockets and rooms, its Redis
//! connection's round trips, and its share of the conversation gauges.
//!
//! Runs on: the executor it reports on (a `MeshMsg::Run` of the scrape, or the scraping
//! executor itself). The conversation gauges: embedded — each executor counts the cells it
//! owns, the queue executor adds the queue; Redis — only the queue executor reads them, once
//! per scrape, from the shared indexes (`RedisStore::gauges`).

use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{FutureExt, LocalBoxFuture};
use livechat_core::Timestamp;

use super::super::engine::Chat;
use super::super::ids::now;
use super::super::store::Store;
use crate::engineio::Engine;
use crate::metrics::ExecutorSnapshot;
use crate::runtime::Node;

/// The longest the queue executor waits for Redis's gauges: well inside the scrape's
/// deadline, so a slow Redis costs the gauges, not this executor's whole report.
const STORE_READ_LIMIT: Duration = Duration::from_millis(500);

/// This executor's report (see the module doc).
pub fn collect(node: &Rc<Node>) -> LocalBoxFuture<'static, ExecutorSnapshot> {
    let mut s = node.metrics().snapshot();
    if let Some(engine) = Engine::current(node) {
        let (polling, websocket) = engine.sessions_by_transport();
        (s.polling, s.websocket) = (polling as u64, websocket as u64);
    }
    let Some(chat) = Chat::current(node) else {
        return std::future::ready(s).boxed_local();
    };
    s.sockets = chat.io().local_socket_count() as u64;
    s.rooms = chat.io().local_room_count() as u64;
    match chat.store() {
        Store::Embedded(e) => {
            s.conversations = Some(e.count_by_status());
            if chat.is_queue_executor() {
                let (len, oldest) = e.queue_gauges();
                s.queue = Some((len, wait_ms(oldest)));
            }
            std::future::ready(s).boxed_local()
        }
        Store::Redis(r) => {
            (s.redis_latency, s.redis_errors) = r.conn().command_stats();
            if !chat.is_queue_executor() {
                return std::future::ready(s).boxed_local();
            }
            let r = r.clone();
            async move {
                let read = futures_lite::future::or(async { Some(r.gauges().await) }, async {
                    glommio::timer::sleep(STORE_READ_LIMIT).await;
                    None
                });
                match read.await {
                    Some(Ok(g)) => {
                        s.conversations = Some(g.conversations);
                        s.queue = Some((g.queue_length, wait_ms(g.oldest)));
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "metrics: queue gauges not read"),
                    None => tracing::warn!("metrics: queue gauges not read in time"),
                }
                s
            }
            .boxed_local()
        }
    }
}

/// How long the entry enqueued at `oldest` has waited, in milliseconds (0 without one).
fn wait_ms(oldest: Option<Timestamp>) -> u64 {
    oldest.map_or(0, |at| u64::try_from(now().since(at)).unwrap_or(0))
}
