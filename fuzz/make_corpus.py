#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the inputs the tests use.

String and byte-string literals are taken from the unit / integration tests named below (so
the seeds follow the tests when they change), filtered per target and framed the way each
target reads its input (a mode byte, a max-payload selector ...); a few inputs the tests build
programmatically (WebSocket frames, chat payloads from tests/js) are built here the same way.
Each file is named after a hash of its content, so re-running is idempotent.

Usage: python3 fuzz/make_corpus.py   (from anywhere; rewrites fuzz/corpus/)
"""

import hashlib
import json
import re
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

def unescape(s: str) -> bytes:
    """Decodes Rust string escapes into bytes (UTF-8 for chars)."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = s[i + 1]
        i += 2
        if n == "n":
            out += b"\n"
        elif n == "r":
            out += b"\r"
        elif n == "t":
            out += b"\t"
        elif n == "0":
            out += b"\0"
        elif n in "\\\"'":
            out += n.encode()
        elif n == "x":
            out.append(int(s[i : i + 2], 16))
            i += 2
        elif n == "u":
            end = s.index("}", i)
            out += chr(int(s[i + 1 : end], 16)).encode()
            i = end + 1
        elif n == "\n":  # line continuation
            while i < len(s) and s[i] in " \t\n":
                i += 1
        else:
            out += ("\\" + n).encode()
    return bytes(out)


CHAR = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'")
RAW = re.compile(r'b?r(#*)"')


def tokens(text: str):
    """Yields (kind, value) for the string literals of Rust source, and ("concat", list) for
    the literals joined by one `concat!(...)`. Comments and char literals are skipped."""
    i, n = 0, len(text)
    concat = None  # literals of the concat! being read, and its paren depth
    depth = 0
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if text.startswith("concat!(", i):
            concat, depth = [], 1
            i += len("concat!(")
            continue
        if concat is not None and c in "()":
            depth += 1 if c == "(" else -1
            if depth == 0:
                yield ("concat", b"".join(concat))
                concat = None
            i += 1
            continue
        if c == "'":
            # A char literal ('x', '\n', '\u{..}') or a lifetime ('a): skip either.
            m = CHAR.match(text, i)
            i += len(m.group(0)) if m else 1
            continue
        m = RAW.match(text, i)
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + m.group(1)
            j = text.index(close, i + len(m.group(0)))
            value = text[i + len(m.group(0)) : j].encode()
            i = j + len(close)
        elif c == '"' or (c == "b" and text.startswith('b"', i) and not (text[i - 1].isalnum() or text[i - 1] == "_")):
            j = i + (2 if c == "b" else 1)
            start = j
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            value = unescape(text[start:j])
            i = j + 1
        else:
            i += 1
            continue
        if concat is not None:
            concat.append(value)
        else:
            yield ("str", value)


def literals(*paths: str, tests_only: bool = True) -> list[bytes]:
    """Every string literal (a `concat!` of literals counting as one) in the files, after
    `mod tests` for files that hold code too."""
    found = []
    for p in paths:
        text = (ROOT / p).read_text()
        if tests_only and "mod tests" in text and not p.endswith("_tests.rs"):
            text = text[text.index("mod tests") :]
        found += [v for _, v in tokens(text)]
    return found


def write(target: str, items) -> None:
    d = CORPUS / target
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    seen = set()
    for data in items:
        h = hashlib.sha1(data).hexdigest()[:16]
        if h in seen:
            continue
        seen.add(h)
        (d / h).write_bytes(data)
    print(f"{target}: {len(seen)} seeds")


