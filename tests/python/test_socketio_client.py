"""python-socketio client against the `conformance` example (executors 1 and 2).

Connect over websocket and polling (auth echoed), emit with ack via `call`,
binary echo, the server asking the client for an ack, unknown namespaces, and
a room broadcast received by every member. Waits use queues with timeouts,
never sleeps.
"""

import pytest
import socketio

from conftest import EVENT_TIMEOUT_S

TRANSPORTS = [pytest.param(["websocket"], id="websocket"), pytest.param(["polling"], id="polling")]


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_connect_receives_empty_auth(conformance_server, make_client, transports):
    client, events = make_client(conformance_server.url, transports)
    assert events["auth"].get() == ({},)
    assert client.transport() == transports[0]
    assert client.get_sid("/")


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_connect_auth_payload_is_echoed(conformance_server, make_client, transports):
    _, events = make_client(conformance_server.url, transports, auth={"token": "123"})
    assert events["auth"].get() == ({"token": "123"},)


def test_polling_upgrades_to_websocket(conformance_server, make_client):
    client, events = make_client(conformance_server.url, ["polling", "websocket"])
    assert events["auth"].get() == ({},)
    # python-engineio upgrades during connect() when websocket is allowed.
    assert client.transport() == "websocket"
    assert client.call("message-with-ack", "upgraded", timeout=EVENT_TIMEOUT_S) == "upgraded"


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_emit_with_ack(conformance_server, make_client, transports):
    client, _ = make_client(conformance_server.url, transports)
    assert client.call("message-with-ack", "one", timeout=EVENT_TIMEOUT_S) == "one"
    args = ("hello", 42, {"nested": {"list": [1, "two", None, True]}}, "ünïcödé ✓ 😀")
    assert tuple(client.call("message-with-ack", args, timeout=EVENT_TIMEOUT_S)) == args


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_echo_and_binary(conformance_server, make_client, transports):
    client, events = make_client(conformance_server.url, transports, events=["message-back"])
    client.emit("message", ("text ✓", {"n": 1.5}))
    assert events["message-back"].get() == ("text ✓", {"n": 1.5})
    blob = bytes(range(256))
    client.emit("message", ("label", blob, {"inner": b"\x00\x01"}))
    assert events["message-back"].get() == ("label", blob, {"inner": b"\x00\x01"})


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_server_asks_client_for_ack(conformance_server, make_client, transports):
    asked = []

    client, events = make_client(conformance_server.url, transports, events=["ask-result"])

    @client.on("ask")
    def on_ask(*args):
        asked.append(args)
        return "pong", {"n": 1}  # the return value is the ack

    client.emit("ask-ack", ("ping", {"seq": 7}))
    assert events["ask-result"].get() == ({"ok": True, "args": ["pong", {"n": 1}]},)
    assert asked == [("ping", {"seq": 7})]


def test_unknown_namespace_is_refused(conformance_server):
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data), namespace="/nope")
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(conformance_server.url, namespaces=["/nope"], transports=["websocket"],
                           wait_timeout=EVENT_TIMEOUT_S)
    finally:
        client.disconnect()
    assert errors == [{"message": "Invalid namespace"}]


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_room_broadcast(conformance_server, make_client, transports):
    url = conformance_server.url
    alice, a_events = make_client(url, transports, events=["room-msg", "direct"])
    bob, b_events = make_client(url, transports, events=["room-msg", "direct"])
    carol, c_events = make_client(url, transports, events=["room-msg", "direct"])  # not a member

    for member in (alice, bob):
        assert member.call("join", "py-room", timeout=EVENT_TIMEOUT_S) is True

    assert alice.call("to-room", ("py-room", "hi room", {"from": "alice"}), timeout=EVENT_TIMEOUT_S) is True
    assert a_events["room-msg"].get() == ("hi room", {"from": "alice"})  # sender included
    assert b_events["room-msg"].get() == ("hi room", {"from": "alice"})

    # Barrier: once carol got a direct marker sent after the broadcast, she
    # would already have received the room message if she (wrongly) got it.
    assert alice.call("to-socket", (carol.get_sid("/"), "marker"), timeout=EVENT_TIMEOUT_S) is True
    assert c_events["direct"].get() == ("marker",)
    assert c_events["room-msg"].received == []
    assert a_events["room-msg"].received == [("hi room", {"from": "alice"})]
    assert b_events["room-msg"].received == [("hi room", {"from": "alice"})]
