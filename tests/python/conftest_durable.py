"""Helpers for test_durable_events.py: the `livechat serve` process, a small REST client for the
chat contract, /metrics, a chat socket (python-socketio), PostgreSQL scratch databases and
Redis key checks. Imported explicitly (not a pytest conftest: pytest only loads conftest.py).

Environment:
  LIVECHAT_CHAT_BIN   the `livechat` binary (default <repo>/target/debug/livechat)
  LIVECHAT_TEST_VERBOSE=1   copy the server's stderr to ours as it comes
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
import socketio

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "livechat"
STARTUP_TIMEOUT_S = 30
# SIGTERM flushes the Kafka producer for up to message-timeout + 1 s.
SHUTDOWN_TIMEOUT_S = 40
HTTP_TIMEOUT_S = 15
LISTENING_RE = re.compile(r"^listening on (http://([^\s/]+):(\d+))\s*$")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls `check()` until it returns something truthy (returned) or `timeout` passes
    (AssertionError naming `what` and the last value seen)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# TOML


def to_toml(config: dict) -> str:
    """`{"chat.kafka": {"message-timeout": "2s"}}` -> TOML text."""
    out = []
    for section, values in config.items():
        out.append(f"[{section}]")
        for k, v in values.items():
            if isinstance(v, bool):
                out.append(f"{k} = {'true' if v else 'false'}")
            elif isinstance(v, (int, float)):
                out.append(f"{k} = {v}")
            else:
                out.append(f'{k} = "{v}"')
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The livechat process


@dataclass
class Livechat:
    """A running `livechat serve`."""

    label: str
    url: str
    process: subprocess.Popen
    command: list
    config_text: str
    stderr_lines: list = field(default_factory=list)
    tmpdir: str = ""

    def stderr(self, tail: int = 200) -> str:
        return "".join(self.stderr_lines[-tail:])

    def api(self) -> "Api":
        return Api(self.url, self.label)

    def metrics(self) -> dict:
        """GET /metrics parsed: {name: float} for every `name value` line."""
        r = requests.get(self.url + "/metrics", timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 200, f"{self.label}: GET /metrics -> {r.status_code}: {r.text[:300]}"
        return parse_metrics(r.text)

    def metric(self, name: str) -> float:
        m = self.metrics()
        assert name in m, f"{self.label}: /metrics has no {name}; it has {sorted(m)}"
        return m[name]

    def close(self) -> int:
        """SIGTERM and wait; raises (with stderr) unless it exits 0 and was alive until now."""
        died_early = self.process.poll() is not None
        if not died_early:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(
                f"{self.label} did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM (killed)\n"
                f"--- stderr (tail) ---\n{self.stderr(60)}"
            )
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if died_early or code != 0:
            what = "exited during the test" if died_early else "did not exit cleanly on SIGTERM"
            raise RuntimeError(f"{self.label} {what} (code {code})\n--- stderr (tail) ---\n{self.stderr(60)}")
        return code


def start_livechat(
    *,
    label: str = "livechat",
    executors: int = 2,
    config: Optional[dict] = None,
    redis_url: Optional[str] = None,
    redis_prefix: Optional[str] = None,
    database_url: Optional[str] = None,
    kafka_brokers: Optional[str] = None,
    io_threads: Optional[int] = None,
    extra_args: tuple = (),
) -> Livechat:
    """Starts `livechat serve --listen 127.0.0.1:0` and returns once it printed its listening line."""
    binary = Path(os.environ.get("LIVECHAT_CHAT_BIN") or DEFAULT_BIN)
    if not binary.exists():
        raise RuntimeError(f"livechat binary not found: {binary}; `cargo build -p livechat-gateway` or set LIVECHAT_CHAT_BIN")
    config = {k: dict(v) for k, v in (config or {}).items()}
    if redis_prefix is not None:
        config.setdefault("chat.redis", {})["key-prefix"] = redis_prefix
    config_text = to_toml(config)
    tmpdir = tempfile.mkdtemp(prefix="livechat-durable-test-")
    config_file = Path(tmpdir) / "livechat.toml"
    config_file.write_text(config_text)
    # Every client comes from one loopback address: the per-address limits are off here
    # (tested in tests/tests/http_hardening.rs).
    cmd = [str(binary), "serve", "--listen", "127.0.0.1:0", "--executors", str(executors), "--config", str(config_file),
           "--max-connections-per-ip", "0", "--rest-rate", "0"]
    if "--drain-delay" not in extra_args:
        # No drain delay on SIGTERM: no balancer watches /readyz here (test_drain.py sets one).
        cmd += ["--drain-delay", "0ms"]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    if database_url:
        cmd += ["--database-url", database_url]
    if kafka_brokers:
        cmd += ["--kafka-brokers", kafka_brokers]
    if io_threads:
        cmd += ["--io-threads", str(io_threads)]
    cmd += list(extra_args)
    # Only what the test says: no chat settings inherited from the caller's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECHAT_CHAT_") and k != "LIVECHAT_CONFIG"}
    env.setdefault("LIVECHAT_LOG", "info")
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=env
    )
    stdout_lines: "queue.Queue[Optional[str]]" = queue.Queue()
    stderr_lines: list = []
    verbose = os.environ.get("LIVECHAT_TEST_VERBOSE") == "1"

    def pump_stdout():
        for line in proc.stdout:
            stdout_lines.put(line)
            if verbose:
                sys.stderr.write(f"[{label}] {line}")
        stdout_lines.put(None)

    def pump_stderr():
        for line in proc.stderr:
            stderr_lines.append(line)
            if verbose:
                sys.stderr.write(f"[{label}] {line}")

    threading.Thread(target=pump_stdout, daemon=True).start()
    threading.Thread(target=pump_stderr, daemon=True).start()

    def fail(msg: str):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise RuntimeError(
            f"{label}: {msg}\ncommand: {' '.join(cmd)}\n--- config ---\n{config_text}\n"
            f"--- stderr ---\n{''.join(stderr_lines[-100:]) or '(empty)'}"
        )

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail(f'did not print "listening on http://..." within {STARTUP_TIMEOUT_S}s')
        try:
            line = stdout_lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            fail(f"exited before listening (code {proc.wait()})")
        m = LISTENING_RE.match(line.rstrip("\n"))
        if m:
            return Livechat(label=label, url=m.group(1), process=proc, command=cmd, config_text=config_text,
                            stderr_lines=stderr_lines, tmpdir=tmpdir)


def parse_metrics(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) >= 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


# ---------------------------------------------------------------------------------------------
# REST


class ApiError(AssertionError):
    pass


class Api:
    """The chat REST contract (development auth: identities from headers). Methods named after
    the step assert 200 and return the JSON body; `*_raw` return the `requests.Response`."""

    def __init__(self, base: str, label: str = "livechat"):
        self.base = base
        self.label = label
        self.http = requests.Session()

    def request(self, method: str, path: str, *, json: Any = None, headers: Optional[dict] = None,
                params: Any = None) -> requests.Response:
        return self.http.request(method, self.base + path, json=json, headers=headers or {}, params=params,
                                 timeout=HTTP_TIMEOUT_S)

    def expect(self, status: int, method: str, path: str, **kw) -> Any:
        r = self.request(method, path, **kw)
        if r.status_code != status:
            raise ApiError(f"{self.label}: {method} {path} -> {r.status_code} (expected {status}): {r.text[:500]}")
        return r.json()

    # customer side
    def start_raw(self, customer_id: str, name: str = "Cy", channel: str = "web") -> requests.Response:
        return self.request("POST", "/api/conversations", json={"displayName": name, "channel": channel},
                            headers={"X-Participant-Id": customer_id})

    def start(self, customer_id: str, name: str = "Cy", channel: str = "web") -> dict:
        return self.expect(200, "POST", "/api/conversations", json={"displayName": name, "channel": channel},
                           headers={"X-Participant-Id": customer_id})

    def queue(self, conv_id: str, customer_id: str) -> dict:
        return self.expect(200, "POST", f"/api/conversations/{conv_id}/queue", json={},
                           headers={"X-Participant-Id": customer_id})

    def conversation_raw(self, conv_id: str) -> requests.Response:
        return self.request("GET", f"/api/conversations/{conv_id}")

    def conversation(self, conv_id: str) -> dict:
        return self.expect(200, "GET", f"/api/conversations/{conv_id}")

    def send(self, conv_id: str, customer_id: str, content: str, client_message_id: Optional[str] = None) -> dict:
        body = {"content": content}
        if client_message_id:
            body["clientMessageId"] = client_message_id
        return self.expect(200, "POST", f"/api/conversations/{conv_id}/messages", json=body,
                           headers={"X-Participant-Id": customer_id})

    def send_as_agent_raw(self, conv_id: str, agent_id: str, content: str) -> requests.Response:
        return self.request("POST", f"/api/conversations/{conv_id}/messages",
                            json={"content": content, "senderType": "AGENT"}, headers={"X-Agent-Id": agent_id})

    def send_as_agent(self, conv_id: str, agent_id: str, content: str) -> dict:
        return self.expect(200, "POST", f"/api/conversations/{conv_id}/messages",
                           json={"content": content, "senderType": "AGENT"}, headers={"X-Agent-Id": agent_id})

    def messages(self, conv_id: str) -> list:
        return self.expect(200, "GET", f"/api/conversations/{conv_id}/messages")

    # agent side
    def agent_queue(self) -> list:
        return self.expect(200, "GET", "/api/agent/queue", params={"page": 0, "size": 500},
                           headers={"X-Agent-Id": "queue-reader"})

    def accept_raw(self, conv_id: str, agent_id: str, name: str = "Ann") -> requests.Response:
        return self.request("POST", f"/api/agent/conversations/{conv_id}/accept", json={"displayName": name},
                            headers={"X-Agent-Id": agent_id})

    def accept(self, conv_id: str, agent_id: str, name: str = "Ann") -> dict:
        return self.expect(200, "POST", f"/api/agent/conversations/{conv_id}/accept", json={"displayName": name},
                           headers={"X-Agent-Id": agent_id})

    def close_raw(self, conv_id: str, agent_id: str, reason: str = "done") -> requests.Response:
        return self.request("POST", f"/api/agent/conversations/{conv_id}/close", json={"reason": reason},
                            headers={"X-Agent-Id": agent_id})

    def close(self, conv_id: str, agent_id: str, reason: str = "done") -> dict:
        return self.expect(200, "POST", f"/api/agent/conversations/{conv_id}/close", json={"reason": reason},
                           headers={"X-Agent-Id": agent_id})

    def agent_conversations_raw(self, agent_id: str, statuses=()) -> requests.Response:
        return self.request("GET", "/api/agent/conversations", params=[("status", s) for s in statuses],
                            headers={"X-Agent-Id": agent_id})

    def agent_conversations(self, agent_id: str, statuses=()) -> list:
        return self.expect(200, "GET", "/api/agent/conversations", params=[("status", s) for s in statuses],
                           headers={"X-Agent-Id": agent_id})


def burst(base_url: str, reqs: list, timeout: float = 30.0) -> list:
    """Sends many HTTP/1.1 requests at once: every connection is opened first, then each
    pre-encoded request is written in one tight loop (so they reach the server within a few
    milliseconds, not at the pace of a Python HTTP client), then the answers are read.

    `reqs`: [(method, path, headers, json_body)]. Returns [(status, body_text)] in order."""
    import json as _json
    import socket as _socket

    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    wire = []
    for method, path, headers, body in reqs:
        data = _json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
                "Content-Type: application/json", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        wire.append(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    socks = []
    try:
        for _ in wire:
            socks.append(_socket.create_connection((host, port), timeout=timeout))
        for sock, data in zip(socks, wire):
            sock.sendall(data)
        out = []
        for sock in socks:
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            raw = b"".join(chunks)
            head, _, body = raw.partition(b"\r\n\r\n")
            status_line = head.split(b"\r\n", 1)[0].decode()
            m = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
            if not m:
                raise AssertionError(f"not an HTTP response: {raw[:200]!r}")
            out.append((int(m.group(1)), body.decode(errors="replace")))
        return out
    finally:
        for sock in socks:
            sock.close()


def assert_error(r: requests.Response, status: int, code: str, what: str) -> dict:
    """`r` is `status` with the API's error body `{timestamp, error, code}` and that `code`."""
    assert r.status_code == status, f"{what}: -> {r.status_code} (expected {status}): {r.text[:500]}"
    assert "application/json" in r.headers.get("content-type", ""), f"{what}: content-type {r.headers.get('content-type')!r}"
    body = r.json()
    assert isinstance(body, dict), f"{what}: error body must be an object: {r.text}"
    assert body.get("code") == code, f"{what}: error code {body.get('code')!r} (expected {code!r}): {r.text}"
    assert isinstance(body.get("error"), str) and body["error"], f"{what}: error.error must be a non-empty string: {r.text}"
    assert isinstance(body.get("timestamp"), str), f"{what}: error.timestamp missing: {r.text}"
    return body