def http_request():
    lits = literals("gateway/src/http/request.rs", "tests/tests/bad_input.rs", tests_only=False)
    fill = {b"{addr}": b"127.0.0.1:1", b"{SIO_PATH}": b"/socket.io/", b"{}": b"/socket.io/?EIO=4&transport=polling"}
    requests, chunked = [], []
    for l in lits:
        if b"\r\n" not in l or len(l) > 2000:
            continue
        for k, v in fill.items():
            l = l.replace(k, v)
        if re.match(rb"^[A-Z]+ |^\x00|^\x16", l):
            requests.append(l)  # a request (head, maybe a body)
        elif re.match(rb"^[A-Za-z-]+ ?:", l):
            # A header line of the smuggling tests: inside a POST with a chunked-looking body.
            requests.append(b"POST /api/x HTTP/1.1\r\nHost: a\r\n" + l.rstrip(b"\r\n")
                            + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        else:
            chunked.append(l)  # a chunked body (or its framing)
    requests += [
        b"POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 12\r\n\r\n4hello\x1e2probe",
        b"GET /api/conversations/c1/messages?limit=50&after=3&status=OPEN&status=QUEUED HTTP/1.1"
        b"\r\nHost: x\r\nAuthorization: Bearer abc\r\nX-Participant-Id: u%201\r\n\r\n",
    ]
    # Mode 0: request + body; mode 1 (limit 25*4 bytes): a chunked body on its own.
    write("http_request", [b"\x00" + r for r in requests] + [b"\x01\x19" + c for c in chunked])


def engineio_packet():
    lits = literals("gateway/src/engineio/packet.rs")
    lits += literals("tests/tests/bad_input.rs", tests_only=False)
    seeds = [
        l
        for l in lits
        if 0 < len(l) < 300
        and (
            (l[:1] in b"0123456" and not re.match(rb"^\d+ [A-Za-z]", l) and b"\r\n" not in l)
            or re.fullmatch(rb"b[A-Za-z0-9+/=!]*", l)
        )
        and b"{arg}" not in l
    ]
    seeds += [b"4hello\x1ebAQIDBA==\x1e2", b"2probe", b"5", b"6", b"1", b"b", b"42[\"a\"]\x1e3"]
    write("engineio_packet", seeds)


def client_frame(fin: bool, op: int, payload: bytes, mask=b"\x37\xfa\x21\x3d") -> bytes:
    """Mirror of `client_frame` in gateway/src/engineio/ws_frame_tests.rs."""
    out = bytearray([(0x80 if fin else 0) | op])
    n = len(payload)
    if n < 126:
        out.append(0x80 | n)
    elif n < 65536:
        out.append(0x80 | 126)
        out += struct.pack(">H", n)
    else:
        out.append(0x80 | 127)
        out += struct.pack(">Q", n)
    out += mask
    out += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(out)


def ws_frame():
    default = b"\xff\xfe"  # max_payload selector: the gateway default (1 MB)
    streams = [
        client_frame(True, 1, b'42["hi"]') + client_frame(True, 9, b"p") + client_frame(True, 10, b""),
        client_frame(True, 8, b""),
        client_frame(True, 8, b"\x03\xe8bye"),
        client_frame(True, 2, bytes(range(200))),
        client_frame(True, 1, b"x" * 300),
        client_frame(True, 2, b"y" * 70000),
        client_frame(False, 1, b"frag") + client_frame(True, 9, b"mid") + client_frame(True, 0, b"mented"),
        client_frame(False, 2, b"\x00\x01") + client_frame(False, 0, b"\x02") + client_frame(True, 0, b""),
        client_frame(True, 1, b"a") + client_frame(True, 1, b"b"),
        client_frame(True, 1, "héllo".encode()),
        # Refused: reserved bits, unknown opcode, unmasked, fragmented ping, stray
        # continuation, bad UTF-8, one-byte close.
        bytes([0xC1]) + client_frame(True, 1, b"x")[1:],
        client_frame(True, 3, b"x"),
        bytes([0x81, 0x01]) + b"x",
        client_frame(False, 9, b"x"),
        client_frame(True, 0, b"x"),
        client_frame(True, 1, b"\xff\xfe"),
        client_frame(True, 8, b"\x03"),
        client_frame(False, 1, b"a") + client_frame(True, 1, b"b"),
    ]
    seeds = [default + bytes([i * 37 % 256]) + s for i, s in enumerate(streams) if len(s) < 1000]
    # Too big from the header, with a small max_payload (16 bytes).
    seeds.append(b"\x00\x10\x05" + client_frame(True, 1, b"z" * 17))
    seeds.append(b"\x00\x10\x06" + client_frame(False, 1, b"z" * 10) + client_frame(True, 0, b"z" * 10))
    # A 64-bit length header that announces more than we will ever buffer.
    seeds.append(b"\xff\xff\x07" + bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 40) + b"mask")
    write("ws_frame", seeds)


