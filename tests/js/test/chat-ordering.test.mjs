// Message ordering under concurrent senders: 10 senders (customer sockets,
// agent sockets, REST clients — each its own connection, so with
// --executors 2 they spread over both executors) write to one conversation at
// once. Every receiver sees the same sequence, equal to seq order, seqs
// 1..n without gaps or duplicates; each sender's own messages keep their send
// order; the REST history (customer and agent endpoints, paged) agrees.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BULK_TIMEOUT_MS,
  EXECUTOR_COUNTS,
  assertContiguous,
  assertMessage,
  uid,
  useChatClients,
  useChatServer,
} from '../lib/chat.mjs';

const PER_SENDER = 20;

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat ordering (--executors ${executors})`, () => {
    const server = useChatServer({ executors });
    const clients = useChatClients();

    async function assignedConversation() {
      const customerId = uid('cust');
      const agentId = uid('agent');
      const conv = await server.api.queuedConversation({ customerId, name: 'Order' });
      await server.api.accept(conv.id, agentId, 'Agent Order');
      return { conv, customerId, agentId };
    }

    it(`10 concurrent senders x ${PER_SENDER}: every receiver sees seqs 1..n in the same order`, async () => {
      const { conv, customerId, agentId } = await assignedConversation();
      const customers = [];
      for (let i = 0; i < 5; i++) customers.push(await clients.customer(server.url, { token: customerId, displayName: 'Order', conversationId: conv.id }));
      const agents = [];
      for (let i = 0; i < 2; i++) agents.push(await clients.agent(server.url, { token: agentId, displayName: 'Agent Order', conversationId: conv.id }));
      // A receiver that never sends.
      const observer = await clients.agent(server.url, { token: agentId, displayName: 'Agent Order', conversationId: conv.id });

      // Senders: 5 customer sockets, 2 agent sockets, 3 REST clients (customer, customer, agent).
      const senders = [
        ...customers.map((c, i) => ({ name: `customer socket ${i}`, send: (content) => c.sendOk(conv.id, content), type: 'CUSTOMER' })),
        ...agents.map((a, i) => ({ name: `agent socket ${i}`, send: (content) => a.sendOk(conv.id, content), type: 'AGENT' })),
        { name: 'REST customer 0', send: (content) => server.api.send(conv.id, { content, senderId: customerId }), type: 'CUSTOMER' },
        { name: 'REST customer 1', send: (content) => server.api.send(conv.id, { content }), type: 'CUSTOMER' },
        {
          name: 'REST agent',
          send: (content) => server.api.send(conv.id, { content, senderType: 'AGENT', senderId: agentId, senderDisplayName: 'Agent Order' }),
          type: 'AGENT',
        },
      ];
      assert.equal(senders.length, 10);

      // Each sender sends its messages one after the other (awaiting the ack /
      // response); the senders run concurrently.
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
      const n = senders.length * PER_SENDER;

      // Causality: a sender's later message has a larger seq.
      for (const [i, mine] of sentBy.entries()) {
        for (let k = 1; k < mine.length; k++) {
          assert.ok(mine[k].seq > mine[k - 1].seq, `${senders[i].name}: #${k} seq ${mine[k].seq} <= #${k - 1} seq ${mine[k - 1].seq}`);
        }
      }
      const all = sentBy.flat().sort((x, y) => x.seq - y.seq);
      assertContiguous(all, 1, 'seqs handed out to the senders');
      assert.equal(new Set(all.map((m) => m.id)).size, n, 'unique message ids');

      // Every socket receives all n, in seq order, and exactly the stored messages.
      const receivers = [...customers, ...agents, observer];
      for (const r of receivers) {
        const got = await r.waitSeq(n, { timeoutMs: BULK_TIMEOUT_MS });
        assert.equal(got.length, n, `${r.label} received ${got.length} messages, expected ${n}`);
        assertContiguous(got, 1, `chat:message on ${r.label}`);
        assert.deepEqual(got.map((m) => m.id), all.map((m) => m.id), `${r.label}: same messages as stored`);
        assert.deepEqual(got.map((m) => m.content), all.map((m) => m.content));
      }

      // Late REST readers agree.
      const history = await server.api.messages(conv.id, { limit: 500 });
      assertContiguous(history, 1, 'REST history');
      assert.deepEqual(history, all, 'REST history equals what the senders got back');
      assert.deepEqual(await server.api.agentMessages(conv.id, agentId, { limit: 500 }), history, 'agent history');
      // A socket joining late and asking for everything from the start.
      const late = await clients.customer(server.url, { token: customerId, conversationId: conv.id, lastSeq: 0 });
      const replay = await late.waitSeq(n, { timeoutMs: BULK_TIMEOUT_MS });
      if (late.joined.recovered === false) {
        // The server kept only a recent window: what it replays is still a contiguous tail.
        assertContiguous(replay, replay[0].seq, 'partial replay to a late socket');
        assert.equal(replay[replay.length - 1].seq, n);
      } else {
        assert.equal(late.joined.recovered, true, `join event of a socket with lastSeq carries recovered: ${JSON.stringify(late.joined)}`);
        assertContiguous(replay, 1, 'replay to a late socket');
        assert.deepEqual(replay.map((m) => m.id), history.map((m) => m.id));
      }
    });

    it('several conversations in parallel keep independent seqs', async () => {
      const convs = await Promise.all(Array.from({ length: 4 }, () => assignedConversation()));
      const watchers = [];
      for (const c of convs) watchers.push(await clients.customer(server.url, { token: c.customerId, conversationId: c.conv.id }));
      await Promise.all(
        convs.map(async (c, ci) => {
          for (let k = 0; k < 15; k++) {
            const m = k % 2 === 0 ? await watchers[ci].sendOk(c.conv.id, `c${ci} m${k}`) : await server.api.send(c.conv.id, { content: `c${ci} m${k}` });
            assert.equal(m.seq, k + 1, `conversation ${ci}: seq of message ${k}`);
          }
        }),
      );
      for (const [ci, w] of watchers.entries()) {
        const got = await w.waitSeq(15);
        assertContiguous(got, 1, `conversation ${ci} on its customer socket`);
        assert.ok(got.every((m) => m.conversationId === convs[ci].conv.id), 'no message from another conversation');
        assert.equal(got.length, 15);
      }
    });

    it('GET messages paging: latest `limit` without after, first `limit` after a seq', async () => {
      const { conv, agentId } = await assignedConversation();
      const total = 130;
      for (let k = 1; k <= total; k++) await server.api.send(conv.id, { content: `p${k}` });
      const seqs = (list) => list.map((m) => m.seq);
      const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

      assert.deepEqual(seqs(await server.api.messages(conv.id)), range(31, 130), 'default limit 100: the latest 100, oldest first');
      assert.deepEqual(seqs(await server.api.messages(conv.id, { limit: 10 })), range(121, 130), 'limit 10: the latest 10');
      assert.deepEqual(seqs(await server.api.messages(conv.id, { limit: 500 })), range(1, 130), 'limit 500: all');
      assert.deepEqual(seqs(await server.api.messages(conv.id, { limit: 1 })), [130], 'limit 1');
      assert.deepEqual(seqs(await server.api.messages(conv.id, { after: 0 })), range(1, 100), 'after 0: the first 100');
      assert.deepEqual(seqs(await server.api.messages(conv.id, { after: 100, limit: 20 })), range(101, 120), 'after 100, limit 20');
      assert.deepEqual(seqs(await server.api.messages(conv.id, { after: 125, limit: 20 })), range(126, 130), 'after 125: the rest');
      assert.deepEqual(seqs(await server.api.messages(conv.id, { after: 130 })), [], 'after the last: empty');
      assert.deepEqual(
        seqs(await server.api.agentMessages(conv.id, agentId, { after: 5, limit: 3 })),
        [6, 7, 8],
        'agent endpoint pages the same way',
      );
      // Paging through with `after` yields every message exactly once.
      const paged = [];
      for (let after = 0; ; ) {
        const page = await server.api.messages(conv.id, { after, limit: 37 });
        if (page.length === 0) break;
        paged.push(...page);
        after = page[page.length - 1].seq;
      }
      assertContiguous(paged, 1, 'paged history');
      assert.equal(paged.length, total);
    });
  });
}
