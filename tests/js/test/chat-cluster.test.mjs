// A chat cluster: 2 or 3 `livechat` processes (--executors 2 each) sharing one
// Redis (same url, same key prefix) behave like one server. Room events
// (chat:message, system:event, queue:snapshot, queue:position) reach sockets on every node,
// accept is single-winner and the per-agent cap holds across nodes, concurrent
// senders on different nodes get one gap-free seq order, a socket resumes with
// `lastSeq` on another node without gap or duplicate, and a corrupt Redis value
// is an error for that conversation only.
//
// Needs LIVECHAT_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/5); skipped
// otherwise. Every test runs its own cluster under a fresh key prefix and
// deletes that prefix's keys afterwards.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Api,
  BULK_TIMEOUT_MS,
  ChatClients,
  assertCloseMessage,
  assertContiguous,
  assertConversation,
  assertError,
  assertMessage,
  assertOldestFirst,
  assertSnapshot,
  idsOf,
  randomUUID,
  startChatServer,
  uid,
  usingChatStub,
} from '../lib/chat.mjs';
import { Resp } from '../lib/redis-server.mjs';

const REDIS_URL = process.env.LIVECHAT_TEST_REDIS_URL;
const SKIP = !REDIS_URL
  ? 'LIVECHAT_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/5): the cluster tests need a Redis shared by the nodes'
  : usingChatStub
    ? 'LIVECHAT_CHAT_REF_SERVER is set: the Node stand-in has no Redis backend, its nodes would not form a cluster'
    : false;

const EXECUTORS = 2;
const bulk = { timeoutMs: BULK_TIMEOUT_MS };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const countBy = (items, key) => items.reduce((m, x) => ({ ...m, [key(x)]: (m[key(x)] ?? 0) + 1 }), {});

