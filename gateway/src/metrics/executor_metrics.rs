//! [`ExecutorMetrics`]: the counters one executor bumps on its hot paths — plain `Cell`s, no
//! atomics, no allocation — read into an [`ExecutorSnapshot`] when a scrape asks.
//!
//! Lives on: every executor, one each, inside its `Node` (`Node::metrics`).

use std::cell::Cell;

use super::snapshot::ExecutorSnapshot;

/// How `POST /api/agent/conversations/{id}/accept` ended (its HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// 200: the agent got the conversation.
    Accepted,
    /// 409: another agent (or another step) came first.
    Conflict,
    /// 410: no longer queued, or closed.
    Gone,
    /// 429: the agent holds its maximum of conversations.
    Cap,
}

impl AcceptOutcome {
    /// Every outcome, in label order.
    pub const ALL: [AcceptOutcome; 4] = [Self::Accepted, Self::Conflict, Self::Gone, Self::Cap];

    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Conflict => "conflict",
            Self::Gone => "gone",
            Self::Cap => "cap",
        }
    }

    /// The outcome an accept answered with `status` stands for (`None`: another refusal,
    /// such as 403 or 503, which the request counters of the callers' own tools see).
    pub fn of_status(status: u16) -> Option<AcceptOutcome> {
        match status {
            200 => Some(Self::Accepted),
            409 => Some(Self::Conflict),
            410 => Some(Self::Gone),
            429 => Some(Self::Cap),
            _ => None,
        }
    }
}

/// One executor's counters. Each is bumped by code running on this executor only, so a
/// `Cell` is enough; a scrape reads them on the same executor (see `metrics::gather`).
///
/// Lives on: the executor of the `Node` that holds it.
#[derive(Debug, Default)]
pub struct ExecutorMetrics {
    messages_stored: Cell<u64>,
    deliveries: Cell<u64>,
    acks: Cell<u64>,
    accepts: [Cell<u64>; 4],
    pubsub_in: Cell<u64>,
    pubsub_out: Cell<u64>,
}

fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

impl ExecutorMetrics {
    /// `n` messages committed by this (owner) executor, system messages included.
    pub fn messages_stored(&self, n: usize) {
        add(&self.messages_stored, n as u64);
    }

    /// `n` sockets of this executor were handed a `chat:message`.
    pub fn delivered(&self, n: usize) {
        add(&self.deliveries, n as u64);
    }

    /// One Socket.IO acknowledgement sent to a client.
    pub fn acked(&self) {
        add(&self.acks, 1);
    }

    /// One accept answered with `outcome`.
    pub fn accepted(&self, outcome: AcceptOutcome) {
        add(&self.accepts[outcome as usize], 1);
    }

    /// One Pub/Sub message received from Redis.
    pub fn pubsub_received(&self) {
        add(&self.pubsub_in, 1);
    }

    /// `n` messages published to Redis Pub/Sub (by the scripts this executor ran).
    pub fn pubsub_published(&self, n: usize) {
        add(&self.pubsub_out, n as u64);
    }

    /// The counters, into a fresh snapshot (the gauges are the collector's to fill).
    pub fn snapshot(&self) -> ExecutorSnapshot {
        ExecutorSnapshot {
            messages_stored: self.messages_stored.get(),
            deliveries: self.deliveries.get(),
            acks: self.acks.get(),
            accepts: std::array::from_fn(|i| self.accepts[i].get()),
            pubsub_in: self.pubsub_in.get(),
            pubsub_out: self.pubsub_out.get(),
            ..ExecutorSnapshot::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_reaches_the_snapshot() {
        let m = ExecutorMetrics::default();
        m.messages_stored(3);
        m.delivered(2);
        m.delivered(5);
        m.acked();
        m.accepted(AcceptOutcome::Accepted);
        m.accepted(AcceptOutcome::Conflict);
        m.accepted(AcceptOutcome::Conflict);
        m.pubsub_received();
        m.pubsub_published(4);
        let s = m.snapshot();
        assert_eq!(s.messages_stored, 3);
        assert_eq!(s.deliveries, 7);
        assert_eq!(s.acks, 1);
        assert_eq!(s.accepts, [1, 2, 0, 0]);
        assert_eq!((s.pubsub_in, s.pubsub_out), (1, 4));
        assert_eq!(s.sockets, 0, "gauges are the collector's");
    }

    #[test]
    fn accept_statuses_map_to_outcomes() {
        let got: Vec<_> = [200, 409, 410, 429, 503]
            .into_iter()
            .map(AcceptOutcome::of_status)
            .collect();
        assert_eq!(
            got,
            [
                Some(AcceptOutcome::Accepted),
                Some(AcceptOutcome::Conflict),
                Some(AcceptOutcome::Gone),
                Some(AcceptOutcome::Cap),
                None
            ]
        );
        for (i, o) in AcceptOutcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "ALL is in index order");
        }
    }
}
