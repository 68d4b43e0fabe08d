// Resuming a conversation after a disconnect: a socket that (re)joins with
// `lastSeq` first receives every message with seq > lastSeq, then the live
// ones — no gap, no duplicate, even while other participants keep writing
// during the reconnect — and its join system:event says `recovered: true`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BULK_TIMEOUT_MS,
  EXECUTOR_COUNTS,
  assertContiguous,
  uid,
  useChatClients,
  useChatServer,
} from '../lib/chat.mjs';

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat resume (--executors ${executors})`, () => {
    const server = useChatServer({ executors });
    const clients = useChatClients();

    async function setup() {
      const customerId = uid('cust');
      const agentId = uid('agent');
      const conv = await server.api.queuedConversation({ customerId, name: 'Resumer' });
      await server.api.accept(conv.id, agentId, 'Agent Resume');
      const agent = await clients.agent(server.url, { token: agentId, displayName: 'Agent Resume', conversationId: conv.id });
      return { conv, customerId, agentId, agent };
    }

    /** Asserts what a resumed socket received: exactly seqs from+1 .. to, and recovered: true. */
    function assertResumed(client, from, to, what) {
      const got = client.messages.items;
      assertContiguous(got, from + 1, `${what}: chat:message after resume`);
      assert.equal(got[got.length - 1]?.seq ?? from, to, `${what}: last seq`);
      assert.equal(client.joined.recovered, true, `${what}: join system:event must carry recovered: true: ${JSON.stringify(client.joined)}`);
    }

    for (const via of ['query', 'auth']) {
      it(`customer reconnects with lastSeq (${via}) while the agent keeps writing: missed then live, no gap, no duplicate`, async () => {
        const { conv, customerId, agentId, agent } = await setup();
        const first = await clients.customer(server.url, { token: customerId, conversationId: conv.id, via });
        for (let k = 1; k <= 5; k++) await (k % 2 ? first.sendOk(conv.id, `before ${k}`) : agent.sendOk(conv.id, `before ${k}`));
        await first.waitSeq(5);
        const lastSeq = first.messages.last.seq;
        assert.equal(lastSeq, 5);

        // Gone: messages 6..10 are missed.
        const gone = first.disconnects.until((d) => d.length > 0, { description: 'the disconnect' });
        first.disconnect();
        await gone;
        for (let k = 6; k <= 10; k++) await server.api.send(conv.id, { content: `missed ${k}`, senderType: 'AGENT', senderId: agentId });
        await agent.waitSeq(10);

        // Reconnect while live messages keep coming.
        const live = (async () => {
          for (let k = 11; k <= 30; k++) await agent.sendOk(conv.id, `live ${k}`);
        })();
        const again = await clients.customer(server.url, { token: customerId, conversationId: conv.id, lastSeq, via });
        await live;
        await again.waitSeq(30, { timeoutMs: BULK_TIMEOUT_MS });
        assertResumed(again, lastSeq, 30, 'resumed customer');
        assert.deepEqual(
          again.messages.items.slice(0, 5).map((m) => m.content),
          ['missed 6', 'missed 7', 'missed 8', 'missed 9', 'missed 10'],
          'the missed messages come first',
        );
        // It can talk again, and everyone sees it after the rest.
        const reply = await again.sendOk(conv.id, 'back again');
        assert.equal(reply.seq, 31);
        await Promise.all([again.waitSeq(31), agent.waitSeq(31)]);
        assertContiguous(again.messages.items, 6, 'resumed customer after its own message');
        assertContiguous(agent.messages.items, 1, 'agent');
      });
    }

    it('auth lastSeq wins over the query string', async () => {
      const { conv, customerId, agent } = await setup();
      for (let k = 1; k <= 6; k++) await agent.sendOk(conv.id, `m${k}`);
      const c = clients.create(server.url, { role: 'customer', token: customerId, conversationId: conv.id, lastSeq: 4 }, {
        via: 'auth',
        query: { lastSeq: 0 },
      });
      c.joined = await c.join();
      await c.waitSeq(6);
      assertResumed(c, 4, 6, 'auth lastSeq 4, query lastSeq 0');
    });

    it('lastSeq at the latest message: nothing replayed, next live message follows', async () => {
      const { conv, customerId, agent } = await setup();
      for (let k = 1; k <= 3; k++) await agent.sendOk(conv.id, `m${k}`);
      const c = await clients.customer(server.url, { token: customerId, conversationId: conv.id, lastSeq: 3 });
      assert.equal(c.joined.recovered, true, `recovered: ${JSON.stringify(c.joined)}`);
      const m = await agent.sendOk(conv.id, 'after join');
      await c.waitSeq(m.seq);
      assert.deepEqual(c.messages.items.map((x) => x.seq), [4], 'only the live message');
    });

    it('agent reconnects with lastSeq', async () => {
      const { conv, customerId, agentId, agent } = await setup();
      const customer = await clients.customer(server.url, { token: customerId, conversationId: conv.id });
      for (let k = 1; k <= 3; k++) await customer.sendOk(conv.id, `m${k}`);
      await agent.waitSeq(3);
      agent.disconnect();
      for (let k = 4; k <= 8; k++) await customer.sendOk(conv.id, `m${k}`);
      const back = await clients.agent(server.url, { token: agentId, displayName: 'Agent Resume', conversationId: conv.id, lastSeq: 3 });
      const m = await customer.sendOk(conv.id, 'live');
      await back.waitSeq(m.seq);
      assertResumed(back, 3, 9, 'resumed agent');
    });

    it('repeated reconnects during a steady stream: each connection gets exactly lastSeq+1.., together 1..n', async () => {
      const { conv, customerId, agent } = await setup();
      const total = 60;
      let done = false;
      const sender = (async () => {
        for (let k = 1; k <= total; k++) {
          if (k % 3 === 0) await server.api.send(conv.id, { content: `s${k}` });
          else await agent.sendOk(conv.id, `s${k}`);
        }
        done = true;
      })();
      let lastSeq = 0;
      const seen = [];
      for (let cycle = 0; cycle < 8 && !done; cycle++) {
        const c = await clients.customer(server.url, { token: customerId, conversationId: conv.id, lastSeq });
        // Stay until we got a few new messages (or the stream ended), then drop.
        await Promise.race([c.waitSeq(lastSeq + 4, { timeoutMs: BULK_TIMEOUT_MS }), sender]);
        const gone = c.disconnects.until((d) => d.length > 0, { description: 'the disconnect' });
        c.disconnect();
        await gone;
        const got = c.messages.items;
        if (got.length) assertContiguous(got, lastSeq + 1, `connection ${cycle} (lastSeq ${lastSeq})`);
        assert.equal(c.joined.recovered, true, `connection ${cycle}: recovered`);
        seen.push(...got);
        lastSeq = got.length ? got[got.length - 1].seq : lastSeq;
      }
      await sender;
      const final = await clients.customer(server.url, { token: customerId, conversationId: conv.id, lastSeq });
      if (lastSeq < total) await final.waitSeq(total, { timeoutMs: BULK_TIMEOUT_MS });
      // Nothing beyond `total` exists; the final connection got exactly the rest.
      const history = await server.api.messages(conv.id, { limit: 500 });
      assert.equal(history.length, total);
      assert.equal(final.joined.recovered, true);
      seen.push(...final.messages.items);
      assertContiguous(seen, 1, 'all connections together');
      assert.deepEqual(seen.map((m) => m.id), history.map((m) => m.id), 'together they saw exactly the history');
    });
  });
}