def socketio_packet():
    lits = literals("gateway/src/socketio/packet_tests.rs")
    seeds = [l for l in lits if 0 < len(l) < 300 and l[:1] in b"0123456"]
    # Engine.IO messages from the integration tests, without their `4`.
    for l in literals("tests/tests/bad_input.rs", tests_only=False):
        if l.startswith(b"4") and len(l) > 1 and l[1:2] in b"0123456" and b"{arg}" not in l:
            seeds.append(l[1:])
    # Binary events / acks followed by their attachment frames.
    seeds += [
        b'51-["upload",{"_placeholder":true,"num":0}]\x1e\x01\x02\x03',
        b'52-/chat,7["two",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]\x1ea\x1eb',
        b'61-12[{"_placeholder":true,"num":0}]\x1e\xff',
        b'50-["none"]',
        b'510-["max",1]',
    ]
    write("socketio_packet", seeds)


def chat_payload():
    wire_lits = [
        l
        for l in literals(*(f"gateway/src/chat/wire/{f}" for f in (
            "message.rs", "conversation.rs", "participant.rs", "queue.rs", "timestamp.rs",
            "notice.rs", "event.rs", "system_event.rs")))
        if l[:1] in b'{["' and len(l) > 2
    ]
    # Every wire literal, for the decoder it most likely is (the mode numbers are the
    # `match` in fuzz_targets/chat_payload.rs).
    seeds = []
    for l in wire_lits:
        if l.startswith(b"{") and b'"seq"' in l and b'"content"' in l:
            seeds.append(b"\x07" + l)
        elif l.startswith(b"{") and b'"status"' in l:
            seeds.append(b"\x08" + l)
        elif l.startswith(b"{") and b'"displayName"' in l:
            seeds.append(b"\x09" + l)
        elif l.startswith(b"{") and b'"enqueuedAt"' in l:
            seeds.append(b"\x0a" + l)
        elif l.startswith(b"{") and b'"position"' in l:
            seeds.append(b"\x0b" + l)
        elif l.startswith(b'"') and re.match(rb'"\d{4}-', l):
            seeds.append(b"\x0d" + l)
        elif l.startswith(b'"') and l.isupper():
            seeds += [b"\x0c" + l, b"\x10" + l, b"\x11" + l, b"\x12" + l]
    seeds.append(b"\x0e[" + next(s[1:] for s in seeds if s[:1] == b"\x07") + b"]")
    # chat:message payloads as tests/js sends them (Client.send), and the REST bodies.
    msgs = [
        {"conversationId": "0b0e-4f_x", "content": "pay my bill", "clientMessageId": "cm-1"},
        {"content": "hello?"},
        {"conversationId": "c1", "content": ""},
        {"conversationId": "c1", "content": "big", "metadata": {"blob": "z" * 40}},
        {"conversationId": "c1", "content": "deep", "metadata": {"a": [[[[{"b": [1]}]]]]}},
        {"conversationId": "c1", "content": "esc \u001b[2J", "type": "event"},
        {"conversationId": "a/b", "content": "x", "type": "SYSTEM"},
    ]
    seeds += [b"\x00" + json.dumps(m).encode() for m in msgs]
    seeds += [
        b'\x01{"role":"agent","token":"t","displayName":"Ann","lastSeq":7,"conversationId":"c1"}',
        b'\x01{"fingerprint":"fp 1","lastSeq":"-1","scope":"queue"}',
        b'\x02{"channel":"web","displayName":"Cy","locale":"de-DE","nested":{"x":[1,2.5,null]}}',
        b'\x02{"channel":"  "}',
        b'\x03{"content":"agent REST","senderType":"AGENT","senderId":"a1","senderDisplayName":"Ann","metadata":{"source":"rest"},"clientMessageId":"c"}',
        b'\x04{"agentId":"a1","displayName":"Ann","metadata":{"skill":"billing"}}',
        b'\x05{"agentId":"a1","reason":"resolved"}',
        b"\x06 ",
        b'\x06{"channel":"whatsapp"}',
        b'\x0d"2025-11-13T13:36:03.351+02:00"',
        b'\x0d"0000-01-01T00:00:00Z"',
        b'\x0d"9999-12-31T23:59:59.999Z"',
    ]
    write("chat_payload", seeds)


if __name__ == "__main__":
    http_request()
    engineio_packet()
    ws_frame()
    socketio_packet()
    chat_payload()
