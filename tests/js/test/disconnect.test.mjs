// Server-side disconnect: `server-disconnect` makes the server close the
// socket; the client sees reason "io server disconnect" and does not
// reconnect by itself. A manual `socket.connect()` then yields a fresh,
// fully working session with a new id. Messages aimed at a socket that has
// gone away (its room, its id) are harmless to everyone else.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { Recorder, emitWithAck, once, socketFactory } from '../lib/events.mjs';

for (const executors of EXECUTOR_COUNTS) {
  for (const transports of [['websocket'], ['polling'], ['polling', 'websocket']]) {
    describe(`disconnect over ${transports.join('+')} (--executors ${executors})`, () => {
      const server = useServer('conformance', { executors });
      const sockets = socketFactory();
      afterEach(() => sockets.closeAll());

      it('server-disconnect -> "io server disconnect", then reconnect manually', async () => {
        const { socket } = await sockets.connect(server.url, { transports, auth: { token: 'again' } });
        const firstId = socket.id;
        const disconnected = once(socket, 'disconnect', { what: 'socket (server-disconnect)' });
        socket.emit('server-disconnect');
        const [reason] = await disconnected;
        assert.equal(reason, 'io server disconnect');
        assert.equal(socket.connected, false);

        const auth = once(socket, 'auth', { what: 'reconnected socket', failOn: ['connect_error'] });
        const connected = once(socket, 'connect', { what: 'reconnected socket', failOn: ['connect_error'] });
        socket.connect();
        await connected;
        assert.deepEqual(await auth, [{ token: 'again' }], 'auth is sent again on the new CONNECT');
        assert.ok(socket.id, 'new id');
        assert.notEqual(socket.id, firstId, 'the new session has a new id');

        assert.deepEqual(await emitWithAck(socket, 'message-with-ack', ['alive', 2]), ['alive', 2]);
        const [who] = await emitWithAck(socket, 'whoami');
        assert.equal(who.sid, socket.id);
        const back = once(socket, 'message-back', { what: 'reconnected socket' });
        socket.emit('message', 'echo ✓');
        assert.deepEqual(await back, ['echo ✓']);
      });

      it('server-disconnect affects only that socket', async () => {
        const { socket: a } = await sockets.connect(server.url, { transports });
        const { socket: b } = await sockets.connect(server.url, { transports });
        const disconnectsB = new Recorder(b, 'disconnect', 'bystander socket');
        const disconnected = once(a, 'disconnect', { what: 'socket a' });
        a.emit('server-disconnect');
        assert.equal((await disconnected)[0], 'io server disconnect');
        assert.deepEqual(await emitWithAck(b, 'message-with-ack', ['b fine']), ['b fine']);
        assert.deepEqual(disconnectsB.calls, []);
        assert.equal(b.connected, true);
      });

      it('room and direct messages to a socket that went away still work for the others', async () => {
        const { socket: stayer } = await sockets.connect(server.url, { transports });
        const { socket: goner } = await sockets.connect(server.url, { transports });
        const goneSid = goner.id;
        for (const s of [stayer, goner]) assert.deepEqual(await emitWithAck(s, 'join', ['room-D']), [true]);
        const left = once(goner, 'disconnect', { what: 'leaving socket' });
        goner.disconnect();
        assert.equal((await left)[0], 'io client disconnect');

        const msgs = new Recorder(stayer, 'room-msg', 'remaining member');
        assert.deepEqual(await emitWithAck(stayer, 'to-room', ['room-D', 'after goner left']), [true]);
        await msgs.waitFor(1);
        assert.deepEqual(await emitWithAck(stayer, 'to-socket', [goneSid, 'anyone?']), [true]);
        assert.deepEqual(await emitWithAck(stayer, 'to-room', ['room-D', 'still here']), [true]);
        await msgs.waitFor(2);
        assert.deepEqual(msgs.calls, [['after goner left'], ['still here']]);
      });
    });
  }
}
