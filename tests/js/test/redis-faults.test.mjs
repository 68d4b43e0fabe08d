// Redis in its bad hour: nodes (`livechat serve --executors 2`, Redis backend) against a
// redis-server this file starts, kills, restarts and pauses itself (AOF with
// `appendfsync always`, so what Redis acknowledged survives a kill), and a TCP proxy that
// cuts one node off while the other keeps working.
//
// - Restart during traffic: errors are `unavailable` acks / 503s while Redis is down, the
//   nodes recover by themselves, every acknowledged message is stored once in seq order, and
//   both nodes' sockets saw 1..n without gap or duplicate; nothing was disconnected.
// - Pause (SIGSTOP) longer than the command timeout: fast 503s, /healthz keeps answering,
//   everything works again after SIGCONT.
// - One node cut off: messages committed through the other node meanwhile reach the cut-off
//   node's sockets after it reconnects (from the conversation's buffer), with
//   `system:event {recovered: true}`, then live ones, no gap, no duplicate.
//
// Needs `redis-server` on PATH (the README's test command installs it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Api,
  BULK_TIMEOUT_MS,
  ChatClients,
  assertAckError,
  assertContiguous,
  assertError,
  idsOf,
  startChatServer,
  uid,
  usingChatStub,
} from '../lib/chat.mjs';
import { HAVE_REDIS_SERVER, OwnCluster, OwnRedis, TcpProxy } from '../lib/redis-server.mjs';

const SKIP = usingChatStub ? 'the Node stand-in has no Redis backend' : !HAVE_REDIS_SERVER ? 'redis-server is not installed' : false;

/**
 * Starts one node per Redis URL (sharing a key prefix), runs `fn`, always cleans up. A URL may
 * be `{url, failpoint}`: that node runs with `LIVECHAT_FAILPOINT` set (it aborts there, and its
 * abnormal exit is expected).
 */
async function withNodes(redisUrls, config, fn) {
  const prefix = uid('lc-faults');
  const servers = [];
  const clients = new ChatClients();
  let failure = null;
  try {
    for (const [i, spec] of redisUrls.entries()) {
      const { url, failpoint } = typeof spec === 'string' ? { url: spec } : spec;
      // The child inherits the environment when it is spawned (synchronously, in startChatServer).
      if (failpoint) process.env.LIVECHAT_FAILPOINT = failpoint;
      const started = startChatServer({
        executors: 2,
        label: `node ${'AB'[i]}`,
        config: { ...config, 'chat.redis': { url, 'key-prefix': prefix, 'command-timeout': '500ms', ...(config['chat.redis'] || {}) } },
      });
      delete process.env.LIVECHAT_FAILPOINT;
      const server = await started;
      server.failpoint = failpoint;
      servers.push(server);
    }
    const nodes = servers.map((s, i) => ({ name: 'AB'[i], url: s.url, api: new Api(s.url), server: s }));
    await fn({ nodes, clients, prefix });
  } catch (err) {
    failure = err;
  }
  clients.closeAll();
  for (const s of servers) {
    try {
      await s.close();
    } catch (err) {
      if (!failure && !s.failpoint) failure = err;
    }
  }
  if (failure) throw failure;
}

/** Resolves with the exit of a node's process. */
function exitOf(node) {
  const child = node.server.child;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', r));
}

