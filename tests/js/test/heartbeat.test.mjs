// Heartbeat (Engine.IO v4: the server pings, the client pongs), checked with
// a raw `ws` client on /socket.io/: a client that never answers `2` with `3`
// is closed by the server; one that answers stays open across several pings.
// Also: a client that never joins a namespace is closed (connectTimeout), and
// socket.io-client stays connected across pings.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { Recorder, emitWithAck, socketFactory } from '../lib/events.mjs';
import { openRawWebSocket } from '../lib/raw.mjs';

for (const executors of EXECUTOR_COUNTS) {
  describe(`heartbeat (--executors ${executors})`, () => {
    const server = useServer('conformance', { executors });
    const raws = [];
    const sockets = socketFactory();
    afterEach(() => {
      for (const r of raws.splice(0)) r.ws.terminate();
      sockets.closeAll();
    });
    const openConnected = async () => {
      const raw = await openRawWebSocket(server.url);
      raws.push(raw);
      raw.ws.send('40'); // join `/`, so that only the heartbeat can close us
      await raw.waitText((t) => t.startsWith('40'));
      return raw;
    };

    it('a client that never answers pings is closed by the server', async () => {
      const raw = await openConnected();
      await raw.waitText('2', { description: 'a ping' });
      await raw.closed();
      assert.equal(raw.count('3'), 0);
    });

    it('a client that answers pings stays open across at least 3 pings', async () => {
      const raw = await openConnected();
      raw.answerPings();
      // The 4th ping can only come after the first 3 were answered in time.
      await raw.frames.waitFor(() => raw.count('2') >= 4, { description: '4 pings' });
      assert.equal(raw.isClosed(), false, 'connection must still be open');
      raw.ws.send('421["message-with-ack","still here"]'); // and still serves events
      await raw.waitText('431["still here"]');
    });

    it('a client that answers pings but never sends CONNECT is closed (connectTimeout)', async () => {
      const raw = await openRawWebSocket(server.url);
      raws.push(raw);
      raw.answerPings();
      await raw.closed();
      assert.ok(raw.count('2') >= 1, 'at least one ping was answered before the close');
      assert.deepEqual(
        raw.texts().filter((t) => t.startsWith('4')),
        [],
        'no Socket.IO packets without CONNECT',
      );
    });

    it('socket.io-client stays connected across pings', async () => {
      const { socket } = await sockets.connect(server.url, { transports: ['websocket'] });
      const pings = new Recorder(socket.io.engine, 'ping', 'engine');
      const disconnects = new Recorder(socket, 'disconnect');
      await pings.waitFor(4);
      assert.deepEqual(disconnects.calls, []);
      assert.equal(socket.connected, true);
      assert.deepEqual(await emitWithAck(socket, 'message-with-ack', ['ok']), ['ok']);
    });

    it('socket.io-client over polling stays connected across pings', async () => {
      const { socket } = await sockets.connect(server.url, { transports: ['polling'] });
      const pings = new Recorder(socket.io.engine, 'ping', 'engine');
      const disconnects = new Recorder(socket, 'disconnect');
      await pings.waitFor(4);
      assert.deepEqual(disconnects.calls, []);
      assert.deepEqual(await emitWithAck(socket, 'message-with-ack', ['ok']), ['ok']);
    });
  });
}
