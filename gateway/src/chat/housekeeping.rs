//! The periodic sweep: queue max-wait, inactivity and max-duration closes, retention of closed
//! conversations, presence expiry — found by the store's scan (`ConversationStore::due`) and
//! carried out as ordinary commands on each conversation's owner, each re-checking its
//! precondition on the state its commit checks.
//!
//! Runs on: the queue executor of one node per interval (elected through the store).

use std::rc::{Rc, Weak};

use livechat_core::store::{ConversationStore, Cutoffs, Due};
use livechat_core::{Command, ExpireReason};

use super::engine::Chat;
use super::ids::now;

/// Scans at most this many due items per interval; the rest come next time.
const SCAN_LIMIT: usize = 1_000;

/// Sweeps every `chat.housekeeping.interval` until the engine is gone.
pub async fn run(chat: Weak<Chat>) {
    loop {
        let Some(interval) = chat.upgrade().map(|c| c.config().housekeeping.interval) else {
            return;
        };
        glommio::timer::sleep(interval).await;
        let Some(c) = chat.upgrade() else { return };
        // One node per interval: the lease lasts the interval, so nobody else sweeps in it.
        let lease = interval.as_millis().min(u128::from(u64::MAX)) as u64;
        if c.is_queue_executor() {
            match c.store().try_lead(lease).await {
                Ok(true) => sweep(&c).await,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "housekeeping election failed"),
            }
        }
    }
}

fn ago(now: livechat_core::Timestamp, d: std::time::Duration) -> livechat_core::Timestamp {
    now.plus_millis(-(d.as_millis().min(i64::MAX as u128) as i64))
}

/// One pass.
pub async fn sweep(chat: &Rc<Chat>) {
    let now = now();
    let cfg = chat.config();
    let cutoffs = Cutoffs {
        now,
        queued_before: ago(now, cfg.queue.max_wait),
        created_before: ago(now, cfg.conversation.max_duration),
        idle_before: ago(now, cfg.conversation.inactivity_timeout),
        closed_before: ago(now, cfg.conversation.retention),
        limit: SCAN_LIMIT,
    };
    let due = match chat.store().due(cutoffs).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "housekeeping scan failed");
            return;
        }
    };
    for item in due {
        let chat = chat.clone();
        glommio::spawn_local(async move {
            let result = match &item {
                Due::QueueTimeout(id) => chat
                    .command(
                        id.clone(),
                        Command::QueueTimeout {
                            enqueued_by: cutoffs.queued_before,
                        },
                    )
                    .await
                    .map(|_| ()),
                Due::Expire(id, why) => {
                    let why = *why;
                    chat.run(
                        id.clone(),
                        Box::new(move |m| {
                            // Still idle / still that old on the state the commit checks?
                            let holds = match why {
                                ExpireReason::Inactivity => m.updated_at <= cutoffs.idle_before,
                                ExpireReason::MaxDuration => m.created_at <= cutoffs.created_before,
                            };
                            Ok(holds.then_some(Command::Expire(why)))
                        }),
                    )
                    .await
                    .map(|_| ())
                }
                Due::Forget(id) => chat
                    .store()
                    .forget(id, cutoffs.closed_before)
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = result {
                tracing::debug!(?item, error = %e, "housekeeping step skipped");
            }
        })
        .detach();
    }
}