# ---------------------------------------------------------------------------------------------
# Chat socket (python-socketio)


class ChatSocket:
    """A chat Socket.IO client (websocket transport, no reconnection) joined to a conversation
    through the handshake query (`role`, `token`, `displayName`, `conversationId`)."""

    def __init__(self, url: str, *, role: str, token: str, display_name: str, conversation_id: str,
                 timeout: float = 10.0):
        self.timeout = timeout
        self.client = socketio.Client(reconnection=False)
        self.events: "queue.Queue[Any]" = queue.Queue()
        self.errors: list = []
        self.client.on("system:event", lambda e: self.events.put(e))
        self.client.on("system:error", lambda e: self.errors.append(e))
        qs = urlencode({"role": role, "token": token, "displayName": display_name, "conversationId": conversation_id})
        self.client.connect(f"{url}?{qs}", transports=["websocket"], wait_timeout=timeout)
        self.joined = self._wait_join()

    def _wait_join(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            if self.errors:
                raise AssertionError(f"chat socket refused: system:error {self.errors[0]!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no join system:event within {self.timeout}s")
            try:
                e = self.events.get(timeout=min(0.1, remaining))
            except queue.Empty:
                continue
            if isinstance(e, dict) and e.get("participant") and e.get("conversation"):
                return e

    def send(self, conversation_id: str, content: str, **extra) -> Any:
        """Emits `chat:message` and returns the ack (a stored ChatMessage, or `{error, code}`)."""
        return self.client.call("chat:message", {"conversationId": conversation_id, "content": content, **extra},
                                timeout=self.timeout)

    def close(self) -> None:
        self.client.disconnect()


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def create_scratch_database(admin_url: str, prefix: str = "lc_py_") -> str:
    """CREATE DATABASE <prefix><random> on the server of `admin_url`; returns its URL."""
    import psycopg

    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(admin_url, name)


def drop_scratch_database(admin_url: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def conversation_row(database_url: str, conv_id: str) -> Optional[dict]:
    """The `conversations` row of `conv_id` (instants as epoch milliseconds), or None."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, connect_timeout=10, row_factory=dict_row) as conn:
        return conn.execute(
            """SELECT id, status, customer_id, customer_name, agent_id, agent_name, channel, attributes, tags,
                      (extract(epoch from created_at) * 1000)::bigint AS created_ms,
                      (extract(epoch from updated_at) * 1000)::bigint AS updated_ms,
                      (extract(epoch from accepted_at) * 1000)::bigint AS accepted_ms,
                      (extract(epoch from closed_at) * 1000)::bigint AS closed_ms,
                      closed_by, close_reason, version
               FROM conversations WHERE id = %s""",
            (conv_id,),
        ).fetchone()


def all_conversation_ids(database_url: str) -> list:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=10) as conn:
        return sorted(r[0] for r in conn.execute("SELECT id FROM conversations").fetchall())


def count_rows(database_url: str, ids) -> int:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM conversations WHERE id = ANY(%s)", (list(ids),)).fetchone()[0]


# ---------------------------------------------------------------------------------------------
# Redis


def redis_exists(redis_url: str, key: str) -> bool:
    out = subprocess.run(["redis-cli", "-u", redis_url, "EXISTS", key], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError(f"redis-cli EXISTS {key} failed: {out.stderr}")
    return out.stdout.strip() == "1"


def redis_keys(redis_url: str, pattern: str) -> list:
    out = subprocess.run(["redis-cli", "-u", redis_url, "--scan", "--pattern", pattern], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"redis-cli --scan {pattern} failed: {out.stderr}")
    return [k for k in out.stdout.splitlines() if k]


def redis_conversation_ids(redis_url: str, prefix: str) -> list:
    """Ids of the conversations whose record (`<prefix>:conversation:{id}`) Redis holds."""
    pat = re.compile(re.escape(prefix) + r":conversation:\{([^}]+)\}$")
    return sorted(m.group(1) for k in redis_keys(redis_url, f"{prefix}:conversation:*") if (m := pat.match(k)))


def redis_delete_prefix(redis_url: str, prefix: str) -> None:
    keys = redis_keys(redis_url, f"{prefix}:*")
    for i in range(0, len(keys), 500):
        subprocess.run(["redis-cli", "-u", redis_url, "DEL", *keys[i:i + 500]], capture_output=True, timeout=30)


# ---------------------------------------------------------------------------------------------
# Timestamps


def iso_millis(value: Optional[str]) -> Optional[int]:
    """`2026-12-03T10:55:51.483Z` -> epoch milliseconds."""
    if value is None:
        return None
    from datetime import datetime, timezone

    dt = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))
