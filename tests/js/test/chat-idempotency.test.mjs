// clientMessageId retries: a repeated clientMessageId (REST or socket, one
// after the other or all at once) returns the first stored message — same id,
// seq and content — and the history and the room hold it exactly once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EXECUTOR_COUNTS,
  assertContiguous,
  assertMessage,
  randomUUID,
  uid,
  useChatClients,
  useChatServer,
} from '../lib/chat.mjs';

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat idempotency (--executors ${executors})`, () => {
    const server = useChatServer({ executors });
    const clients = useChatClients();

    async function setup() {
      const customerId = uid('cust');
      const agentId = uid('agent');
      const conv = await server.api.queuedConversation({ customerId, name: 'Idem' });
      await server.api.accept(conv.id, agentId, 'Agent Idem');
      const customer = await clients.customer(server.url, { token: customerId, conversationId: conv.id });
      const agent = await clients.agent(server.url, { token: agentId, displayName: 'Agent Idem', conversationId: conv.id });
      return { conv, customerId, agentId, customer, agent };
    }

    /**
     * Sends a marker after the retries and waits until both sockets saw it:
     * everything broadcast before the marker has then been delivered, so the
     * received lists can be checked for duplicates without sleeping.
     */
    async function settle(conv, sockets) {
      const marker = await server.api.send(conv.id, { content: `marker ${randomUUID()}` });
      for (const s of sockets) await s.waitSeq(marker.seq);
      return marker;
    }

    it('REST: a retried clientMessageId returns the first message, not a duplicate', async () => {
      const { conv, customer, agent } = await setup();
      const cid = randomUUID();
      const first = await server.api.send(conv.id, { content: 'pay my bill', clientMessageId: cid });
      assertMessage(first, { seq: 1, content: 'pay my bill' });
      const retry = await server.api.send(conv.id, { content: 'pay my bill', clientMessageId: cid });
      assert.equal(retry.id, first.id, 'same id');
      assert.equal(retry.seq, first.seq, 'same seq');
      // Even if the retry's body differs, the first message is returned.
      const changed = await server.api.send(conv.id, { content: 'something else', clientMessageId: cid });
      assert.equal(changed.id, first.id);
      assert.equal(changed.seq, first.seq);
      assert.equal(changed.content, 'pay my bill', 'content of the first message');

      const other = await server.api.send(conv.id, { content: 'pay my bill', clientMessageId: randomUUID() });
      assert.equal(other.seq, 2, 'a new clientMessageId is a new message');
      const marker = await settle(conv, [customer, agent]);
      assert.equal(marker.seq, 3);

      const history = await server.api.messages(conv.id);
      assertContiguous(history, 1, 'history');
      assert.deepEqual(history.map((m) => m.id), [first.id, other.id, marker.id], 'the retried message is stored once');
      for (const s of [customer, agent]) {
        assertContiguous(s.messages.items, 1, `chat:message on ${s.label}`);
        assert.deepEqual(s.messages.items.map((m) => m.id), [first.id, other.id, marker.id], `${s.label}: broadcast once`);
      }
    });

    it('socket: a retried clientMessageId acks the first message, not a duplicate', async () => {
      const { conv, customer, agent } = await setup();
      const cid = randomUUID();
      const first = await customer.sendOk(conv.id, 'hello?', { clientMessageId: cid });
      const retry = await customer.send(conv.id, 'hello?', { clientMessageId: cid });
      assertMessage(retry, { id: first.id, seq: first.seq, content: 'hello?' }, 'retry ack');
      // The retry after a reconnect (the typical case: the ack was lost with the connection).
      const gone = customer.disconnects.until((d) => d.length > 0, { description: 'the disconnect' });
      customer.disconnect();
      await gone;
      const back = await clients.customer(server.url, { token: customer.query.token, conversationId: conv.id, lastSeq: first.seq });
      const afterReconnect = await back.send(conv.id, 'hello?', { clientMessageId: cid });
      assertMessage(afterReconnect, { id: first.id, seq: first.seq }, 'retry after reconnect');
      // The agent side too.
      const acid = randomUUID();
      const a1 = await agent.sendOk(conv.id, 'agent here', { clientMessageId: acid });
      const a2 = await agent.send(conv.id, 'agent here', { clientMessageId: acid });
      assertMessage(a2, { id: a1.id, seq: a1.seq }, 'agent retry ack');

      const marker = await settle(conv, [agent, back]);
      const history = await server.api.messages(conv.id);
      assertContiguous(history, 1, 'history');
      assert.deepEqual(history.map((m) => m.id), [first.id, a1.id, marker.id]);
      assertContiguous(agent.messages.items, 1, 'agent socket');
      assert.deepEqual(agent.messages.items.map((m) => m.id), [first.id, a1.id, marker.id], 'agent saw each message once');
      assertContiguous(back.messages.items, 2, 'reconnected customer socket');
    });

    it('simultaneous retries (REST and socket connections) store one message', async () => {
      const { conv, customerId, customer, agent } = await setup();
      const extra = [];
      for (let i = 0; i < 4; i++) extra.push(await clients.customer(server.url, { token: customerId, conversationId: conv.id }));
      const cid = randomUUID();
      const results = await Promise.all([
        ...Array.from({ length: 10 }, () => server.api.send(conv.id, { content: 'once', clientMessageId: cid, senderId: customerId })),
        ...[customer, ...extra].map((s) => s.sendOk(conv.id, 'once', { clientMessageId: cid })),
      ]);
      const ids = new Set(results.map((m) => m.id));
      assert.equal(ids.size, 1, `all retries return one message, got ${[...ids]}`);
      assert.ok(results.every((m) => m.seq === 1), `all seq 1: ${results.map((m) => m.seq)}`);
      const marker = await settle(conv, [customer, agent, ...extra]);
      assert.equal(marker.seq, 2);
      assert.equal((await server.api.messages(conv.id)).length, 2);
      for (const s of [customer, agent, ...extra]) {
        assert.deepEqual(s.messages.items.map((m) => m.seq), [1, 2], `${s.label}: the message was broadcast once`);
      }
    });

    it('the same clientMessageId in two conversations makes two messages', async () => {
      const one = await setup();
      const two = await setup();
      const cid = randomUUID();
      const a = await server.api.send(one.conv.id, { content: 'x', clientMessageId: cid });
      const b = await server.api.send(two.conv.id, { content: 'x', clientMessageId: cid });
      assert.notEqual(a.id, b.id);
      assert.equal(a.conversationId, one.conv.id);
      assert.equal(b.conversationId, two.conv.id);
      assert.equal(b.seq, 1);
    });
  });
}
