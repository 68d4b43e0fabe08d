// queue:snapshot for agents with scope=queue: the initial snapshot on join,
// coalesced snapshots under a burst of 20 queue/accept/close changes that
// converge to the final queue (the LAST snapshot matches GET /api/agent/queue;
// tests wait for it rather than counting snapshots), oldest first, at most
// broadcast-limit entries; GET /api/agent/queue paging.
// Every test runs its own server so the queue starts empty.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BULK_TIMEOUT_MS,
  EXECUTOR_COUNTS,
  assertOldestFirst,
  assertSnapshot,
  idsOf,
  uid,
  withChatServer,
} from '../lib/chat.mjs';

const wait = { timeoutMs: BULK_TIMEOUT_MS };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** Waits until the newest snapshot of every watcher has exactly `ids` (in order). */
async function converged(watchers, ids, what) {
  for (const w of watchers) {
    await w.snapshots.latest((s) => same(idsOf(s), ids), { description: `the latest snapshot to be ${what} ${JSON.stringify(ids)}`, ...wait });
  }
}

/** Every snapshot a watcher ever got is a well-formed, oldest-first array of at most `limit`. */
function assertAllSnapshots(watcher, limit) {
  for (const [i, s] of watcher.snapshots.items.entries()) {
    assertSnapshot(s, `${watcher.label} snapshot #${i}`);
    assert.ok(s.length <= limit, `${watcher.label} snapshot #${i} has ${s.length} entries > broadcast-limit ${limit}`);
    assertOldestFirst(s, `${watcher.label} snapshot #${i}`);
  }
}

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat queue snapshot (--executors ${executors})`, () => {
    it('initial snapshot on join; snapshots follow queue changes; equal to GET /api/agent/queue', () =>
      withChatServer({ executors }, async ({ url, api, clients }) => {
        const first = await clients.queueWatcher(url);
        assert.deepEqual(first.snapshots.items[0], [], 'empty queue -> []');

        const convs = [];
        for (let i = 0; i < 3; i++) {
          convs.push(await api.queuedConversation({ name: `Q${i}` }));
          await converged([first], convs.map((c) => c.id), `after queueing ${i + 1}`);
        }
        const ids = convs.map((c) => c.id);
        const rest = await api.agentQueue();
        assert.deepEqual(idsOf(rest), ids, 'GET /api/agent/queue is oldest first');
        assertOldestFirst(rest);
        assert.deepEqual(first.snapshots.last, rest, 'snapshot entries equal the REST entries');
        for (const [i, e] of rest.entries()) {
          assert.equal(e.customerId, convs[i].customerId);
          assert.equal(e.customerName, `Q${i}`);
          assert.equal(e.channel, 'web');
        }

        // A watcher joining now gets the current queue right away.
        const second = await clients.queueWatcher(url);
        assert.deepEqual(idsOf(second.snapshots.items[0]), ids, 'initial snapshot of a late watcher');

        // Accepting the middle one / closing the first one.
        await api.accept(ids[1], uid('agent'), 'A');
        await converged([first, second], [ids[0], ids[2]], 'after accept');
        await api.closeByCustomer(ids[0], convs[0].customerId);
        await converged([first, second], [ids[2]], 'after close');
        await api.accept(ids[2], uid('agent'), 'A');
        await converged([first, second], [], 'after the last accept');
        for (const w of [first, second]) assertAllSnapshots(w, 50);
      }));

    it('burst of 20 queue/accept/close changes: every watcher converges to the final queue', () =>
      withChatServer({ executors }, async ({ url, api, clients }) => {
        const watchers = [];
        for (let i = 0; i < 3; i++) watchers.push(await clients.queueWatcher(url));
        // 14 conversations; all are queued (14 changes), 4 then accepted and 2
        // closed by their customer (6 changes) — all at once.
        const convs = [];
        for (let i = 0; i < 14; i++) {
          const customerId = uid('cust');
          convs.push({ ...(await api.createConversation({ customerId, name: `Burst ${i}` })), customerId });
        }
        const fate = (i) => (i < 4 ? 'accept' : i < 6 ? 'close' : 'stay');
        await Promise.all(
          convs.map(async (c, i) => {
            await api.queue(c.id);
            if (fate(i) === 'accept') await api.accept(c.id, uid('agent'), `Agent ${i}`);
            if (fate(i) === 'close') await api.closeByCustomer(c.id, c.customerId);
          }),
        );
        const staying = new Set(convs.filter((_, i) => fate(i) === 'stay').map((c) => c.id));

        const rest = await api.agentQueue();
        assert.deepEqual(new Set(idsOf(rest)), staying, 'GET /api/agent/queue holds exactly the conversations still queued');
        assert.equal(rest.length, staying.size, 'no duplicates in the queue');
        assertOldestFirst(rest, 'GET /api/agent/queue');
        await converged(watchers, idsOf(rest), 'the final queue');
        for (const w of watchers) {
          assert.deepEqual(w.snapshots.last, rest, `${w.label}: last snapshot equals the REST queue`);
          assertAllSnapshots(w, 50);
        }

        // It really was the last one: one more change yields exactly final + new.
        const extra = await api.queuedConversation({ name: 'Barrier' });
        await converged(watchers, [...idsOf(rest), extra.id], 'the final queue plus one');
      }));

    it('broadcast-limit: snapshots carry at most the oldest N entries; GET /api/agent/queue pages all', () =>
      withChatServer({ executors, config: { 'chat.queue': { 'broadcast-limit': 5 } } }, async ({ url, api, clients }) => {
        const watcher = await clients.queueWatcher(url);
        const ids = [];
        for (let i = 0; i < 8; i++) ids.push((await api.queuedConversation({ name: `L${i}` })).id);
        await converged([watcher], ids.slice(0, 5), 'the oldest 5');
        assertAllSnapshots(watcher, 5);

        const late = await clients.queueWatcher(url);
        assert.deepEqual(idsOf(late.snapshots.items[0]), ids.slice(0, 5), 'initial snapshot is limited too');

        assert.deepEqual(idsOf(await api.agentQueue({ page: 0, size: 50 })), ids, 'REST is not limited by broadcast-limit');
        assert.deepEqual(idsOf(await api.agentQueue({ page: 0, size: 3 })), ids.slice(0, 3), 'page 0 size 3');
        assert.deepEqual(idsOf(await api.agentQueue({ page: 1, size: 3 })), ids.slice(3, 6), 'page 1 size 3');
        assert.deepEqual(idsOf(await api.agentQueue({ page: 2, size: 3 })), ids.slice(6, 8), 'page 2 size 3');
        assert.deepEqual(idsOf(await api.agentQueue({ page: 3, size: 3 })), [], 'page past the end');

        // Taking the oldest moves the window.
        await api.accept(ids[0], uid('agent'), 'A');
        await converged([watcher, late], ids.slice(1, 6), 'the window after one accept');
        // Changes beyond the window still converge (the window itself is unchanged,
        // so a server may or may not send a snapshot; the latest must still be right).
        await api.closeByCustomer(ids[7], (await api.conversation(ids[7])).customer.id);
        await api.accept(ids[1], uid('agent'), 'A');
        await converged([watcher, late], ids.slice(2, 7), 'the window after a close beyond it and an accept');
        for (const w of [watcher, late]) assertAllSnapshots(w, 5);
      }));

    it('watchers only: customer and conversation sockets do not get queue:snapshot', () =>
      withChatServer({ executors }, async ({ url, api, clients }) => {
        const watcher = await clients.queueWatcher(url);
        const customerId = uid('cust');
        const conv = await api.createConversation({ customerId, name: 'NoSnap' });
        const customer = await clients.customer(url, { token: customerId, conversationId: conv.id });
        await api.queue(conv.id);
        await converged([watcher], [conv.id], 'the queued conversation');
        const agentId = uid('agent');
        await api.accept(conv.id, agentId, 'A');
        const agent = await clients.agent(url, { token: agentId, conversationId: conv.id });
        await converged([watcher], [], 'empty after accept');
        const m = await agent.sendOk(conv.id, 'barrier');
        await Promise.all([customer.waitSeq(m.seq), agent.waitSeq(m.seq)]);
        assert.deepEqual(customer.snapshots.items, [], 'customer socket got no snapshot');
        assert.deepEqual(agent.snapshots.items, [], 'conversation agent socket got no snapshot');
      }));
  });
}
