// The `fanout` example: a socket joins the room named by its handshake query
// parameter `room`; `pub` is broadcast as `msg` (same args, binary included)
// to everyone in that room, sender included. Rooms are populated with enough
// sockets that, with --executors 2, members sit on both executors.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { Recorder, socketFactory } from '../lib/events.mjs';

const MEMBERS = 8; // spread over executors by SO_REUSEPORT

for (const executors of EXECUTOR_COUNTS) {
  describe(`fanout (--executors ${executors})`, () => {
    const server = useServer('fanout', { executors });
    const sockets = socketFactory();
    afterEach(() => sockets.closeAll());

    async function member(room, transports = ['websocket']) {
      const { socket } = await sockets.connect(server.url, { transports, query: { room }, expectAuth: false });
      return { socket, room, msgs: new Recorder(socket, 'msg', `socket ${socket.id} in ${room}`) };
    }

    it('pub reaches every member of the room exactly once, sender included', async () => {
      const r1 = [];
      for (let i = 0; i < MEMBERS; i++) r1.push(await member('r1'));
      r1.push(await member('r1', ['polling']));
      const r2 = [await member('r2'), await member('r2')];

      const payload = ['hello', { from: 'r1[0]', text: 'ünï ✓' }, Buffer.from([1, 2, 3]), 42];
      r1[0].socket.emit('pub', ...payload);
      // Marker from the same sender: once it arrived, the first pub has too.
      r1[0].socket.emit('pub', 'marker');
      await Promise.all(r1.map((m) => m.msgs.waitFor((first) => first === 'marker')));
      for (const m of r1) {
        assert.equal(m.msgs.calls.length, 2, `member ${m.socket.id}: ${JSON.stringify(m.msgs.calls)}`);
        const [first, marker] = m.msgs.calls;
        assert.deepEqual(marker, ['marker']);
        assert.deepEqual(first.slice(0, 2), payload.slice(0, 2));
        assert.deepEqual(Buffer.from(first[2]), payload[2], 'binary arg is still binary');
        assert.equal(first[3], 42);
      }

      // r2 is a different room: its members only see r2 traffic.
      r2[0].socket.emit('pub', 'r2 only');
      await Promise.all(r2.map((m) => m.msgs.waitFor(1)));
      for (const m of r2) assert.deepEqual(m.msgs.calls, [['r2 only']]);
      for (const m of r1) assert.equal(m.msgs.calls.length, 2, `r1 member ${m.socket.id} saw r2 traffic`);
    });

    it('every member can publish; all see all messages', async () => {
      const members = [];
      for (let i = 0; i < 4; i++) members.push(await member('r3'));
      for (const [i, m] of members.entries()) m.socket.emit('pub', `from ${i}`);
      await Promise.all(members.map((m) => m.msgs.waitFor(members.length)));
      for (const m of members) {
        const got = m.msgs.calls.map(([text]) => text).sort();
        assert.deepEqual(got, members.map((_, i) => `from ${i}`).sort(), `member ${m.socket.id}`);
      }
    });
  });
}
