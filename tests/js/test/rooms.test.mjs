// Rooms and direct messages across executors. With --executors 2 the test
// opens sockets (spread over executors by SO_REUSEPORT) and asks each one
// `whoami` until it has the members it needs on executor 0 AND executor 1,
// then checks that `to-room` reaches every member exactly once — and no
// non-member — and that `to-socket` reaches a socket on another executor.
//
// "Exactly once" / "never" are checked without sleeping: after the message
// under test, the same sender sends a marker (to the room, or `to-socket`
// to each non-member). Once a socket has seen its marker, everything sent
// to it before the marker has been delivered.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer, usingReferenceServer } from '../lib/server.mjs';
import { Recorder, emitWithAck, socketFactory } from '../lib/events.mjs';

const MAX_SOCKETS = 40;

for (const executors of EXECUTOR_COUNTS) {
  describe(`rooms across executors (--executors ${executors})`, () => {
    const server = useServer('conformance', { executors });
    const sockets = socketFactory();
    afterEach(() => sockets.closeAll());

    /**
     * Opens sockets until every executor 0..executors-1 owns `perExecutor`
     * of them. Returns `groups[executor] = [client, ...]` where a client is
     * `{socket, sid, executor, roomMsgs, directs}`, or null if the test was
     * skipped (reference server only).
     */
    async function clientsOnEveryExecutor(t, perExecutor, transports = ['websocket']) {
      const groups = Array.from({ length: executors }, () => []);
      const seen = new Map();
      for (let i = 0; i < MAX_SOCKETS && groups.some((g) => g.length < perExecutor); i++) {
        const { socket } = await sockets.connect(server.url, { transports });
        const [info] = await emitWithAck(socket, 'whoami');
        assert.equal(typeof info, 'object', `whoami ack must be an object, got ${JSON.stringify(info)}`);
        assert.equal(info.sid, socket.id, 'whoami sid is the Socket.IO socket id');
        assert.ok(
          Number.isInteger(info.executor) && info.executor >= 0 && info.executor < executors,
          `whoami executor ${JSON.stringify(info.executor)} not in [0, ${executors})`,
        );
        seen.set(info.executor, (seen.get(info.executor) ?? 0) + 1);
        const group = groups[info.executor];
        if (group.length < perExecutor) {
          group.push({
            socket,
            sid: info.sid,
            executor: info.executor,
            roomMsgs: new Recorder(socket, 'room-msg', `socket ${info.sid} (executor ${info.executor})`),
            directs: new Recorder(socket, 'direct', `socket ${info.sid} (executor ${info.executor})`),
          });
        } else {
          socket.disconnect();
        }
      }
      if (groups.some((g) => g.length < perExecutor)) {
        const msg =
          `could not get ${perExecutor} sockets on each of ${executors} executors with ${MAX_SOCKETS} connections ` +
          `(per executor: ${JSON.stringify(Object.fromEntries(seen))}) — are connections spread over executors?`;
        if (usingReferenceServer) {
          t.skip(`reference server: ${msg}`);
          return null;
        }
        assert.fail(msg);
      }
      return groups;
    }

    const join = async (client, room) =>
      assert.deepEqual(await emitWithAck(client.socket, 'join', [room]), [true], `join ${room}`);

    /** `from` sends a marker; resolves when every client in `members` saw it via room-msg. */
    async function roomBarrier(from, room, members, tag) {
      assert.deepEqual(await emitWithAck(from.socket, 'to-room', [room, `marker ${tag}`]), [true]);
      await Promise.all(members.map((m) => m.roomMsgs.waitFor((a) => a === `marker ${tag}`)));
    }

    /** `from` sends a `to-socket` marker to each of `others`; resolves when all saw it. */
    async function directBarrier(from, others, tag) {
      for (const o of others) {
        assert.deepEqual(await emitWithAck(from.socket, 'to-socket', [o.sid, `marker ${tag}`]), [true]);
      }
      await Promise.all(others.map((o) => o.directs.waitFor((a) => a === `marker ${tag}`)));
    }

    const nonMarkers = (recorder) => recorder.calls.filter(([first]) => !String(first).startsWith('marker '));

    it('to-room reaches every member on every executor exactly once, and no one else', async (t) => {
      // Per executor: two members of room-A, one member of room-B.
      const groups = await clientsOnEveryExecutor(t, 3);
      if (!groups) return;
      const membersA = groups.flatMap((g) => g.slice(0, 2));
      const membersB = groups.map((g) => g[2]);
      for (const c of membersA) await join(c, 'room-A');
      for (const c of membersB) await join(c, 'room-B');

      // Every executor takes a turn at sending (so both directions cross executors).
      for (const [e, group] of groups.entries()) {
        const sender = group[0];
        const payload = [`hello from executor ${e}`, { from: sender.sid, n: e, text: 'ünï ✓' }, [1, 2, 3]];
        assert.deepEqual(await emitWithAck(sender.socket, 'to-room', ['room-A', ...payload]), [true]);
        await roomBarrier(sender, 'room-A', membersA, `A${e}`);
        await directBarrier(sender, membersB, `B${e}`);

        for (const m of membersA) {
          const got = nonMarkers(m.roomMsgs).filter(([first]) => first === payload[0]);
          assert.equal(got.length, 1, `member ${m.sid} (executor ${m.executor}) got "${payload[0]}" ${got.length} times`);
          assert.deepEqual(got[0], payload);
        }
      }
      for (const c of membersB) {
        assert.deepEqual(c.roomMsgs.calls, [], `non-member ${c.sid} (executor ${c.executor}) got room-A messages`);
      }
      // And room-B is reachable on its own.
      await roomBarrier(membersA[0], 'room-B', membersB, 'B-only');
      for (const c of membersA) assert.equal(nonMarkers(c.roomMsgs).length, executors, `room-A member ${c.sid}`);
    });

    it('to-room from a non-member reaches the members but not the sender', async (t) => {
      const groups = await clientsOnEveryExecutor(t, 2);
      if (!groups) return;
      const members = groups.map((g) => g[0]);
      const outsiders = groups.map((g) => g[1]);
      for (const c of members) await join(c, 'room-N');
      for (const outsider of outsiders) {
        const tag = `from outsider ${outsider.sid}`;
        assert.deepEqual(await emitWithAck(outsider.socket, 'to-room', ['room-N', tag]), [true]);
        await Promise.all(members.map((m) => m.roomMsgs.waitFor((a) => a === tag)));
        await directBarrier(outsider, [outsider], tag);
      }
      for (const m of members) assert.equal(m.roomMsgs.calls.length, outsiders.length, `member ${m.sid}`);
      for (const o of outsiders) assert.deepEqual(o.roomMsgs.calls, [], `outsider ${o.sid} got room messages`);
    });

    it('to-room without an ack callback is still delivered; an empty room is acked', async (t) => {
      const groups = await clientsOnEveryExecutor(t, 1);
      if (!groups) return;
      const members = groups.map((g) => g[0]);
      for (const c of members) await join(c, 'room-noack');
      members[0].socket.emit('to-room', 'room-noack', 'no ack requested', { ok: 1 });
      await Promise.all(members.map((m) => m.roomMsgs.waitFor((a) => a === 'no ack requested')));
      assert.deepEqual(await emitWithAck(members[0].socket, 'to-room', ['nobody-is-here', 'x']), [true]);
      await roomBarrier(members[0], 'room-noack', members, 'end');
      for (const m of members) assert.deepEqual(nonMarkers(m.roomMsgs), [['no ack requested', { ok: 1 }]]);
    });

    it('leave: a socket that left the room no longer receives its messages', async (t) => {
      const groups = await clientsOnEveryExecutor(t, 2);
      if (!groups) return;
      const staying = groups.map((g) => g[0]);
      const leaving = groups.map((g) => g[1]);
      for (const c of [...staying, ...leaving]) await join(c, 'room-L');
      for (const c of leaving) assert.deepEqual(await emitWithAck(c.socket, 'leave', ['room-L']), [true]);

      const sender = staying[0];
      assert.deepEqual(await emitWithAck(sender.socket, 'to-room', ['room-L', 'after leave']), [true]);
      await roomBarrier(sender, 'room-L', staying, 'L');
      await directBarrier(sender, leaving, 'L-left');
      for (const c of staying) assert.deepEqual(nonMarkers(c.roomMsgs), [['after leave']], `stayer ${c.sid}`);
      for (const c of leaving) assert.deepEqual(c.roomMsgs.calls, [], `leaver ${c.sid} still got room messages`);
    });

    it('to-socket reaches a socket on any executor, and only that socket', async (t) => {
      const groups = await clientsOnEveryExecutor(t, 2);
      if (!groups) return;
      const senders = groups.map((g) => g[0]);
      const targets = groups.map((g) => g[1]);
      const message = (from, to) => [`direct ${from.executor}->${to.executor}`, { to: to.sid }, 7];
      // Every executor sends to one socket on every executor (so across executors both ways).
      for (const from of senders) {
        for (const to of targets) {
          const args = message(from, to);
          assert.deepEqual(await emitWithAck(from.socket, 'to-socket', [to.sid, ...args]), [true]);
          await to.directs.waitFor((a) => a === args[0]);
        }
      }
      await directBarrier(senders[0], [...senders, ...targets], 'end');
      for (const to of targets) {
        assert.deepEqual(
          nonMarkers(to.directs),
          senders.map((from) => message(from, to)),
          `target ${to.sid} (executor ${to.executor})`,
        );
      }
      for (const from of senders) {
        assert.deepEqual(nonMarkers(from.directs), [], `sender ${from.sid} got direct messages meant for others`);
      }
    });

    it('room members connected over polling receive too', async (t) => {
      const groups = await clientsOnEveryExecutor(t, 1, ['polling']);
      if (!groups) return;
      const members = groups.map((g) => g[0]);
      for (const c of members) await join(c, 'room-P');
      for (const sender of members) {
        const tag = `polling from ${sender.executor}`;
        assert.deepEqual(await emitWithAck(sender.socket, 'to-room', ['room-P', tag, { bin: false }]), [true]);
        await Promise.all(members.map((m) => m.roomMsgs.waitFor((a) => a === tag)));
      }
      await roomBarrier(members[0], 'room-P', members, 'P');
      for (const m of members) assert.equal(nonMarkers(m.roomMsgs).length, members.length, `member ${m.sid}`);
    });
  });
}
