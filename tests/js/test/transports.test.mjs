// Transports: a socket.io-client connects over websocket only, polling only,
// and polling upgraded to websocket; in each case the server's `auth` event
// echoes the CONNECT auth payload ({} when none is given).
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { emitWithAck, once, socketFactory } from '../lib/events.mjs';

const CASES = [
  { label: 'websocket only', transports: ['websocket'], finalTransport: 'websocket' },
  { label: 'polling only', transports: ['polling'], finalTransport: 'polling' },
];

for (const executors of EXECUTOR_COUNTS) {
  describe(`transports (--executors ${executors})`, () => {
    const server = useServer('conformance', { executors });
    const sockets = socketFactory();
    afterEach(() => sockets.closeAll());

    for (const { label, transports, finalTransport } of CASES) {
      it(`${label}: connects and receives auth {}`, async () => {
        const { socket, auth } = await sockets.connect(server.url, { transports });
        assert.deepEqual(auth, {});
        assert.equal(socket.io.engine.transport.name, finalTransport);
        assert.ok(socket.id, 'socket has an id');
        assert.deepEqual(await emitWithAck(socket, 'message-with-ack', ['still alive']), ['still alive']);
      });

      it(`${label}: CONNECT auth payload is echoed`, async () => {
        const { auth } = await sockets.connect(server.url, { transports, auth: { token: '123' } });
        assert.deepEqual(auth, { token: '123' });
      });
    }

    for (const withAuth of [false, true]) {
      it(`polling upgrades to websocket${withAuth ? ' (with auth)' : ''}`, async () => {
        const socket = sockets.create(server.url, withAuth ? { auth: { token: '123' } } : {});
        // The engine exists once the manager opens; the upgrade probe starts after that.
        let initialTransport;
        const upgraded = new Promise((resolve, reject) => {
          socket.io.once('open', () => {
            initialTransport = socket.io.engine.transport.name;
            once(socket.io.engine, 'upgrade', { what: 'engine (polling -> websocket)', failOn: ['upgradeError'] }).then(
              resolve,
              reject,
            );
          });
        });
        const auth = once(socket, 'auth', { what: 'upgrading socket', failOn: ['connect_error'] });
        socket.connect();
        assert.deepEqual((await auth)[0], withAuth ? { token: '123' } : {});
        const [transport] = await upgraded;
        assert.equal(initialTransport, 'polling', 'the connection starts on polling');
        assert.equal(transport.name, 'websocket');
        assert.equal(socket.io.engine.transport.name, 'websocket');
        // The session survives the upgrade.
        assert.deepEqual(await emitWithAck(socket, 'message-with-ack', ['after upgrade', 1]), ['after upgrade', 1]);
        const echoed = once(socket, 'message-back', { what: 'upgraded socket' });
        socket.emit('message', 'echo after upgrade');
        assert.deepEqual(await echoed, ['echo after upgrade']);
      });
    }
  });

  describe(`websocket-only server: --transports websocket (--executors ${executors})`, () => {
    const server = useServer('conformance', { executors, extraArgs: ['--transports', 'websocket'] });
    const sockets = socketFactory();
    afterEach(() => sockets.closeAll());

    it('accepts websocket clients', async () => {
      const { socket, auth } = await sockets.connect(server.url, { transports: ['websocket'] });
      assert.deepEqual(auth, {});
      assert.equal(socket.io.engine.transport.name, 'websocket');
    });

    it('refuses polling clients', async () => {
      const socket = sockets.create(server.url, { transports: ['polling'] });
      const failed = once(socket, 'connect_error', { what: 'polling socket', failOn: ['connect'] });
      socket.connect();
      await failed;
      assert.equal(socket.connected, false);
    });
  });
}