/** Accepts `id` as `agentId` on `node`, retrying while the conversation's lock is held (503). */
async function acceptWhenUnlocked(node, id, agentId) {
  for (let i = 0; i < 200; i++) {
    const res = await node.api.acceptRaw(id, agentId, agentId);
    if (res.status !== 503) return res;
    assert.equal(res.body?.code, 'unavailable', `503 while the lock is held: ${res.text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`accept of ${id} by ${agentId} stayed 503`);
}

/** An assigned conversation with the customer's socket on `cNode` and the agent's on `aNode`. */
async function chatOver(cNode, aNode, clients) {
  const customerId = uid('cust');
  const agentId = uid('agent');
  const conv = await cNode.api.queuedConversation({ customerId, name: 'Faulty Customer' });
  await aNode.api.accept(conv.id, agentId, 'Faulty Agent');
  const customer = await clients.customer(cNode.url, { token: customerId, displayName: 'Faulty Customer', conversationId: conv.id });
  const agent = await clients.agent(aNode.url, { token: agentId, displayName: 'Faulty Agent', conversationId: conv.id });
  return { conv, customer, agent, customerId, agentId };
}

/**
 * Sends `content` with a clientMessageId until it is stored (retrying after `unavailable`
 * errors with the same id, so a commit whose reply was lost is not stored twice). Returns the
 * stored message and the error acks seen.
 */
async function sendUntilStored(client, conversationId, content) {
  const clientMessageId = uid('cmid');
  const errors = [];
  for (;;) {
    const ack = await client.send(conversationId, content, { clientMessageId });
    if (ack && ack.seq !== undefined && !ack.error) return { stored: ack, errors };
    if (ack?.code === 'rate_limited') {
      // Retrying too fast for the per-socket limit (20/s): as a client would, wait.
      await new Promise((r) => setTimeout(r, ack.retryAfterMs));
      continue;
    }
    assertAckError(ack, 503, `${client.label} sending ${content}`);
    assert.equal(ack.code, 'unavailable', `error ack while Redis is away: ${JSON.stringify(ack)}`);
    errors.push(ack);
    if (errors.length > 500) throw new Error(`${content} was never stored: ${JSON.stringify(errors.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 60));
  }
}

/** Every socket saw exactly `n` messages, 1..n in order. */
async function assertSawAll(client, n) {
  const got = await client.waitSeq(n, { timeoutMs: BULK_TIMEOUT_MS });
  assertContiguous(got, 1, `chat:message on ${client.label}`);
  assert.equal(got.length, n, `${client.label} got every message exactly once (seqs ${got.map((m) => m.seq).join(',')})`);
}

describe('Redis faults', { skip: SKIP }, () => {
  it('Redis killed and restarted during traffic (AOF): unavailable errors, recovery without restarting a node, nothing acknowledged lost', async () => {
    const redis = await new OwnRedis().start();
    try {
      await withNodes([redis.url, redis.url], {}, async ({ nodes: [A, B], clients }) => {
        const { conv, customer, agent } = await chatOver(A, B, clients);
        const stored = [];
        let errorsSeen = 0;
        let killed = false;
        let restarted = null;
        for (let i = 0; i < 60; i++) {
          const sender = i % 2 === 0 ? customer : agent;
          const { stored: m, errors } = await sendUntilStored(sender, conv.id, `msg ${i}`);
          stored.push(m);
          errorsSeen += errors.length;
          if (i === 20 && !killed) {
            // Down: REST answers 503 unavailable; the restart comes a little later.
            await redis.kill();
            killed = true;
            const down = await A.api.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: { 'X-Participant-Id': uid('cust') } });
            assertError(down, 503, 'start while Redis is down');
            assert.equal(down.body.code, 'unavailable', 'start while Redis is down: code');
            restarted = new Promise((r) => setTimeout(r, 700)).then(() => redis.start());
          }
        }
        await restarted;
        assert.ok(errorsSeen > 0, 'messages sent while Redis was down were refused with unavailable');
        // Stored once each, in seq order, contents in send order.
        stored.forEach((m, i) => assert.equal(m.content, `msg ${i}`, `stored message ${i}`));
        assertContiguous(stored, stored[0].seq, 'acknowledged messages');
        for (const n of [A, B]) {
          const kept = (await n.api.messages(conv.id)).filter((m) => m.content.startsWith('msg '));
          assert.deepEqual(kept.map((m) => m.content), stored.map((m) => m.content), `messages read on node ${n.name}`);
          assertContiguous(kept, 1, `messages read on node ${n.name}`);
        }
        // Pub/Sub delivers again on both nodes; each socket saw every message once, in order.
        const last = await customer.sendOk(conv.id, 'after recovery');
        for (const c of [customer, agent]) {
          await assertSawAll(c, last.seq);
          assert.equal(c.disconnects.items.length, 0, `${c.label} stayed connected`);
        }
        // New conversations work again on both nodes.
        for (const n of [A, B]) await n.api.createConversation({ customerId: uid('cust'), name: 'After' });
      });
    } finally {
      await redis.stop();
    }
  });

  it('Redis paused longer than the command timeout: 503 unavailable, /healthz answers, recovery after SIGCONT', async () => {
    const redis = await new OwnRedis().start();
    try {
      await withNodes([redis.url], {}, async ({ nodes: [A], clients }) => {
        const { conv, customer } = await chatOver(A, A, clients);
        await customer.sendOk(conv.id, 'before the pause');
        redis.pause();
        try {
          const [start, send, health] = await Promise.all([
            A.api.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: { 'X-Participant-Id': uid('cust') } }),
            customer.send(conv.id, 'during the pause'),
            A.api.request('GET', '/healthz'),
          ]);
          assertError(start, 503, 'start while Redis is paused');
          assert.equal(start.body.code, 'unavailable');
          assertAckError(send, 503, 'message while Redis is paused');
          assert.equal(send.code, 'unavailable');
          assert.equal(health.status, 200, '/healthz answers while Redis is paused');
          // The executors are not blocked: more requests are answered (with errors) meanwhile.
          const again = await A.api.request('GET', `/api/conversations/${conv.id}`);
          assertError(again, 503, 'read while Redis is paused');
        } finally {
          redis.resume();
        }
        const { stored } = await sendUntilStored(customer, conv.id, 'after the pause');
        assert.equal(stored.content, 'after the pause');
        await customer.waitMessage((m) => m.content === 'after the pause', 'the message after the pause', { timeoutMs: BULK_TIMEOUT_MS });
        await A.api.createConversation({ customerId: uid('cust'), name: 'After' });
      });
    } finally {
      await redis.stop();
    }
  });

  it('a node cut off from Redis catches its sockets up when it is back: missed messages, recovered:true, then live ones', async () => {
    const redis = await new OwnRedis().start();
    const proxy = new TcpProxy(redis.port);
    const proxyPort = await proxy.listen();
    try {
      await withNodes([`redis://127.0.0.1:${proxyPort}/0`, redis.url], {}, async ({ nodes: [A, B], clients }) => {
        // The customer's socket on A (behind the proxy), the agent's on B.
        const { conv, customer, agent } = await chatOver(A, B, clients);
        const before = await agent.sendOk(conv.id, 'before the cut');
        await customer.waitSeq(before.seq);
        const joinEvents = customer.events.items.length;

        proxy.cut();
        // While A is cut off, B keeps storing (and A's sockets stay connected).
        const missed = [];
        for (let i = 0; i < 5; i++) missed.push(await agent.sendOk(conv.id, `while A was cut off ${i}`));
        const refused = await A.api.request('GET', `/api/conversations/${conv.id}`);
        assertError(refused, 503, 'a read on the cut-off node');
        proxy.restore();

        // A catches up from the buffer: the missed messages, then the recovery notice.
        const recovered = await customer.events.find((e, i) => i >= joinEvents && e?.recovered !== undefined, {
          description: 'the recovery system:event',
          timeoutMs: BULK_TIMEOUT_MS,
        });
        assert.equal(recovered.recovered, true, 'everything missed was still in the buffer');
        assert.equal(recovered.conversation?.id, conv.id);
        assert.equal(recovered.participant?.type, 'CUSTOMER', 'the notice names the socket’s own participant');
        const after = await agent.sendOk(conv.id, 'after the cut');
        await assertSawAll(customer, after.seq);
        assert.deepEqual(
          customer.messages.items.slice(before.seq, after.seq - 1).map((m) => m.content),
          missed.map((m) => m.content),
          'the missed messages, in order',
        );
        // The recovery notice came after the missed messages and before the live one.
        const order = customer.timeline.filter(([ev]) => ev !== 'queue:snapshot').map(([ev, p]) => (ev === 'chat:message' ? p.seq : ev === 'system:event' && p.recovered !== undefined ? 'recovered' : null)).filter((x) => x !== null);
        assert.deepEqual(order.slice(-3), [missed.at(-1).seq, 'recovered', after.seq], 'missed messages, then the notice, then live');
        assert.equal(customer.disconnects.items.length, 0, 'the customer stayed connected');
        await assertSawAll(agent, after.seq);
      });
    } finally {
      await proxy.close();
      await redis.stop();
    }
  });
  it('a node dies between the agent claim and the decision (failpoint after-claim): the lease frees the conversation, the scan frees the slot', async () => {
    const redis = await new OwnRedis().start();
    try {
      const config = { 'chat.queue': { 'max-concurrent-by-agent': 1 }, 'chat.housekeeping': { interval: '300ms' } };
      await withNodes([{ url: redis.url, failpoint: 'after-claim' }, redis.url], config, async ({ nodes: [A, B] }) => {
        const first = await B.api.queuedConversation({ customerId: uid('cust') });
        const dead = exitOf(A);
        // A claims the agent's only slot, then dies before the conversation changed.
        await assert.rejects(A.api.acceptRaw(first.id, 'agent-x', 'X'), 'the accept on the dying node gets no answer');
        await dead;
        const still = await B.api.conversation(first.id);
        assert.equal(still.status, 'QUEUED', 'nothing half-applied: still queued');
        assert.equal(still.agent ?? null, null, 'and assigned to nobody');
        // Another agent gets it once the lease ran out: exactly one assignment.
        const won = await acceptWhenUnlocked(B, first.id, 'agent-y');
        assert.equal(won.status, 200, `accept by agent-y: ${won.text}`);
        assert.equal(won.body.agent.id, 'agent-y');
        // agent-x's claimed slot (cap 1) is given back by the housekeeping scan: agent-x can
        // accept another conversation (429 until the scan ran).
        const second = await B.api.queuedConversation({ customerId: uid('cust') });
        let res;
        for (let i = 0; i < 300; i++) {
          res = await B.api.acceptRaw(second.id, 'agent-x', 'X');
          if (res.status !== 429) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(res.status, 200, `agent-x accepts after the repair: ${res.text}`);
        const mine = await B.api.agentConversations('agent-x', ['ASSIGNED']);
        assert.deepEqual(mine.map((c) => c.id), [second.id], 'agent-x holds exactly the second conversation');
      });
    } finally {
      await redis.stop();
    }
  });

  it('a node dies right after the decision (failpoint after-decision): the accept holds, the stale queue entry is removed by the scan', async () => {
    const redis = await new OwnRedis().start();
    try {
      const config = { 'chat.housekeeping': { interval: '300ms' } };
      await withNodes([{ url: redis.url, failpoint: 'after-decision' }, redis.url], config, async ({ nodes: [A, B], clients }) => {
        const customerId = uid('cust');
        const conv = await B.api.queuedConversation({ customerId });
        const dead = exitOf(A);
        await assert.rejects(A.api.acceptRaw(conv.id, 'agent-x', 'X'), 'the accept on the dying node gets no answer');
        await dead;
        const now = await B.api.conversation(conv.id);
        assert.equal(now.status, 'ASSIGNED', 'the decision was made before the node died');
        assert.equal(now.agent?.id, 'agent-x');
        // A second accept is refused as taken, never assigned twice.
        const late = await acceptWhenUnlocked(B, conv.id, 'agent-y');
        assert.equal(late.status, 409, `a second accept: ${late.text}`);
        // The queue entry the dead node did not remove goes with the next sweep.
        for (let i = 0; i < 300 && idsOf(await B.api.agentQueue()).includes(conv.id); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(!idsOf(await B.api.agentQueue()).includes(conv.id), 'the stale queue entry was removed');
        // The conversation works: the assigned agent and the customer talk over B.
        const agent = await clients.agent(B.url, { token: 'agent-x', displayName: 'X', conversationId: conv.id });
        const m = await agent.sendOk(conv.id, 'hello after the crash');
        const customer = await clients.customer(B.url, { token: customerId, conversationId: conv.id, lastSeq: 0 });
        await customer.waitMessage((x) => x.seq === m.seq, 'the agent message');
      });
    } finally {
      await redis.stop();
    }
  });
  it('a Redis Cluster master killed and restarted during traffic: errors for its shard only, recovery, nothing acknowledged lost', async () => {
    const cluster = await new OwnCluster().start();
    try {
      await withNodes([cluster.url, cluster.url], {}, async ({ nodes: [A, B], clients, prefix }) => {
        // Conversations until one lives on master 0 and one elsewhere.
        const chats = [];
        let onVictim;
        let elsewhere;
        while (!onVictim || !elsewhere) {
          const chat = await chatOver(A, B, clients);
          const master = await cluster.masterFor(`${prefix}:conversation:{${chat.conv.id}}`);
          chats.push(chat);
          if (master === 0 && !onVictim) onVictim = chat;
          if (master !== 0 && !elsewhere) elsewhere = chat;
        }
        const stored = [];
        let errorsSeen = 0;
        let restarted = null;
        for (let i = 0; i < 40; i++) {
          const sender = i % 2 === 0 ? onVictim.customer : onVictim.agent;
          const { stored: m, errors } = await sendUntilStored(sender, onVictim.conv.id, `msg ${i}`);
          stored.push(m);
          errorsSeen += errors.length;
          if (i === 15 && !restarted) {
            await cluster.masters[0].kill();
            // The other shards keep serving their conversations meanwhile.
            await elsewhere.customer.sendOk(elsewhere.conv.id, 'while master 0 is down');
            restarted = new Promise((r) => setTimeout(r, 500)).then(async () => {
              await cluster.masters[0].start();
              await cluster.untilOk();
            });
          }
        }
        await restarted;
        assert.ok(errorsSeen > 0, 'messages to the dead master were refused with unavailable');
        stored.forEach((m, i) => assert.equal(m.content, `msg ${i}`, `stored message ${i}`));
        assertContiguous(stored, stored[0].seq, 'acknowledged messages');
        for (const n of [A, B]) {
          const kept = (await n.api.messages(onVictim.conv.id)).filter((m) => m.content.startsWith('msg '));
          assert.deepEqual(kept.map((m) => m.content), stored.map((m) => m.content), `messages read on node ${n.name}`);
        }
        const last = await onVictim.customer.sendOk(onVictim.conv.id, 'after recovery');
        for (const c of [onVictim.customer, onVictim.agent]) {
          await assertSawAll(c, last.seq);
          assert.equal(c.disconnects.items.length, 0, `${c.label} stayed connected`);
        }
        const other = await elsewhere.agent.sendOk(elsewhere.conv.id, 'elsewhere after recovery');
        await assertSawAll(elsewhere.customer, other.seq);
      });
    } finally {
      await cluster.stop();
    }
  });
});
