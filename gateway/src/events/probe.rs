//! Whether the Kafka brokers answer, for `/readyz`: a metadata request for the lifecycle topic
//! on the sink's own producer client (no extra connections), run on a blocking thread of the
//! IO pool because librdkafka's call blocks. Answers are cached for [`FRESH`], so balancers
//! probing every node every second cost the brokers one request per node per [`FRESH`].
//!
//! Lives on: shared by the executors (which await the answer over a flume channel) and the
//! sink on the IO pool (which installs each producer it builds).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{Producer, ThreadedProducer};

use super::kafka::Reports;

/// How long an answer is reused.
pub const FRESH: Duration = Duration::from_secs(1);

/// How long the brokers get to answer.
pub const TIMEOUT: Duration = Duration::from_secs(1);

type Answer = Result<(), String>;

/// The probe of one node's Kafka sink.
pub struct KafkaProbe {
    topic: String,
    handle: tokio::runtime::Handle,
    producer: Mutex<Option<Arc<ThreadedProducer<Reports>>>>,
    last: Mutex<Option<(Instant, Answer)>>,
}

impl std::fmt::Debug for KafkaProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProbe")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaProbe {
    /// A probe asking about `topic`, running its requests on `handle`'s blocking threads.
    pub fn new(topic: String, handle: tokio::runtime::Handle) -> Arc<Self> {
        Arc::new(Self {
            topic,
            handle,
            producer: Mutex::new(None),
            last: Mutex::new(None),
        })
    }

    /// The producer to ask through from now on (`None`: the sink has stopped).
    pub fn install(&self, producer: Option<Arc<ThreadedProducer<Reports>>>) {
        *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = producer;
    }

    /// Whether the brokers answered a metadata request within [`TIMEOUT`] (at most [`FRESH`]
    /// ago).
    pub async fn check(self: &Arc<Self>) -> Answer {
        if let Some((at, answer)) = &*self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < FRESH {
                return answer.clone();
            }
        }
        let producer = self
            .producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| "the Kafka producer has stopped".to_owned())?;
        let (tx, rx) = flume::bounded(1);
        let me = self.clone();
        self.handle.spawn_blocking(move || {
            let answer = producer
                .client()
                .fetch_metadata(Some(&me.topic), TIMEOUT)
                .map(|_| ())
                .map_err(|e| format!("no metadata from the brokers: {e}"));
            *me.last.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((Instant::now(), answer.clone()));
            let _ = tx.send(answer);
        });
        rx.recv_async()
            .await
            .unwrap_or_else(|_| Err("the Kafka probe did not answer".into()))
    }
}
