// Namespaces: `/custom` accepts connections and emits `auth` like `/`; an
// unknown namespace is refused with CONNECT_ERROR "Invalid namespace"
// without harming other namespaces multiplexed on the same connection.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Manager } from 'socket.io-client';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { emitWithAck, once, socketFactory } from '../lib/events.mjs';

for (const executors of EXECUTOR_COUNTS) {
  for (const transports of [['websocket'], ['polling']]) {
    describe(`namespaces over ${transports[0]} (--executors ${executors})`, () => {
      const server = useServer('conformance', { executors });
      const sockets = socketFactory();
      const managers = [];
      afterEach(() => {
        sockets.closeAll();
        for (const m of managers.splice(0)) m.engine?.close();
      });

      it('/custom connects and receives auth {}', async () => {
        const { socket, auth } = await sockets.connect(server.url, { nsp: '/custom', transports });
        assert.deepEqual(auth, {});
        assert.equal(socket.nsp, '/custom');
      });

      it('/custom echoes the CONNECT auth payload', async () => {
        const { auth } = await sockets.connect(server.url, { nsp: '/custom', transports, auth: { token: '123' } });
        assert.deepEqual(auth, { token: '123' });
      });

      it('unknown namespace /nope gets connect_error "Invalid namespace"', async () => {
        const socket = sockets.create(server.url, { nsp: '/nope', transports });
        const failed = once(socket, 'connect_error', { what: 'socket to /nope', failOn: ['connect'] });
        socket.connect();
        const [err] = await failed;
        assert.equal(err.message, 'Invalid namespace');
        assert.equal(socket.connected, false);
      });

      it('/, /custom and a refused /nope share one connection', async () => {
        const manager = new Manager(server.url, { transports, reconnection: false, autoConnect: false });
        managers.push(manager);
        const root = manager.socket('/', { auth: { who: 'root' } });
        const custom = manager.socket('/custom', { auth: { who: 'custom' } });
        const nope = manager.socket('/nope');

        const rootAuth = once(root, 'auth', { what: 'multiplexed /', failOn: ['connect_error'] });
        const customAuth = once(custom, 'auth', { what: 'multiplexed /custom', failOn: ['connect_error'] });
        const nopeError = once(nope, 'connect_error', { what: 'multiplexed /nope', failOn: ['connect'] });
        root.connect();
        custom.connect();
        nope.connect();

        assert.deepEqual(await rootAuth, [{ who: 'root' }]);
        assert.deepEqual(await customAuth, [{ who: 'custom' }]);
        assert.equal((await nopeError)[0].message, 'Invalid namespace');
        // `/` keeps working after the refusal on the same connection.
        assert.deepEqual(await emitWithAck(root, 'message-with-ack', ['still here']), ['still here']);
        assert.notEqual(root.id, custom.id, 'each namespace socket has its own id');
      });
    });
  }
}
