"""Graceful drain seen by python-socketio (README, "Operating livechat"): on SIGTERM a node
closes its sessions the way a lost transport ends, so a python-socketio client — polling or
WebSocket — takes it for a transport failure and starts reconnecting (behind a balancer it lands
on another node), instead of a "server disconnect", after which python-socketio never comes
back. The node exits 0.

Before the fix this tests, a polling client's parked GET was answered with the Engine.IO close
packet `1`, which python-socketio treats as the server saying goodbye: it stayed gone.

Needs target/debug/livechat (or LIVECHAT_CHAT_BIN); the embedded backend, nothing else.
Run: cd tests/python && python -m pytest -q test_drain.py
"""

from __future__ import annotations

import queue
import shutil

import pytest
import requests
import socketio

from conftest_durable import start_livechat

WAIT_S = 20.0


def _next(events: "queue.Queue", what: str):
    try:
        return events.get(timeout=WAIT_S)
    except queue.Empty:
        raise AssertionError(f"no {what} within {WAIT_S}s") from None


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_drained_node_leaves_python_socketio_clients_reconnecting(transport):
    node = start_livechat(label=f"drained node ({transport})", executors=2,
                          extra_args=("--drain-delay", "200ms"))
    client = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5)
    events: "queue.Queue" = queue.Queue()
    client.on("system:event", lambda e: events.put(("system:event", e)))
    client.on("disconnect", lambda reason=None: events.put(("disconnect", reason)))
    client.on("connect_error", lambda err=None: events.put(("connect_error", str(err))))
    try:
        created = requests.post(f"{node.url}/api/conversations", json={"channel": "web"}, timeout=10,
                                headers={"X-Participant-Id": "drain-customer", "X-Participant-Name": "Dee"})
        assert created.status_code == 200, created.text
        conv = created.json()
        client.connect(node.url, transports=[transport], wait_timeout=10,
                       auth={"role": "customer", "token": "drain-customer", "conversationId": conv["id"]})
        kind, joined = _next(events, "join system:event")
        assert kind == "system:event" and joined["conversation"]["id"] == conv["id"], joined

        node.process.send_signal(15)  # SIGTERM
        code = node.process.wait(timeout=WAIT_S)
        assert code == 0, f"the drained node exits 0, got {code}\n{node.stderr(40)}"

        kind, reason = _next(events, "disconnect")
        assert kind == "disconnect", (kind, reason)
        # Anything but a server goodbye: python-socketio reconnects after these.
        assert reason in ("transport error", "transport close"), f"disconnect reason {reason!r}"
        # ... and it does try: here no node is left, so the attempt fails (a balancer would
        # have sent it to another node).
        kind, detail = _next(events, "reconnection attempt")
        assert kind == "connect_error", (kind, detail)
    finally:
        client.disconnect()
        if node.process.poll() is None:
            node.close()
        else:
            shutil.rmtree(node.tmpdir, ignore_errors=True)
