//! [`ExecutorSnapshot`]: what one executor reports to a scrape — its counters and its share of
//! the gauges — and how the scrape sums them into the node's numbers.
//!
//! Lives on: anywhere (plain `Send` data; it travels over the mesh's reply channel).

use super::histogram::Histogram;

/// One executor's numbers at one instant, or (after [`ExecutorSnapshot::add`]) the node's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutorSnapshot {
    /// Messages committed (system messages included).
    pub messages_stored: u64,
    /// `chat:message`s handed to sockets.
    pub deliveries: u64,
    /// Socket.IO acknowledgements sent.
    pub acks: u64,
    /// Accepts by outcome, in `AcceptOutcome::ALL` order.
    pub accepts: [u64; 4],
    /// Redis Pub/Sub messages received.
    pub pubsub_in: u64,
    /// Redis Pub/Sub messages published (by scripts this executor ran).
    pub pubsub_out: u64,
    /// Redis command round trips.
    pub redis_latency: Histogram,
    /// Redis requests that failed (error reply, timeout, connection lost, refused).
    pub redis_errors: u64,
    /// Open Engine.IO sessions on long-polling.
    pub polling: u64,
    /// Open Engine.IO sessions on WebSocket.
    pub websocket: u64,
    /// Connected (or connecting) Socket.IO sockets.
    pub sockets: u64,
    /// Rooms with at least one member on this executor.
    pub rooms: u64,
    /// Conversations by status (`OPEN`, `QUEUED`, `ASSIGNED`, `CLOSED`), as far as this
    /// executor counts them (embedded: the conversations it owns; Redis: the queue executor
    /// reports the shared totals, the others `None`; `None` everywhere: not known).
    pub conversations: Option<[u64; 4]>,
    /// Queue length and the oldest entry's wait in milliseconds: reported by the queue
    /// executor only.
    pub queue: Option<(u64, u64)>,
}

impl ExecutorSnapshot {
    /// Adds another executor's numbers. The queue gauges come from one executor: the first
    /// report that has them wins.
    pub fn add(&mut self, o: &ExecutorSnapshot) {
        self.messages_stored += o.messages_stored;
        self.deliveries += o.deliveries;
        self.acks += o.acks;
        for (a, b) in self.accepts.iter_mut().zip(o.accepts) {
            *a += b;
        }
        self.pubsub_in += o.pubsub_in;
        self.pubsub_out += o.pubsub_out;
        self.redis_latency.add(&o.redis_latency);
        self.redis_errors += o.redis_errors;
        self.polling += o.polling;
        self.websocket += o.websocket;
        self.sockets += o.sockets;
        self.rooms += o.rooms;
        self.conversations = match (self.conversations, o.conversations) {
            (Some(mut a), Some(b)) => {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += b;
                }
                Some(a)
            }
            (a, b) => a.or(b),
        };
        self.queue = self.queue.or(o.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_sum_and_the_queue_comes_from_one_executor() {
        let mut a = ExecutorSnapshot {
            messages_stored: 2,
            accepts: [1, 0, 0, 0],
            websocket: 3,
            conversations: Some([1, 0, 1, 0]),
            ..ExecutorSnapshot::default()
        };
        a.redis_latency.counts[0] = 4;
        let mut b = ExecutorSnapshot {
            messages_stored: 5,
            accepts: [0, 1, 0, 0],
            polling: 1,
            websocket: 1,
            conversations: Some([0, 2, 0, 1]),
            queue: Some((2, 1500)),
            ..ExecutorSnapshot::default()
        };
        b.redis_latency.counts[0] = 1;
        a.add(&b);
        assert_eq!(a.messages_stored, 7);
        assert_eq!(a.accepts, [1, 1, 0, 0]);
        assert_eq!((a.polling, a.websocket), (1, 4));
        assert_eq!(a.conversations, Some([1, 2, 1, 1]));
        assert_eq!(a.queue, Some((2, 1500)));
        assert_eq!(a.redis_latency.count(), 5);
        a.add(&ExecutorSnapshot::default());
        assert_eq!(
            a.queue,
            Some((2, 1500)),
            "an executor without the queue changes nothing"
        );
        assert_eq!(a.conversations, Some([1, 2, 1, 1]));
        let mut none = ExecutorSnapshot::default();
        none.add(&ExecutorSnapshot::default());
        assert_eq!(none.conversations, None, "nobody counted them");
    }
}
