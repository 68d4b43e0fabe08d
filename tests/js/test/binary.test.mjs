// Binary payloads both ways (Socket.IO BINARY_EVENT / BINARY_ACK with
// attachments): Buffers alone, mixed with JSON, nested inside objects and
// arrays, in acks, and server -> client with an ack — over websocket and
// over polling (where Engine.IO carries them base64-encoded).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { Recorder, emitWithAck, once, socketFactory } from '../lib/events.mjs';

/**
 * Replaces every binary value (Buffer, ArrayBuffer, typed array) with
 * `{ $binary: <hex> }` so that deepEqual checks both the bytes and that the
 * value is still binary (a base64 string or a placeholder would not match).
 */
function tagBinary(value) {
  if (value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString('hex') };
  if (ArrayBuffer.isView(value)) {
    return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') };
  }
  if (Array.isArray(value)) return value.map(tagBinary);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, tagBinary(v)]));
  }
  return value;
}

const bytes = (...b) => Buffer.from(b);

const PAYLOADS = {
  'one buffer': [bytes(0, 1, 2, 3, 255)],
  'an empty buffer': [Buffer.alloc(0)],
  'several buffers': [bytes(1), bytes(2, 2), bytes(3, 3, 3)],
  'binary mixed with JSON args': ['before', bytes(0xde, 0xad, 0xbe, 0xef), 42, { plain: 'json ✓' }, bytes(0), null],
  'binary nested in objects and arrays': [
    {
      file: { name: 'pic.png', data: bytes(0x89, 0x50, 0x4e, 0x47), meta: { parts: [bytes(1, 2), 'x', [bytes(3)]] } },
      list: [bytes(9, 8, 7), { deeper: { blob: bytes(6) } }],
    },
  ],
  '256 kB of random bytes': [randomBytes(256 * 1024)],
};

for (const executors of EXECUTOR_COUNTS) {
  for (const transports of [['websocket'], ['polling']]) {
    describe(`binary over ${transports[0]} (--executors ${executors})`, () => {
      const server = useServer('conformance', { executors });
      const sockets = socketFactory();
      afterEach(() => sockets.closeAll());

      for (const [name, args] of Object.entries(PAYLOADS)) {
        it(`message -> message-back: ${name}`, async () => {
          const { socket } = await sockets.connect(server.url, { transports });
          const back = once(socket, 'message-back', { what: `socket (${name})` });
          socket.emit('message', ...args);
          assert.deepEqual(tagBinary(await back), tagBinary(args));
        });
      }

      it('message-with-ack: binary args come back in the ack', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const args = ['label', bytes(10, 20, 30), { inner: [bytes(40)] }];
        assert.deepEqual(tagBinary(await emitWithAck(socket, 'message-with-ack', args)), tagBinary(args));
      });

      it('server -> client binary event with ack, client acks with binary', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const asked = once(socket, 'ask', { what: 'socket (binary ask)' });
        const result = once(socket, 'ask-result', { what: 'socket (binary ask)' });
        socket.emit('ask-ack', bytes(1, 2, 3), { k: bytes(4) });
        const askArgs = await asked;
        const ack = askArgs.pop();
        assert.equal(typeof ack, 'function', '`ask` must carry an ack id');
        assert.deepEqual(tagBinary(askArgs), tagBinary([bytes(1, 2, 3), { k: bytes(4) }]));
        ack(bytes(7, 7), 'text', { nested: bytes(8) });
        assert.deepEqual(tagBinary(await result), tagBinary([{ ok: true, args: [bytes(7, 7), 'text', { nested: bytes(8) }] }]));
      });

      it('binary and text events interleave in order', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const backs = new Recorder(socket, 'message-back');
        const sent = [];
        for (let i = 0; i < 6; i++) {
          const args = i % 2 ? [i, bytes(i, i)] : [`text ${i}`];
          sent.push(args);
          socket.emit('message', ...args);
        }
        await backs.waitFor(6);
        assert.deepEqual(tagBinary(backs.calls), tagBinary(sent));
      });
    });
  }
}
