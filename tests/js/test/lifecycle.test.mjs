// Process lifecycle of the example binaries: they print the listening line
// (checked by lib/server.mjs on every start) and exit with status 0 on
// SIGTERM, also while clients are connected.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, startServer } from '../lib/server.mjs';
import { socketFactory } from '../lib/events.mjs';
import { openRawWebSocket } from '../lib/raw.mjs';

const listen = (executors, ...extra) => ['--listen', '127.0.0.1:0', '--executors', String(executors), ...extra];

for (const executors of EXECUTOR_COUNTS) {
  describe(`lifecycle (--executors ${executors})`, () => {
    const sockets = socketFactory();
    const servers = [];
    const start = async (...args) => {
      const server = await startServer(...args);
      servers.push(server);
      return server;
    };
    afterEach(async () => {
      sockets.closeAll();
      // Only matters when a test failed before its own close().
      await Promise.allSettled(servers.splice(0).map((s) => s.close()));
    });

    it('conformance: reports a real port and exits 0 on SIGTERM with clients connected', async () => {
      const server = await start('conformance', listen(executors));
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(server.port > 0 && server.port < 65536);
      await sockets.connect(server.url, { transports: ['websocket'] });
      await sockets.connect(server.url, { transports: ['polling'] });
      assert.deepEqual(await server.close(), { code: 0, signal: null });
    });

    it('conformance --engine-io: exits 0 on SIGTERM with a client connected', async () => {
      const server = await start('conformance', listen(executors, '--engine-io'));
      const raw = await openRawWebSocket(server.url, '/engine.io/');
      try {
        assert.deepEqual(await server.close(), { code: 0, signal: null });
      } finally {
        raw.ws.terminate();
      }
    });

    it('fanout: exits 0 on SIGTERM with a client connected', async () => {
      const server = await start('fanout', listen(executors));
      await sockets.connect(server.url, { transports: ['websocket'], query: { room: 'x' }, expectAuth: false });
      assert.deepEqual(await server.close(), { code: 0, signal: null });
    });
  });
}
