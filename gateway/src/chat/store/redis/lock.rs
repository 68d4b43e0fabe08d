//! Locks in Redis: a random owner token, a PX lease, compare-and-delete release, and a bounded
//! wait that ends in a clear error. Used only where one step spans Redis Cluster slots (a
//! conversation's commit that also changes the queue or an agent's slots) and to elect the
//! node that runs housekeeping for an interval.

use std::time::{Duration, Instant};

use super::scripts::Scripts;
use crate::chat::ids::new_uuid;
use crate::error::GatewayError;
use crate::redis::Redis;

/// A held lock; give it back with [`Lock::release`] (the lease frees it anyway if this node
/// dies).
#[derive(Debug)]
pub struct Lock {
    key: String,
    token: String,
}

/// How a lock is taken.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    /// The lease: the lock frees itself this long after it was taken.
    pub lease: Duration,
    /// How long to wait for it before giving up with a 503.
    pub wait: Duration,
}

impl Default for LockPolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(5),
            wait: Duration::from_secs(2),
        }
    }
}

impl Lock {
    /// Takes `key`, waiting at most `policy.wait`.
    pub async fn acquire(
        conn: &Redis,
        key: String,
        policy: LockPolicy,
    ) -> Result<Lock, GatewayError> {
        let token = new_uuid();
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            if Self::try_set(conn, &key, &token, policy.lease).await? {
                return Ok(Lock { key, token });
            }
            if started.elapsed() >= policy.wait {
                return Err(GatewayError::Busy(format!(
                    "{key} is held by another request for over {:?}; retry",
                    policy.wait
                )));
            }
            glommio::timer::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Takes `key` only if it is free now (housekeeping: whoever gets it runs).
    pub async fn try_acquire(
        conn: &Redis,
        key: String,
        lease: Duration,
    ) -> Result<Option<Lock>, GatewayError> {
        let token = new_uuid();
        Ok(Self::try_set(conn, &key, &token, lease)
            .await?
            .then_some(Lock { key, token }))
    }

    async fn try_set(
        conn: &Redis,
        key: &str,
        token: &str,
        lease: Duration,
    ) -> Result<bool, GatewayError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(lease.as_millis() as u64);
        let reply: Option<String> = conn.query(&cmd).await?;
        Ok(reply.is_some())
    }

    /// Gives the lock back if this owner still holds it (a lease that ran out may have passed
    /// it to someone else, whose lock stays).
    pub async fn release(self, conn: &Redis, scripts: &Scripts) -> Result<(), GatewayError> {
        let _: i64 = conn
            .eval(
                &scripts.unlock,
                &[self.key.as_str()],
                &[self.token.as_str()],
            )
            .await?;
        Ok(())
    }
}
