//! The periodic sweep: queue max-wait, inactivity and max-duration closes, retention of
//! closed conversations, presence expiry. One task per executor, over what that executor owns.

use std::rc::Weak;

use super::engine::Chat;

/// Sweeps every `chat.housekeeping.interval` until the engine is gone.
pub async fn run(chat: Weak<Chat>) {
    loop {
        let Some(interval) = chat.upgrade().map(|c| c.config().housekeeping.interval) else {
            return;
        };
        glommio::timer::sleep(interval).await;
        let Some(c) = chat.upgrade() else { return };
        c.sweep();
    }
}
