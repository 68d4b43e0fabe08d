// queue:position {conversationId, position, estimatedWait}: every socket joined to a queued
// conversation is told where it stands, and told again whenever that changes (only then: one
// socket never gets the same position twice in a row), coalesced on the queue:snapshot tick;
// never after the system:event that says it left the queue. A socket that joins or resumes a
// queued conversation gets its position after its join system:event. Positions cover the
// oldest chat.queue.position-limit conversations. GET /api/conversations/{id}/queue answers
// the same (200), 404 for an unknown conversation, 409 when it is not queued.
//
// Every test runs its own server so the queue starts empty. Queue changes are paced by a queue
// watcher's snapshot (each one at least a snapshot interval after the one before), so no two
// conversations enter the queue in the same millisecond and the queue's order is the order the
// tests queue them in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BULK_TIMEOUT_MS,
  EXECUTOR_COUNTS,
  assertError,
  idsOf,
  uid,
  withChatServer,
} from '../lib/chat.mjs';

const wait = { timeoutMs: BULK_TIMEOUT_MS };

/** The wait estimate of `position` with the default 2 minutes per position. */
const estimate = (position) => `PT${2 * (position + 1)}M`;

/** The positions a socket was sent, in order. */
const positionsOf = (socket) => socket.positions.items.map((p) => p.position);

/** Waits until the newest queue:position of `socket` says `position`; checks its shape. */
async function positionIs(socket, conversationId, position) {
  const p = await socket.positions.latest((x) => x?.position === position, {
    description: `queue:position ${position}`,
    ...wait,
  });
  assert.deepEqual(Object.keys(p), ['conversationId', 'position', 'estimatedWait'], `${socket.label}: queue:position fields, in order`);
  assert.deepEqual(p, { conversationId, position, estimatedWait: estimate(position) }, `${socket.label}: queue:position`);
  return p;
}

/** One socket is never sent the same position twice in a row. */
function assertOnlyChanges(socket) {
  const seen = positionsOf(socket);
  for (let i = 1; i < seen.length; i++) {
    assert.notEqual(seen[i], seen[i - 1], `${socket.label}: position ${seen[i]} sent twice in a row (${JSON.stringify(seen)})`);
  }
}

/** Nothing but queue:position tells a socket where it stands: no SYSTEM chat:message. */
function assertNoSystemMessages(socket) {
  const system = socket.messages.items.filter((m) => m?.type === 'SYSTEM');
  assert.deepEqual(system, [], `${socket.label}: no SYSTEM chat:message while queued`);
}

/** A conversation of a fresh customer (OPEN), with that customer's socket joined to it. */
async function customerWithConversation({ api, url, clients }, name) {
  const customerId = uid('cust');
  const conv = await api.createConversation({ customerId, name });
  const socket = await clients.customer(url, { token: customerId, conversationId: conv.id });
  return { ...conv, customerId, socket };
}

/** Queues `id` and waits until `watcher`'s snapshot has it (paces queue changes, see above). */
async function queueAndSettle(api, watcher, id) {
  const answer = await api.queue(id);
  await watcher.snapshots.latest((s) => idsOf(s).includes(id), { description: `a snapshot with ${id}`, ...wait });
  return answer;
}

