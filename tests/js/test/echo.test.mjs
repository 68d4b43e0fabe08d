// Echo: `message` is emitted back as `message-back` with exactly the same
// args — strings (incl. non-ASCII / astral unicode and JSON-special
// characters), numbers, booleans, null, nested objects and arrays.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { Recorder, once, socketFactory } from '../lib/events.mjs';

const PAYLOADS = {
  'plain string': ['hello'],
  'unicode strings': ['héllo wörld', '日本語テキスト', 'emoji 😀👍🏽', 'rtl שלום', 'zero\u0000width\u200b'],
  'JSON-special characters': ['quote " backslash \\ slash / newline \n tab \t', '{"not":"parsed"}', '[1,2]'],
  numbers: [0, -1, 42, 3.14159, 1e21, -2.5e-7, Number.MAX_SAFE_INTEGER],
  'booleans and null': [true, false, null],
  'nested objects': [
    {
      user: { name: 'Zoë', tags: ['a', 'ü', '🚀'], age: 33, active: true, score: null },
      list: [1, [2, [3, { deep: 'x' }]], {}],
      empty: {},
      emptyList: [],
    },
  ],
  'many args of mixed types': ['s', 1, { a: [true] }, [null], 'last ✓'],
  'no args': [],
};

for (const executors of EXECUTOR_COUNTS) {
  for (const transports of [['websocket'], ['polling']]) {
    describe(`echo over ${transports[0]} (--executors ${executors})`, () => {
      const server = useServer('conformance', { executors });
      const sockets = socketFactory();
      afterEach(() => sockets.closeAll());

      for (const [name, args] of Object.entries(PAYLOADS)) {
        it(`message -> message-back: ${name}`, async () => {
          const { socket } = await sockets.connect(server.url, { transports });
          const back = once(socket, 'message-back', { what: `socket (${name})` });
          socket.emit('message', ...args);
          assert.deepEqual(await back, args);
        });
      }

      it('a long unicode string (100 kB) round-trips', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const long = 'ß😀x'.repeat(25_000);
        const back = once(socket, 'message-back', { what: 'socket (long string)' });
        socket.emit('message', long);
        assert.deepEqual(await back, [long]);
      });

      it('echoes preserve order', async () => {
        const { socket } = await sockets.connect(server.url, { transports });
        const backs = new Recorder(socket, 'message-back');
        for (let i = 0; i < 20; i++) socket.emit('message', i);
        await backs.waitFor(20);
        assert.deepEqual(
          backs.calls,
          Array.from({ length: 20 }, (_, i) => [i]),
        );
      });
    });
  }
}
