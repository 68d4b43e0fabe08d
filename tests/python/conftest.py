"""Fixtures for the python-socketio client tests.

`conformance_server` starts the gateway's `conformance` example once per
module and executor count (1 and 2) and stops it with SIGTERM afterwards.

Environment:
  LIVECHAT_BIN_DIR     directory holding the example binaries
                       (default: <repo>/target/debug/examples)
  LIVECHAT_REF_SERVER  path to a Node reference server script; when set,
                       `node <script> conformance <args...>` is started instead
"""

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import socketio

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 10
EVENT_TIMEOUT_S = float(os.environ.get("LIVECHAT_EVENT_TIMEOUT_S", "5"))
LISTENING_RE = re.compile(r"^listening on (http://([^\s/]+):(\d+))\s*$")

USING_REFERENCE_SERVER = bool(os.environ.get("LIVECHAT_REF_SERVER"))


@dataclass
class Server:
    url: str
    port: int
    executors: int
    process: subprocess.Popen
    stderr_lines: list

    def stderr(self) -> str:
        return "".join(self.stderr_lines[-200:])

    def close(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"server did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM (killed)")


def _command(name: str, args: list) -> list:
    ref = os.environ.get("LIVECHAT_REF_SERVER")
    if ref:
        node = shutil.which("node") or "node"
        return [node, ref, name, *args]
    bin_dir = Path(os.environ.get("LIVECHAT_BIN_DIR") or REPO_ROOT / "target" / "debug" / "examples")
    binary = bin_dir / name
    if not binary.exists():
        raise RuntimeError(
            f"server binary not found: {binary}; build it with `cargo build --examples` "
            "or set LIVECHAT_BIN_DIR (or LIVECHAT_REF_SERVER)"
        )
    return [str(binary), *args]


def start_server(name: str, executors: int, extra_args=()) -> Server:
    """Starts `name` and returns once it printed its listening line."""
    args = ["--listen", "127.0.0.1:0", "--executors", str(executors), *extra_args]
    cmd = _command(name, args)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    stdout_lines: "queue.Queue[str | None]" = queue.Queue()
    stderr_lines: list = []

    # Both pipes are drained for the whole lifetime: a full pipe would block the server.
    def pump_stdout():
        for line in proc.stdout:
            stdout_lines.put(line)
        stdout_lines.put(None)

    def pump_stderr():
        for line in proc.stderr:
            stderr_lines.append(line)

    threading.Thread(target=pump_stdout, daemon=True).start()
    stderr_thread = threading.Thread(target=pump_stderr, daemon=True)
    stderr_thread.start()

    def fail(msg: str):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        stderr_thread.join(timeout=2)
        stderr = "".join(stderr_lines[-200:]) or "(empty)"
        raise RuntimeError(f"{msg}\ncommand: {' '.join(cmd)}\n--- server stderr ---\n{stderr}")

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail(f'server did not print "listening on http://..." within {STARTUP_TIMEOUT_S}s')
        try:
            line = stdout_lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            fail(f"server exited before listening (code {proc.wait()})")
        m = LISTENING_RE.match(line.rstrip("\n"))
        if m:
            return Server(url=m.group(1), port=int(m.group(3)), executors=executors, process=proc,
                          stderr_lines=stderr_lines)


@pytest.fixture(scope="module", params=[1, 2], ids=lambda n: f"executors={n}")
def conformance_server(request):
    server = start_server("conformance", request.param)
    yield server
    died_early = server.process.poll() is not None
    code = server.close()
    if died_early or code != 0:
        what = "exited during the tests" if died_early else "did not exit cleanly on SIGTERM"
        raise RuntimeError(f"conformance {what} (code {code})\n--- server stderr (tail) ---\n{server.stderr()}")


class EventQueue:
    """Collects occurrences of one event; `get()` waits with a timeout."""

    def __init__(self, client: socketio.Client, event: str, namespace: str = "/"):
        self.event = event
        self._q: "queue.Queue[tuple]" = queue.Queue()
        self.received: list = []

        def handler(*args):
            self.received.append(args)
            self._q.put(args)

        client.on(event, handler, namespace=namespace)

    def get(self, timeout: float = EVENT_TIMEOUT_S) -> tuple:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f'timed out after {timeout}s waiting for "{self.event}"') from None

    def get_until(self, pred, timeout: float = EVENT_TIMEOUT_S) -> tuple:
        """Returns the first occurrence (from now on) whose args satisfy `pred`."""
        while True:
            args = self.get(timeout)
            if pred(*args):
                return args


@pytest.fixture
def make_client():
    """Factory: `make_client(url, transports=[...], auth=None, events=[...])` -> (client, {event: EventQueue}).

    Handlers are registered before connecting, so the server's `auth` event is
    never missed. All clients are disconnected at teardown.
    """
    clients = []

    def factory(url, transports, auth=None, events=(), namespaces=None):
        client = socketio.Client(reconnection=False)
        clients.append(client)
        queues = {e: EventQueue(client, e) for e in ("auth", *events)}
        client.connect(url, transports=transports, auth=auth, namespaces=namespaces, wait_timeout=EVENT_TIMEOUT_S)
        return client, queues

    yield factory
    for client in clients:
        client.disconnect()
