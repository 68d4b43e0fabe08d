// Acknowledgements in both directions: client -> server (`message-with-ack`
// is acked with its own args) and server -> client (`ask-ack` makes the
// server emit `ask` with an ack callback and report the outcome in
// `ask-result`, including the 2000 ms server-side ack timeout).
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { emitWithAck, once, socketFactory } from '../lib/events.mjs';

// The server waits 2000 ms for an ack before reporting a timeout.
const SERVER_ACK_TIMEOUT_WAIT_MS = 10_000;

for (const executors of EXECUTOR_COUNTS) {
  for (const transports of [['websocket'], ['polling']]) {
    describe(`acks over ${transports[0]} (--executors ${executors})`, () => {
      const server = useServer('conformance', { executors });
      const sockets = socketFactory();
      afterEach(() => sockets.closeAll());

      it('message-with-ack is acked with all its args', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const args = ['hello', 42, { nested: { list: [1, 'two', null, true] } }, [3.5, -1]];
        assert.deepEqual(await emitWithAck(socket, 'message-with-ack', args), args);
      });

      it('message-with-ack with a single arg and with no args', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        assert.deepEqual(await emitWithAck(socket, 'message-with-ack', ['only']), ['only']);
        assert.deepEqual(await emitWithAck(socket, 'message-with-ack', []), []);
      });

      it('several acks in flight are matched to the right emits', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => emitWithAck(socket, 'message-with-ack', [`n${i}`, i])),
        );
        assert.deepEqual(
          results,
          Array.from({ length: 10 }, (_, i) => [`n${i}`, i]),
        );
      });

      it('ask-ack: the client acks `ask` and the server reports ok with the ack args', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const asked = once(socket, 'ask', { what: 'socket (ask-ack answered)' });
        const result = once(socket, 'ask-result', { what: 'socket (ask-ack answered)' });
        socket.emit('ask-ack', 'ping', { seq: 7 });
        const args = await asked;
        const ack = args.pop();
        assert.equal(typeof ack, 'function', '`ask` must carry an ack id');
        assert.deepEqual(args, ['ping', { seq: 7 }]);
        ack('pong', { n: 1 });
        assert.deepEqual(await result, [{ ok: true, args: ['pong', { n: 1 }] }]);
      });

      it('ask-ack: when the client never acks, the server reports a timeout', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const asked = once(socket, 'ask', { what: 'socket (ask-ack not answered)' });
        const result = once(socket, 'ask-result', {
          what: 'socket (ask-ack not answered)',
          timeoutMs: SERVER_ACK_TIMEOUT_WAIT_MS,
        });
        socket.emit('ask-ack', 'are you there?');
        const args = await asked;
        const ack = args.pop(); // deliberately never called
        assert.equal(typeof ack, 'function', '`ask` must carry an ack id');
        assert.deepEqual(args, ['are you there?']);
        assert.deepEqual(await result, [{ ok: false, error: 'timeout' }]);
        // The connection is still usable afterwards.
        assert.deepEqual(await emitWithAck(socket, 'message-with-ack', ['after timeout']), ['after timeout']);
      });
    });
  }
}