/** Deletes every key under `prefix:` (a test's cluster leaves nothing behind). */
async function deletePrefix(prefix) {
  // Every master of a cluster (SCAN walks one server); keys one by one (they span slots).
  for (const r of await Resp.openEach(REDIS_URL)) {
    try {
      let cursor = '0';
      do {
        const [next, keys] = await r.cmd('SCAN', cursor, 'MATCH', `${prefix}:*`, 'COUNT', '1000');
        for (const key of keys) await r.cmd('DEL', key);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      r.close();
    }
  }
}

// ---------------------------------------------------------------------------
// the cluster
// ---------------------------------------------------------------------------

/**
 * Starts `nodes` livechat processes sharing one fresh Redis key prefix and runs
 * `fn({nodes, clients, prefix})` with `nodes[i] = {name, url, api, server}`;
 * always closes the sockets and the servers (a node that crashed or did not
 * exit 0 on SIGTERM fails the test) and deletes the prefix's keys.
 */
async function withCluster({ nodes: count, config = {} }, fn) {
  // Streams here run at full speed from one socket to test ordering across nodes: the
  // per-socket event rate limit (tested in security.test.mjs) is lifted.
  config = { 'chat.security.rate': { 'events-per-second': 1000000, burst: 1000000 }, ...config };
  const prefix = `lc-cluster-${randomUUID().slice(0, 12)}`;
  const names = ['A', 'B', 'C', 'D'].slice(0, count);
  const started = await Promise.allSettled(
    names.map((name) => startChatServer({ executors: EXECUTORS, config, redisPrefix: prefix, label: `node ${name}` })),
  );
  const servers = started.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  const failedStart = started.find((s) => s.status === 'rejected');
  const clients = new ChatClients();
  let failure = failedStart ? failedStart.reason : null;
  if (!failure) {
    const nodes = servers.map((server, i) => ({ name: names[i], url: server.url, api: new Api(server.url), server }));
    try {
      await fn({ nodes, clients, prefix });
    } catch (err) {
      failure = err;
    }
  }
  clients.closeAll();
  const closed = await Promise.allSettled(servers.map((s) => s.close()));
  for (const c of closed) {
    if (c.status !== 'rejected') continue;
    if (!failure) failure = c.reason;
    else failure.message += `\n(and on shutdown: ${c.reason.message})`;
  }
  try {
    await deletePrefix(prefix);
  } catch (err) {
    if (!failure) failure = err;
  }
  if (failure) throw failure;
}

/** Checks the lifecycle system:event `type` and that `participant` is the receiving socket's own. */
function assertNotice(ev, { type, status, id, self }, what) {
  assert.equal(ev.type, type, `${what}: system:event type (${JSON.stringify(ev).slice(0, 300)})`);
  assert.equal(ev.conversation?.id, id, `${what}: conversation.id`);
  assert.equal(ev.conversation?.status, status, `${what}: conversation.status`);
  assert.equal(ev.participant?.id, self, `${what}: participant is the socket's own (${JSON.stringify(ev.participant)})`);
}

/** The lifecycle (non-join) system:events a client got. */
const notices = (client) => client.events.items.filter((e) => e !== client.joined && typeof e?.type === 'string');

/** Queued + accepted conversation: created and queued on `qNode`, accepted on `aNode`. */
async function assignedConversation(qNode, aNode, { customerId = uid('cust'), agentId = uid('agent'), name = 'Cluster Customer', agentName = 'Cluster Agent' } = {}) {
  const conv = await qNode.api.queuedConversation({ customerId, name });
  const accepted = await aNode.api.accept(conv.id, agentId, agentName);
  assertConversation(accepted, { id: conv.id, status: 'ASSIGNED', agent: { id: agentId } }, 'accepted');
  return { conv, customerId, agentId, name, agentName };
}

describe('chat cluster (nodes sharing one Redis)', { skip: SKIP }, () => {
  it('customer on A, agent on B: notices and messages reach both nodes exactly once; close from B', () =>
    withCluster({ nodes: 2 }, async ({ nodes: [A, B], clients }) => {
      const agentId = uid('agent');
      const customerId = uid('cust');

      // Started by a customer socket on A; the customer's second device on B.
      const customerA = await clients.customer(A.url, { token: customerId, displayName: 'Bob' });
      const conv = customerA.joined.conversation;
      assertConversation(conv, { status: 'OPEN', customer: { id: customerId, displayName: 'Bob' } }, 'socket-started on A');
      for (const n of [A, B]) assertConversation(await n.api.conversation(conv.id), { id: conv.id, status: 'OPEN' }, `GET on ${n.name}`);
      const customerB = await clients.customer(B.url, { token: customerId, displayName: 'Bob', conversationId: conv.id });
      assertConversation(customerB.joined.conversation, { id: conv.id, status: 'OPEN' }, 'join on B');

      // Queued on A: both nodes' sockets are told.
      await A.api.queue(conv.id, { channel: 'web' });
      for (const c of [customerA, customerB]) {
        assertNotice(await c.waitStatus('QUEUED'), { type: 'CONVERSATION_QUEUED', status: 'QUEUED', id: conv.id, self: customerId }, `queued on ${c.label}`);
      }
      assert.ok(idsOf(await B.api.agentQueue()).includes(conv.id), 'B lists the conversation queued on A');

      // Accepted over REST on B: both nodes' sockets are told.
      const accepted = await B.api.accept(conv.id, agentId, 'Ann');
      assertConversation(accepted, { id: conv.id, status: 'ASSIGNED', agent: { id: agentId, displayName: 'Ann' } }, 'accept on B');
      for (const c of [customerA, customerB]) {
        const ev = await c.waitStatus('ASSIGNED');
        assertNotice(ev, { type: 'CONVERSATION_ACCEPTED', status: 'ASSIGNED', id: conv.id, self: customerId }, `accepted on ${c.label}`);
        assert.equal(ev.conversation.agent?.id, agentId, `${c.label}: the accepted notice names the agent`);
      }
      for (const n of [A, B]) {
        assertConversation(await n.api.conversation(conv.id), { status: 'ASSIGNED', agent: { id: agentId } }, `GET on ${n.name} after accept`);
        assert.deepEqual((await n.api.agentConversations(agentId, ['ASSIGNED'])).map((c) => c.id), [conv.id], `agent list on ${n.name}`);
        assert.ok(!idsOf(await n.api.agentQueue()).includes(conv.id), `not queued any more on ${n.name}`);
      }

      // The agent's socket on B (and a second tab on A).
      const agentB = await clients.agent(B.url, { token: agentId, displayName: 'Ann', conversationId: conv.id });
      const agentA = await clients.agent(A.url, { token: agentId, displayName: 'Ann', conversationId: conv.id });
      assertConversation(agentB.joined.conversation, { id: conv.id, status: 'ASSIGNED' }, 'agent join on B');

      // Both ways, over sockets and over REST on the other node than the sender's socket.
      const sent = [];
      for (let round = 0; round < 3; round++) {
        sent.push(await customerA.sendOk(conv.id, `customer socket on A #${round}`));
        sent.push(await agentB.sendOk(conv.id, `agent socket on B #${round}`));
        sent.push(await B.api.send(conv.id, { content: `customer REST on B #${round}`, senderId: customerId }));
        sent.push(
          await A.api.send(conv.id, { content: `agent REST on A #${round}`, senderType: 'AGENT', senderId: agentId, senderDisplayName: 'Ann' }),
        );
      }
      sent.forEach((m, i) => assertMessage(m, { conversationId: conv.id, seq: i + 1 }, `stored message ${i + 1}`));
      for (const [i, m] of sent.entries()) {
        const type = i % 4 === 0 || i % 4 === 2 ? 'CUSTOMER' : 'AGENT';
        assert.equal(m.sender.type, type, `message ${i + 1} sender type`);
      }

      // Close from B: everyone on both nodes gets the SYSTEM message and the notice.
      const closed = await B.api.closeByAgent(conv.id, agentId, 'Ann', 'resolved');
      assertConversation(closed, { id: conv.id, status: 'CLOSED' }, 'close on B');
      const closeSeq = sent.length + 1;
      for (const c of [customerA, customerB, agentA, agentB]) {
        const got = await c.waitSeq(closeSeq);
        assertContiguous(got, 1, `chat:message on ${c.label}`);
        assert.equal(got.length, closeSeq, `${c.label} received every message exactly once`);
        assert.deepEqual(got.slice(0, sent.length), sent, `${c.label}: the broadcasts equal the stored messages`);
        assertCloseMessage(got[closeSeq - 1], { conversationId: conv.id, byType: 'AGENT', byName: 'Ann' }, `close message on ${c.label}`);
        const self = c === agentA || c === agentB ? agentId : customerId;
        assertNotice(await c.waitStatus('CLOSED'), { type: 'CONVERSATION_CLOSED', status: 'CLOSED', id: conv.id, self }, `closed on ${c.label}`);
      }
      // Each notice exactly once per socket (the customers saw all three; the agents joined after the accept).
      for (const c of [customerA, customerB]) {
        assert.deepEqual(notices(c).map((e) => e.type), ['CONVERSATION_QUEUED', 'CONVERSATION_ACCEPTED', 'CONVERSATION_CLOSED'], `notices on ${c.label}`);
      }
      for (const c of [agentA, agentB]) {
        assert.deepEqual(notices(c).map((e) => e.type), ['CONVERSATION_CLOSED'], `notices on ${c.label}`);
      }

      // Both nodes agree on the outcome.
      const history = await A.api.messages(conv.id);
      assertContiguous(history, 1, 'history on A');
      assert.equal(history.length, closeSeq);
      assert.deepEqual(await B.api.messages(conv.id), history, 'history on B equals A');
      assert.deepEqual(await B.api.agentMessages(conv.id, agentId), history, 'agent history on B');
      for (const n of [A, B]) {
        assertConversation(await n.api.conversation(conv.id), { status: 'CLOSED' }, `GET on ${n.name} after close`);
        assertError(await n.api.sendRaw(conv.id, { content: 'too late' }), 410, `send after close on ${n.name}`);
        assert.deepEqual((await n.api.agentConversations(agentId, ['ASSIGNED'])).map((c) => c.id), [], `slot freed (seen on ${n.name})`);
      }
    }));

  it('50 agents on 3 nodes accept one queued conversation at once: exactly one 200, every node agrees', (t) =>
    withCluster({ nodes: 3 }, async ({ nodes, clients }) => {
      const RACERS = 50;
      for (let round = 1; round <= 3; round++) {
        const customerId = uid('cust');
        const origin = nodes[round % 3];
        const conv = await origin.api.queuedConversation({ customerId, name: 'Racy' });
        const watchers = [];
        for (const n of nodes) watchers.push(await clients.customer(n.url, { token: customerId, conversationId: conv.id }));
        const agents = Array.from({ length: RACERS }, (_, i) => `racer-${round}-${i}-${uid('a')}`);
        const via = (i) => nodes[i % nodes.length];

        const results = await Promise.all(agents.map((a, i) => via(i).api.acceptRaw(conv.id, a, `Agent ${a}`)));

        const statuses = countBy(results, (r) => r.status);
        t.diagnostic(`round ${round}: accept statuses ${JSON.stringify(statuses)}`);
        const winners = results.map((r, i) => [r, agents[i], i]).filter(([r]) => r.status === 200);
        assert.equal(winners.length, 1, `round ${round}: exactly one accept wins; statuses ${JSON.stringify(statuses)}`);
        const [[winRes, winner, winIdx]] = winners;
        assertConversation(winRes.body, { id: conv.id, status: 'ASSIGNED', agent: { id: winner, type: 'AGENT' } }, `winning accept (via ${via(winIdx).name})`);
        for (const [i, r] of results.entries()) {
          if (r.status === 200) continue;
          assert.ok([409, 410].includes(r.status), `losing accept by ${agents[i]} via ${via(i).name} -> ${r.status} (expected 409 or 410): ${r.text}`);
          assertError(r, r.status, `losing accept by ${agents[i]} via ${via(i).name}`);
        }

        // Every node agrees on the winner; the room on every node is told the winner only.
        for (const n of nodes) {
          assertConversation(await n.api.conversation(conv.id), { status: 'ASSIGNED', agent: { id: winner } }, `round ${round}: GET on ${n.name}`);
          assert.deepEqual((await n.api.agentConversations(winner, ['ASSIGNED'])).map((c) => c.id), [conv.id], `winner's list on ${n.name}`);
          assert.ok(!idsOf(await n.api.agentQueue()).includes(conv.id), `no longer queued on ${n.name}`);
        }
        for (const w of watchers) {
          const ev = await w.waitStatus('ASSIGNED');
          assert.equal(ev.conversation.agent?.id, winner, `${w.label} is told the winner`);
          assert.equal(notices(w).filter((e) => e.conversation?.status === 'ASSIGNED').length, 1, `${w.label}: one accepted notice`);
        }
        for (const [i, loser] of agents.entries()) {
          if (loser === winner || i % 10 !== 0) continue;
          assert.deepEqual((await via(i + 1).api.agentConversations(loser, ['ASSIGNED'])).map((c) => c.id), [], `${loser} got nothing`);
        }
        // After the race: the winner may re-accept on another node, a loser still gets 409.
        assert.equal((await via(winIdx + 1).api.acceptRaw(conv.id, winner, 'again')).status, 200, 're-accept by the winner on another node');
        assertError(await via(winIdx + 2).api.acceptRaw(conv.id, agents.find((a) => a !== winner), 'loser'), 409, 'a loser accepts again');
        await via(winIdx + 1).api.closeByAgent(conv.id, winner, 'W');
      }
    }));

  it('10 queued conversations x 20 agents (cap 3) racing over 3 nodes: each assigned exactly once, nobody above the cap', (t) =>
    withCluster({ nodes: 3, config: { 'chat.queue': { 'max-concurrent-by-agent': 3 } } }, async ({ nodes }) => {
      const CAP = 3;
      const convs = [];
      for (let j = 0; j < 10; j++) convs.push(await nodes[j % 3].api.queuedConversation({ name: `Q${j}` }));
      const agents = Array.from({ length: 20 }, (_, i) => uid(`capped-${i}`));
      const attempts = [];
      for (const [i, agent] of agents.entries()) {
        for (const [j, conv] of convs.entries()) attempts.push({ agent, conv, node: nodes[(i + j) % 3] });
      }

      const results = await Promise.all(attempts.map((a) => a.node.api.acceptRaw(a.conv.id, a.agent, `Agent ${a.agent}`)));
      const tried = attempts.map((a, k) => ({ ...a, res: results[k] }));
      const statuses = countBy(results, (r) => r.status);
      t.diagnostic(`accept statuses ${JSON.stringify(statuses)}`);

      for (const t of tried) {
        if (t.res.status === 200) {
          assertConversation(t.res.body, { id: t.conv.id, status: 'ASSIGNED', agent: { id: t.agent } }, `accept of ${t.conv.id} by ${t.agent} via ${t.node.name}`);
          continue;
        }
        assert.ok([409, 410, 429].includes(t.res.status), `accept of ${t.conv.id} by ${t.agent} via ${t.node.name} -> ${t.res.status} (expected 200/409/410/429): ${t.res.text}`);
        assertError(t.res, t.res.status, `accept of ${t.conv.id} by ${t.agent} via ${t.node.name}`);
      }

      // Exactly one 200 per conversation: every conversation is assigned (20 x 3 slots for 10).
      const winnerOf = new Map();
      for (const conv of convs) {
        const wins = tried.filter((t) => t.conv.id === conv.id && t.res.status === 200);
        assert.equal(
          wins.length,
          1,
          `conversation ${conv.id}: exactly one accept wins, got ${wins.length} (${wins.map((w) => `${w.agent} via ${w.node.name}`).join(', ')}); all statuses ${JSON.stringify(statuses)}`,
        );
        winnerOf.set(conv.id, wins[0].agent);
      }
      // Nobody above the cap.
      const held = new Map(agents.map((a) => [a, []]));
      for (const [id, agent] of winnerOf) held.get(agent).push(id);
      for (const [agent, ids] of held) assert.ok(ids.length <= CAP, `${agent} won ${ids.length} accepts > cap ${CAP}: ${ids}`);

      // GET agrees, on every node.
      for (const n of nodes) {
        for (const conv of convs) {
          assertConversation(await n.api.conversation(conv.id), { status: 'ASSIGNED', agent: { id: winnerOf.get(conv.id) } }, `GET ${conv.id} on ${n.name}`);
        }
        assert.deepEqual(await n.api.agentQueue(), [], `the queue is empty on ${n.name}`);
      }
      for (const [i, agent] of agents.entries()) {
        const n = nodes[i % 3];
        const list = (await n.api.agentConversations(agent, ['ASSIGNED'])).map((c) => c.id);
        assert.ok(list.length <= CAP, `${agent} holds ${list.length} > ${CAP} (GET on ${n.name})`);
        assert.deepEqual(list.sort(), held.get(agent).sort(), `${agent}'s ASSIGNED list on ${n.name} equals its 200s`);
      }
      // And the cap still holds afterwards: a full agent is refused anywhere, a freed slot is usable anywhere.
      const full = agents.find((a) => held.get(a).length === CAP);
      if (full) {
        const extra = await nodes[0].api.queuedConversation({ name: 'Extra' });
        for (const n of nodes) assertError(await n.api.acceptRaw(extra.id, full, 'Full'), 429, `full agent accepts on ${n.name}`);
        await nodes[1].api.closeByAgent(held.get(full)[0], full, 'Full');
        assertConversation(await nodes[2].api.accept(extra.id, full, 'Full'), { status: 'ASSIGNED', agent: { id: full } }, 'accept after a close freed a slot');
      }
    }));

  it('10 queued conversations x 3 agents (cap 3) racing over 3 nodes: exactly 9 assigned, 3 each, one stays queued', (t) =>
    withCluster({ nodes: 3, config: { 'chat.queue': { 'max-concurrent-by-agent': 3 } } }, async ({ nodes }) => {
      const CAP = 3;
      const convs = [];
      for (let j = 0; j < 10; j++) convs.push(await nodes[j % 3].api.queuedConversation({ name: `Q${j}` }));
      const agents = Array.from({ length: 3 }, (_, i) => uid(`scarce-${i}`));
      // Every agent tries every conversation through every node (90 requests at once).
      const attempts = [];
      for (const agent of agents) for (const conv of convs) for (const node of nodes) attempts.push({ agent, conv, node });
      const results = await Promise.all(attempts.map((a) => a.node.api.acceptRaw(a.conv.id, a.agent, `Agent ${a.agent}`)));
      const tried = attempts.map((a, k) => ({ ...a, res: results[k] }));
      t.diagnostic(`accept statuses ${JSON.stringify(countBy(results, (r) => r.status))}`);
      for (const x of tried) {
        if (x.res.status === 200) continue;
        assert.ok([409, 410, 429].includes(x.res.status), `accept of ${x.conv.id} by ${x.agent} via ${x.node.name} -> ${x.res.status}: ${x.res.text}`);
        assertError(x.res, x.res.status, `accept of ${x.conv.id} by ${x.agent} via ${x.node.name}`);
      }
      // A 200 is either the first accept or the same agent re-accepting its own: one agent per conversation.
      const winnerOf = new Map();
      for (const x of tried.filter((y) => y.res.status === 200)) {
        const prev = winnerOf.get(x.conv.id);
        assert.ok(!prev || prev === x.agent, `conversation ${x.conv.id} accepted (200) by both ${prev} and ${x.agent}`);
        winnerOf.set(x.conv.id, x.agent);
      }
      assert.equal(winnerOf.size, 9, `3 agents x cap 3 = 9 conversations assigned, got ${winnerOf.size}`);
      for (const agent of agents) {
        const won = [...winnerOf].filter(([, a]) => a === agent).map(([id]) => id).sort();
        assert.equal(won.length, CAP, `${agent} holds exactly the cap`);
        for (const n of nodes) {
          assert.deepEqual((await n.api.agentConversations(agent, ['ASSIGNED'])).map((c) => c.id).sort(), won, `${agent}'s ASSIGNED list on ${n.name}`);
        }
      }
      const left = convs.filter((c) => !winnerOf.has(c.id)).map((c) => c.id);
      for (const n of nodes) {
        assert.deepEqual(idsOf(await n.api.agentQueue()), left, `the one left over is still queued (GET on ${n.name})`);
        assertConversation(await n.api.conversation(left[0]), { status: 'QUEUED' }, `the left-over conversation on ${n.name}`);
        for (const [id, agent] of winnerOf) assertConversation(await n.api.conversation(id), { status: 'ASSIGNED', agent: { id: agent } }, `GET ${id} on ${n.name}`);
      }
    }));

  it('concurrent senders on every node: every socket on every node sees seqs 1..n in order, no gap, no duplicate', () =>
    withCluster({ nodes: 3 }, async ({ nodes: [A, B, C], clients }) => {
      const PER_SENDER = 25;
      const BURST = 15;
      const { conv, customerId, agentId } = await assignedConversation(A, B);
      const customerA = await clients.customer(A.url, { token: customerId, displayName: 'Cust', conversationId: conv.id });
      const agentB = await clients.agent(B.url, { token: agentId, displayName: 'Agent', conversationId: conv.id });
      const customerC = await clients.customer(C.url, { token: customerId, displayName: 'Cust', conversationId: conv.id });
      const agentC = await clients.agent(C.url, { token: agentId, displayName: 'Agent', conversationId: conv.id });
      const customerB = await clients.customer(B.url, { token: customerId, displayName: 'Cust', conversationId: conv.id });
      const agentA = await clients.agent(A.url, { token: agentId, displayName: 'Agent', conversationId: conv.id });
      // Receivers that never send, one per node.
      const observers = [];
      for (const n of [A, B, C]) observers.push(await clients.agent(n.url, { token: agentId, displayName: 'Agent', conversationId: conv.id }));
      const sockets = [customerA, agentB, customerC, agentC, customerB, agentA];
      const receivers = [...sockets, ...observers];

      const senders = [
        ...sockets.map((s) => ({ name: s.label, type: s === agentA || s === agentB || s === agentC ? 'AGENT' : 'CUSTOMER', send: (content) => s.sendOk(conv.id, content) })),
        ...[A, B, C].map((n) => ({ name: `REST on ${n.name}`, type: 'CUSTOMER', send: (content) => n.api.send(conv.id, { content, senderId: customerId }) })),
      ];

      // Phase 1: each sender awaits each ack / response; all senders at once.
      const sentBy = await Promise.all(
        senders.map(async (s) => {
          const mine = [];
          for (let k = 0; k < PER_SENDER; k++) {
            const m = await s.send(`${s.name} #${k}`);
            assertMessage(m, { conversationId: conv.id, content: `${s.name} #${k}`, sender: { type: s.type } }, `${s.name} #${k}`);
            mine.push(m);
          }
          return mine;
        }),
      );
      for (const [i, mine] of sentBy.entries()) {
        for (let k = 1; k < mine.length; k++) {
          assert.ok(mine[k].seq > mine[k - 1].seq, `${senders[i].name}: #${k} seq ${mine[k].seq} <= #${k - 1} seq ${mine[k - 1].seq}`);
        }
      }
      const phase1 = senders.length * PER_SENDER;

      // Phase 2: every socket fires a burst without waiting for its acks.
      const burst = await Promise.all(
        sockets.map((s) => Promise.all(Array.from({ length: BURST }, (_, k) => s.sendOk(conv.id, `${s.label} burst ${k}`)))),
      );
      const all = [...sentBy.flat(), ...burst.flat()].sort((x, y) => x.seq - y.seq);
      const total = phase1 + sockets.length * BURST;
      assert.equal(all.length, total);
      assertContiguous(all, 1, 'seqs handed out to the senders');
      assert.equal(new Set(all.map((m) => m.id)).size, total, 'unique message ids');

      for (const r of receivers) {
        const got = await r.waitSeq(total, bulk);
        assertContiguous(got, 1, `chat:message on ${r.label}`);
        assert.equal(got.length, total, `${r.label} received ${got.length}, expected ${total}`);
        assert.deepEqual(got.map((m) => m.id), all.map((m) => m.id), `${r.label}: exactly the stored messages`);
      }
      const history = await C.api.messages(conv.id, { limit: 500 });
      assert.deepEqual(history, all, 'REST history (on C) equals what the senders got back');
      assert.deepEqual(await A.api.agentMessages(conv.id, agentId, { limit: 500 }), history, 'agent history on A');
    }));

  it('a customer resumes on the other node with lastSeq during a steady stream: backlog then live, no gap, no duplicate', (t) =>
    withCluster({ nodes: 2 }, async ({ nodes: [A, B], clients }) => {
      const { conv, customerId, agentId } = await assignedConversation(A, B);
      const agentB = await clients.agent(B.url, { token: agentId, displayName: 'Agent', conversationId: conv.id });
      const first = await clients.customer(A.url, { token: customerId, conversationId: conv.id });
      for (let k = 1; k <= 6; k++) await (k % 2 ? first.sendOk(conv.id, `before ${k}`) : agentB.sendOk(conv.id, `before ${k}`));
      await first.waitSeq(6);
      const lastSeq = first.messages.last.seq;
      assert.equal(lastSeq, 6);
      assertContiguous(first.messages.items, 1, 'first connection on A');

      const gone = first.disconnects.until((d) => d.length > 0, { description: 'the disconnect' });
      first.disconnect();
      await gone;

      // A steady stream from the agent on B (every 4th over REST on A) while the customer comes back on B.
      const TOTAL = 60;
      const stream = (async () => {
        for (let k = lastSeq + 1; k <= TOTAL; k++) {
          if (k % 4 === 0) await A.api.send(conv.id, { content: `stream ${k}`, senderType: 'AGENT', senderId: agentId });
          else await agentB.sendOk(conv.id, `stream ${k}`);
        }
      })();
      stream.catch(() => {});
      await agentB.waitSeq(lastSeq + 5, bulk); // some are missed for sure
      const again = await clients.customer(B.url, { token: customerId, conversationId: conv.id, lastSeq });
      const streamAtJoin = agentB.messages.last.seq;
      await stream;
      t.diagnostic(`resumed with lastSeq ${lastSeq} while the stream was at about seq ${streamAtJoin} of ${TOTAL}`);
      const got = await again.waitSeq(TOTAL, bulk);
      assert.equal(again.joined.recovered, true, `join event of the resumed socket: ${JSON.stringify(again.joined)}`);
      assertContiguous(got, lastSeq + 1, 'resumed customer on B');
      assert.equal(got[got.length - 1].seq, TOTAL);
      const history = await A.api.messages(conv.id, { limit: 500 });
      assert.deepEqual(got.map((m) => m.id), history.slice(lastSeq).map((m) => m.id), 'backlog + live equal the history after lastSeq');

      // It can talk again; both nodes see it after the rest.
      const reply = await again.sendOk(conv.id, 'back on B');
      assert.equal(reply.seq, TOTAL + 1);
      await Promise.all([again.waitSeq(TOTAL + 1), agentB.waitSeq(TOTAL + 1)]);
      assertContiguous(again.messages.items, lastSeq + 1, 'resumed customer after its own message');
      assertContiguous(agentB.messages.items, 1, 'agent on B');
    }));

  it('repeated reconnects alternating over 3 nodes during a steady stream: together exactly 1..n', () =>
    withCluster({ nodes: 3 }, async ({ nodes, clients }) => {
      const [A, B] = nodes;
      const { conv, customerId, agentId } = await assignedConversation(A, B);
      const agent = await clients.agent(B.url, { token: agentId, displayName: 'Agent', conversationId: conv.id });
      const TOTAL = 80;
      let done = false;
      const sender = (async () => {
        for (let k = 1; k <= TOTAL; k++) {
          if (k % 3 === 0) await nodes[k % nodes.length].api.send(conv.id, { content: `s${k}` });
          else await agent.sendOk(conv.id, `s${k}`);
        }
        done = true;
      })();
      sender.catch(() => {});
      let lastSeq = 0;
      const seen = [];
      for (let cycle = 0; cycle < 9 && !done; cycle++) {
        const n = nodes[cycle % nodes.length];
        const c = await clients.customer(n.url, { token: customerId, conversationId: conv.id, lastSeq });
        assert.equal(c.joined.recovered, true, `connection ${cycle} on ${n.name}: recovered`);
        await Promise.race([c.waitSeq(lastSeq + 4, bulk), sender]);
        const gone = c.disconnects.until((d) => d.length > 0, { description: 'the disconnect' });
        c.disconnect();
        await gone;
        const got = c.messages.items;
        if (got.length) assertContiguous(got, lastSeq + 1, `connection ${cycle} on ${n.name} (lastSeq ${lastSeq})`);
        seen.push(...got);
        lastSeq = got.length ? got[got.length - 1].seq : lastSeq;
      }
      await sender;
      const final = await clients.customer(nodes[2].url, { token: customerId, conversationId: conv.id, lastSeq });
      if (lastSeq < TOTAL) await final.waitSeq(TOTAL, bulk);
      assert.equal(final.joined.recovered, true, 'final connection: recovered');
      seen.push(...final.messages.items);
      const history = await A.api.messages(conv.id, { limit: 500 });
      assert.equal(history.length, TOTAL);
      assertContiguous(seen, 1, 'all connections together');
      assert.deepEqual(seen.map((m) => m.id), history.map((m) => m.id), 'together they saw exactly the history');
    }));

  it('queue agents on every node get queue:snapshot and converge to the same queue', () =>
    withCluster({ nodes: 3 }, async ({ nodes, clients }) => {
      const watchers = [];
      for (const n of nodes) for (let i = 0; i < 2; i++) watchers.push(await clients.queueWatcher(n.url, { token: uid(`watcher-${n.name}`) }));
      for (const w of watchers) assert.deepEqual(w.snapshots.items[0], [], `${w.label}: the initial snapshot of an empty queue`);

      /** Waits until the newest snapshot of every watcher lists `ids`, then checks it equals GET on every node. */
      async function converged(ids, what) {
        for (const w of watchers) {
          await w.snapshots.latest((s) => same(idsOf(s), ids), { description: `the latest snapshot to be ${what} ${JSON.stringify(ids)}`, ...bulk });
        }
        const rest = await nodes[0].api.agentQueue();
        assert.deepEqual(idsOf(rest), ids, `GET /api/agent/queue ${what}`);
        assertOldestFirst(rest);
        for (const n of nodes.slice(1)) assert.deepEqual(await n.api.agentQueue(), rest, `GET on ${n.name} equals GET on A ${what}`);
        for (const w of watchers) assert.deepEqual(w.snapshots.last, rest, `${w.label}: the last snapshot equals GET ${what}`);
      }

      // Queued on A only: every node's watchers see it.
      const first = await nodes[0].api.queuedConversation({ name: 'On A' });
      await converged([first.id], 'after queueing on A');
      const entry = watchers[5].snapshots.last[0];
      assert.equal(entry.customerId, first.customerId);
      assert.equal(entry.customerName, 'On A');
      assert.equal(entry.channel, 'web');

      // More on B and C, one at a time, then a burst from every node.
      const convs = [first];
      for (const n of nodes.slice(1)) {
        convs.push(await n.api.queuedConversation({ name: `On ${n.name}` }));
        await converged(convs.map((c) => c.id), `after queueing on ${n.name}`);
      }
      const burst = [];
      for (let i = 0; i < 6; i++) burst.push(await nodes[i % 3].api.createConversation({ customerId: uid('cust'), name: `Burst ${i}` }));
      await Promise.all(burst.map((c, i) => nodes[(i + 1) % 3].api.queue(c.id)));
      const rest = await nodes[2].api.agentQueue();
      assert.deepEqual(new Set(idsOf(rest)), new Set([...convs, ...burst].map((c) => c.id)), 'every queued conversation is listed');
      await converged(idsOf(rest), 'after a burst from every node');

      // A watcher joining on another node now gets the current queue at once.
      const late = await clients.queueWatcher(nodes[1].url, { token: uid('late') });
      assert.deepEqual(late.snapshots.items[0], rest, 'initial snapshot of a late watcher on B');
      watchers.push(late);

      // Accept on C, close on B: every node converges.
      await nodes[2].api.accept(convs[0].id, uid('agent'), 'Acc');
      await nodes[1].api.closeByCustomer(convs[1].id, convs[1].customerId);
      await converged(idsOf(rest).filter((id) => id !== convs[0].id && id !== convs[1].id), 'after an accept on C and a close on B');
      for (const w of watchers) {
        for (const [i, s] of w.snapshots.items.entries()) {
          assertSnapshot(s, `${w.label} snapshot #${i}`);
          assertOldestFirst(s, `${w.label} snapshot #${i}`);
        }
      }
    }));

  it('queue:position reaches the sockets of a queued conversation on every node; an accept on another moves it up', () =>
    withCluster({ nodes: 2 }, async ({ nodes: [A, B], clients }) => {
      const watcher = await clients.queueWatcher(B.url, { token: uid('watcher') });
      const ahead = await A.api.createConversation({ customerId: uid('cust'), name: 'Ahead' });
      const behindId = uid('cust');
      const behind = await B.api.createConversation({ customerId: behindId, name: 'Behind' });
      // The waiting customer with a device on each node.
      const onB = await clients.customer(B.url, { token: behindId, conversationId: behind.id });
      const onA = await clients.customer(A.url, { token: behindId, conversationId: behind.id });
      // One at a time (a snapshot apart), so the queue's order is the order they are queued in.
      for (const [n, id] of [[A, ahead.id], [B, behind.id]]) {
        await n.api.queue(id);
        await watcher.snapshots.latest((s) => idsOf(s).includes(id), { description: `a snapshot with ${id}`, ...bulk });
      }
      const positionIs = (c, position) =>
        c.positions.latest((p) => p?.position === position, { description: `queue:position ${position}`, ...bulk });
      for (const c of [onA, onB]) {
        assert.deepEqual(await positionIs(c, 1), { conversationId: behind.id, position: 1, estimatedWait: 'PT4M' }, c.label);
      }
      // Accepted through B: both nodes' ticks move the one behind up, on both devices.
      await B.api.accept(ahead.id, uid('agent'), 'Acc');
      for (const c of [onA, onB]) {
        assert.deepEqual(await positionIs(c, 0), { conversationId: behind.id, position: 0, estimatedWait: 'PT2M' }, c.label);
        assert.deepEqual(c.positions.items.map((p) => p.position), [1, 0], `${c.label}: each position once`);
      }
    }));

  it('a corrupt metadata value in Redis: GET answers 5xx with the error shape, the nodes keep serving', (t) =>
    withCluster({ nodes: 2 }, async ({ nodes: [A, B], clients, prefix }) => {
      const victim = await A.api.createConversation({ customerId: uid('cust'), name: 'Victim' });
      const healthy = await B.api.createConversation({ customerId: uid('cust'), name: 'Healthy' });
      const key = `${prefix}:conversation:{${victim.id}}`;
      const r = await Resp.openFor(REDIS_URL, key);
      try {
        assert.equal(await r.cmd('TYPE', key), 'hash', `${key} must be the metadata hash`);
        assert.ok(typeof (await r.cmd('HGET', key, 'meta')) === 'string', `${key} must have a meta field`);
        await r.cmd('HSET', key, 'meta', '{bad!');
        assert.equal(await r.cmd('HGET', key, 'meta'), '{bad!');
      } finally {
        r.close();
      }

      for (const n of [A, B]) {
        const res = await n.api.request('GET', `/api/conversations/${victim.id}`);
        assert.ok(res.status >= 500 && res.status <= 599, `GET of the corrupt conversation on ${n.name} -> ${res.status} (expected 5xx): ${res.text.slice(0, 300)}`);
        assertError(res, res.status, `GET of the corrupt conversation on ${n.name}`);
        t.diagnostic(`GET of the corrupt conversation on ${n.name} -> ${res.status} ${res.text}`);
      }
      // Other requests about it are errors too, not crashes: a message, a socket joining it.
      const post = await B.api.sendRaw(victim.id, { content: 'into the corrupt one' });
      assert.ok(post.status >= 500 && post.status <= 599, `POST message to the corrupt conversation -> ${post.status} (expected 5xx): ${post.text.slice(0, 300)}`);
      assertError(post, post.status, 'POST message to the corrupt conversation');
      const joiner = clients.create(A.url, { role: 'customer', token: victim.customer.id, conversationId: victim.id });
      const refused = joiner.errors.until((e) => e.length > 0, { description: 'the system:error of a join to the corrupt conversation' });
      const dropped = joiner.disconnects.until((d) => d.length > 0, { description: 'the disconnect after the refusal' });
      await joiner.connect();
      const [err] = await refused;
      assert.ok(typeof err?.message === 'string' && typeof err?.code === 'string', `system:error {message, code}: ${JSON.stringify(err)}`);
      await dropped;
      assert.equal(joiner.joined, undefined, 'the socket never joined');

      // The nodes keep serving other conversations: the healthy one, and new ones.
      for (const n of [A, B]) {
        assertConversation(await n.api.conversation(healthy.id), { id: healthy.id, status: 'OPEN' }, `GET of the healthy one on ${n.name}`);
        const fresh = await n.api.queuedConversation({ name: `After on ${n.name}` });
        assertConversation(await n.api.conversation(fresh.id), { id: fresh.id, status: 'QUEUED' }, `a new conversation on ${n.name}`);
        const m = await n.api.send(fresh.id, { content: 'still alive' });
        assertMessage(m, { conversationId: fresh.id, seq: 1 }, `a message on ${n.name}`);
        assert.deepEqual((await n.api.request('GET', '/healthz')).body, { status: 'ok' }, `healthz on ${n.name}`);
      }
      // And the corrupt one stays an error (no crash on a second look); withCluster checks both exit 0.
      for (const n of [A, B]) {
        const res = await n.api.request('GET', `/api/conversations/${victim.id}`);
        assert.ok(res.status >= 500, `GET again on ${n.name} -> ${res.status}`);
      }
    }));
  it('housekeeping on 2 nodes: one node sweeps per interval; a queue timeout and an inactivity close happen exactly once', () =>
    withCluster(
      {
        nodes: 2,
        config: {
          'chat.housekeeping': { interval: '100ms' },
          'chat.queue': { 'max-wait': '300ms' },
          'chat.conversation': { 'inactivity-timeout': '600ms' },
        },
      },
      async ({ nodes: [A, B], clients }) => {
        const wait = { timeoutMs: BULK_TIMEOUT_MS };
        const customerId = uid('cust');
        const conv = await A.api.createConversation({ customerId, name: 'Waiting' });
        const onA = await clients.customer(A.url, { token: customerId, conversationId: conv.id });
        const onB = await clients.customer(B.url, { token: customerId, conversationId: conv.id });
        await B.api.queue(conv.id);
        // The queue timeout (whichever node holds the lease sweeps): OPEN again, one SYSTEM message.
        for (const c of [onA, onB]) await c.waitMessage((m) => m.type === 'SYSTEM', 'the queue-timeout message', wait);
        assertConversation(await B.api.conversation(conv.id), { status: 'OPEN' }, 'after the queue timeout');
        // Then nothing happens for longer than the inactivity timeout: closed, once.
        for (const c of [onA, onB]) {
          await c.waitMessage((m) => m.type === 'SYSTEM' && m.metadata?.event === 'CHAT_CLOSED', 'the inactivity close', wait);
        }
        for (const n of [A, B]) {
          const history = await n.api.messages(conv.id);
          assertContiguous(history, 1, `history on ${n.name}`);
          const system = history.filter((m) => m.type === 'SYSTEM');
          assert.equal(system.length, 2, `one queue timeout and one close on ${n.name}: ${JSON.stringify(system.map((m) => m.metadata))}`);
          assert.equal(system[0].metadata?.event, 'QUEUE_TIMEOUT');
          assert.equal(system[1].metadata?.reason, 'INACTIVITY');
        }
        // Every socket saw each SYSTEM message exactly once.
        for (const c of [onA, onB]) {
          const seqs = c.messages.items.map((m) => m.seq);
          assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), 'no duplicate deliveries');
        }
      },
    ));
});