/** The index of the first timeline entry matching `pred` (-1 when none). */
const indexIn = (socket, pred) => socket.timeline.findIndex(([ev, payload]) => pred(ev, payload));

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat queue position (--executors ${executors})`, () => {
    it('three queued customers are told 0, 1, 2; after the first is accepted the others move up', () =>
      withChatServer({ executors }, async (ctx) => {
        const { api, url, clients } = ctx;
        const watcher = await clients.queueWatcher(url);
        const c = [];
        for (let i = 0; i < 3; i++) c.push(await customerWithConversation(ctx, `Pos ${i}`));
        for (const [i, x] of c.entries()) {
          const answer = await queueAndSettle(api, watcher, x.id);
          assert.deepEqual(answer, { position: i, estimatedWait: estimate(i) }, 'the queue answer');
          await positionIs(x.socket, x.id, i);
        }
        // The live positions agree with the REST read and with the queue's order.
        assert.deepEqual(idsOf(await api.agentQueue()), c.map((x) => x.id));
        for (const [i, x] of c.entries()) {
          assert.deepEqual(await api.expect(200, 'GET', `/api/conversations/${x.id}/queue`), { position: i, estimatedWait: estimate(i) });
        }

        // The first is accepted: its customer hears CONVERSATION_ACCEPTED, the others move up.
        const agentId = uid('agent');
        await api.accept(c[0].id, agentId, 'Ann');
        await c[0].socket.waitStatus('ASSIGNED', wait);
        await positionIs(c[1].socket, c[1].id, 0);
        await positionIs(c[2].socket, c[2].id, 1);

        // One more change as a barrier: its tick follows every earlier one on each executor.
        const d = await customerWithConversation(ctx, 'Pos 3');
        await queueAndSettle(api, watcher, d.id);
        await positionIs(d.socket, d.id, 2);

        // Each socket was sent each position it had once, and nothing after leaving the queue.
        assert.deepEqual(positionsOf(c[0].socket), [0], 'the accepted customer');
        assert.deepEqual(positionsOf(c[1].socket), [1, 0]);
        assert.deepEqual(positionsOf(c[2].socket), [2, 1]);
        const accepted = indexIn(c[0].socket, (ev, p) => ev === 'system:event' && p?.type === 'CONVERSATION_ACCEPTED');
        assert.ok(accepted > 0, 'the accept was announced');
        assert.deepEqual(
          c[0].socket.timeline.slice(accepted).filter(([ev]) => ev === 'queue:position'),
          [],
          'no queue:position after CONVERSATION_ACCEPTED',
        );
        for (const x of [...c, d]) {
          assertOnlyChanges(x.socket);
          assertNoSystemMessages(x.socket);
          assert.deepEqual(x.socket.snapshots.items, [], `${x.socket.label}: customers get no queue:snapshot`);
        }
        assert.deepEqual(watcher.positions.items, [], 'the queue watcher gets no queue:position');
      }));

    it('a customer that reconnects with lastSeq while queued gets its position after the join system:event', () =>
      withChatServer({ executors }, async (ctx) => {
        const { api, url, clients } = ctx;
        const watcher = await clients.queueWatcher(url);
        const a = await customerWithConversation(ctx, 'Ahead');
        const b = await customerWithConversation(ctx, 'Behind');
        await queueAndSettle(api, watcher, a.id);
        await queueAndSettle(api, watcher, b.id);
        await positionIs(b.socket, b.id, 1);
        const said = await b.socket.sendOk(b.id, 'still waiting');
        await b.socket.waitSeq(said.seq);

        // Offline while the one ahead is accepted: the position changes unseen.
        const gone = b.socket.disconnects.until((items) => items.length > 0, { description: 'the disconnect' });
        b.socket.disconnect();
        await gone;
        await api.accept(a.id, uid('agent'), 'Ann');
        await watcher.snapshots.latest((s) => JSON.stringify(idsOf(s)) === JSON.stringify([b.id]), { description: 'a snapshot without the accepted one', ...wait });

        for (const lastSeq of [said.seq, 0]) {
          const again = await clients.customer(url, { token: b.customerId, conversationId: b.id, lastSeq });
          assert.equal(again.joined.recovered, true, 'a resume');
          await positionIs(again, b.id, 0);
          const joined = indexIn(again, (ev, p) => ev === 'system:event' && p === again.joined);
          const told = indexIn(again, (ev) => ev === 'queue:position');
          assert.ok(joined >= 0 && told > joined, `the position follows the join system:event: ${JSON.stringify(again.timeline.map(([ev]) => ev))}`);
          assert.deepEqual(again.messages.items.map((m) => m.seq), lastSeq === 0 ? [said.seq] : [], 'the backlog after lastSeq');
          assert.deepEqual(positionsOf(again), [0], 'told once');
          const left = again.disconnects.until((items) => items.length > 0, { description: 'the disconnect' });
          again.disconnect();
          await left;
        }
      }));

    it('GET /api/conversations/{id}/queue: 200 while queued, 404 unknown, 409 when not queued, 403 for others', () =>
      withChatServer({ executors }, async ({ api, url, clients }) => {
        const watcher = await clients.queueWatcher(url);
        const path = (id) => `/api/conversations/${id}/queue`;
        const first = await api.createConversation({ customerId: uid('cust'), name: 'First' });
        const second = await api.createConversation({ customerId: uid('cust'), name: 'Second' });

        const open = await api.get(path(first.id));
        assertError(open, 409);
        assert.equal(open.body.code, 'conflict', 'OPEN: not queued');

        await queueAndSettle(api, watcher, first.id);
        await queueAndSettle(api, watcher, second.id);
        assert.deepEqual(await api.expect(200, 'GET', path(first.id)), { position: 0, estimatedWait: 'PT2M' });
        assert.deepEqual(await api.expect(200, 'GET', path(second.id)), { position: 1, estimatedWait: 'PT4M' });

        // Someone else's conversation: refused like reading the conversation itself.
        const other = await api.request('GET', path(first.id), { headers: { 'X-Participant-Id': uid('someone-else') } });
        assertError(other, 403);
        // (Someone named: with verified tokens, an unnamed caller of an unknown conversation is 401.)
        const unknown = await api.request('GET', path('00000000-0000-4000-8000-000000000000'), { headers: { 'X-Participant-Id': uid('cust') } });
        assertError(unknown, 404);
        assert.equal(unknown.body.code, 'not_found');

        await api.accept(first.id, uid('agent'), 'Ann');
        const assigned = await api.get(path(first.id));
        assertError(assigned, 409);
        assert.equal(assigned.body.code, 'conflict', 'ASSIGNED: not queued');
        assert.deepEqual(await api.expect(200, 'GET', path(second.id)), { position: 0, estimatedWait: 'PT2M' }, 'moved up');

        await api.closeByCustomer(second.id, second.customer.id);
        const closed = await api.get(path(second.id));
        assertError(closed, 409);
        assert.equal(closed.body.code, 'conflict', 'CLOSED: not queued');
      }));

    it('position-limit: the conversations behind it get updates once they move within it', () =>
      withChatServer({ executors, config: { 'chat.queue': { 'position-limit': 2 } } }, async (ctx) => {
        const { api, url, clients } = ctx;
        const watcher = await clients.queueWatcher(url);
        const c = [];
        for (let i = 0; i < 4; i++) c.push(await customerWithConversation(ctx, `Limit ${i}`));
        for (const x of c) await queueAndSettle(api, watcher, x.id);
        // Entering the queue tells every socket where it stands, within the limit or not.
        for (const [i, x] of c.entries()) await positionIs(x.socket, x.id, i);

        await api.accept(c[0].id, uid('agent'), 'Ann');
        await positionIs(c[1].socket, c[1].id, 0);
        await positionIs(c[2].socket, c[2].id, 1);
        await api.accept(c[1].id, uid('agent'), 'Bea');
        await positionIs(c[2].socket, c[2].id, 0);
        await positionIs(c[3].socket, c[3].id, 1);
        // The third place after the first accept was behind the limit: never sent (a tick
        // that had sent it would have come before the one that sent 1).
        assert.deepEqual(positionsOf(c[3].socket), [3, 1]);
        assert.deepEqual(positionsOf(c[2].socket), [2, 1, 0]);
        assert.deepEqual(await api.expect(200, 'GET', `/api/conversations/${c[3].id}/queue`), { position: 1, estimatedWait: 'PT4M' });
      }));

    it('a conversation queued again is told again, also at the same place, to every socket still joined', () =>
      withChatServer({ executors }, async (ctx) => {
        const { api, url, clients } = ctx;
        const watcher = await clients.queueWatcher(url);
        const x = await customerWithConversation(ctx, 'Again');
        await queueAndSettle(api, watcher, x.id);
        await positionIs(x.socket, x.id, 0);
        const agentId = uid('agent');
        await api.accept(x.id, agentId, 'Ann');
        const agent = await clients.agent(url, { token: agentId, conversationId: x.id });
        await x.socket.waitStatus('ASSIGNED', wait);

        // Back into the queue (the agent is released; its socket is still in the room).
        const answer = await api.queue(x.id);
        assert.deepEqual(answer, { position: 0, estimatedWait: 'PT2M' });
        await x.socket.positions.until((items) => items.length === 2, { description: 'the second queue:position', ...wait });
        await positionIs(x.socket, x.id, 0);
        await positionIs(agent, x.id, 0);
        const requeued = x.socket.timeline.findLastIndex(([ev, p]) => ev === 'system:event' && p?.type === 'CONVERSATION_QUEUED');
        const told = x.socket.timeline.findLastIndex(([ev]) => ev === 'queue:position');
        assert.ok(requeued >= 0 && told > requeued, 'told after the second CONVERSATION_QUEUED');

        // Closed: gone from the queue, and nobody is told anything more.
        await api.closeByCustomer(x.id, x.customerId);
        await x.socket.waitStatus('CLOSED', wait);
        await watcher.snapshots.latest((s) => s.length === 0, { description: 'the empty queue', ...wait });
        assert.deepEqual(positionsOf(x.socket), [0, 0]);
        assert.deepEqual(positionsOf(agent), [0]);
      }));
  });
}
