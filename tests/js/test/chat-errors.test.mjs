// Every error status of the chat contract, each with the JSON body
// `{timestamp, error, code}`: 400 (malformed JSON, missing channel/content/
// agentId, empty or too long content), 404 (unknown conversation on every
// route), 403 (another agent's messages), 409/410/429 on accept, 410 on
// sending to a closed conversation. Socket errors: a chat:message that cannot
// be stored acks `{error, code}`; a join refused (unknown or closed
// conversation) gets `system:error` and is then disconnected.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EXECUTOR_COUNTS,
  JWT_MODE,
  assertAckError,
  assertConversation,
  assertError,
  randomUUID,
  uid,
  useChatClients,
  useChatServer,
} from '../lib/chat.mjs';

const MAX_LENGTH = 200;

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat errors (--executors ${executors})`, () => {
    const server = useChatServer({
      executors,
      config: { 'chat.message': { 'max-length': MAX_LENGTH }, 'chat.queue': { 'max-concurrent-by-agent': 1 } },
    });
    const clients = useChatClients();

    async function assigned() {
      const customerId = uid('cust');
      const agentId = uid('agent');
      const conv = await server.api.queuedConversation({ customerId, name: 'Err' });
      await server.api.accept(conv.id, agentId, 'Agent Err');
      return { conv, customerId, agentId };
    }

    it('400: malformed JSON, missing channel, non-object bodies on POST /api/conversations', async () => {
      const post = (rawBody) => server.api.request('POST', '/api/conversations', { rawBody, headers: { 'X-Participant-Id': uid('c') } });
      assertError(await post('{"channel": "web"'), 400, 'truncated JSON');
      assertError(await post('not json at all'), 400, 'not JSON');
      assertError(await post('{}'), 400, 'missing channel');
      assertError(await post('{"topic":"x"}'), 400, 'missing channel, other attributes');
      assertError(await post('{"channel": null}'), 400, 'null channel');
      assertError(await post('[]'), 400, 'array body');
      assertError(await post(''), 400, 'empty body');
    });

    it('400: message content empty, missing, too long, malformed JSON; boundary length accepted', async () => {
      const { conv } = await assigned();
      const send = (body) => server.api.sendRaw(conv.id, body);
      assertError(await send({ content: '' }), 400, 'empty content');
      assertError(await send({}), 400, 'missing content');
      assertError(await send({ content: null }), 400, 'null content');
      assertError(await send({ content: 'x'.repeat(MAX_LENGTH + 1) }), 400, 'content longer than max-length');
      assertError(
        await server.api.request('POST', `/api/conversations/${conv.id}/messages`, { rawBody: '{"content": "unterminated' }),
        400,
        'malformed JSON message',
      );
      assert.equal((await server.api.messages(conv.id)).length, 0, 'nothing stored by refused sends');
      const ok = await server.api.send(conv.id, { content: 'y'.repeat(MAX_LENGTH) });
      assert.equal(ok.content.length, MAX_LENGTH, 'exactly max-length is accepted');
      assert.equal(ok.seq, 1, 'refused sends consumed no seq');
    });

    it('400: accept without agentId or with malformed JSON', async () => {
      const conv = await server.api.queuedConversation();
      // Development mode: an agent must name itself; jwt mode: no token, no identity.
      assertError(await server.api.acceptRaw(conv.id, undefined, 'No Id'), JWT_MODE ? 401 : 400, 'accept without agentId');
      assertError(
        await server.api.request('POST', `/api/agent/conversations/${conv.id}/accept`, { rawBody: '{agentId:' }),
        400,
        'accept with malformed JSON',
      );
      assertConversation(await server.api.conversation(conv.id), { status: 'QUEUED' }, 'still queued');
      await server.api.closeByCustomer(conv.id, conv.customerId);
    });

    it('404: unknown conversation id on every route', async () => {
      const id = randomUUID();
      const cases = [
        ['GET', `/api/conversations/${id}`],
        ['POST', `/api/conversations/${id}/queue`, { channel: 'web' }],
        ['GET', `/api/conversations/${id}/messages`],
        ['POST', `/api/conversations/${id}/messages`, { content: 'hi' }],
        ['DELETE', `/api/conversations/${id}`],
        ['POST', `/api/agent/conversations/${id}/accept`, { agentId: 'a', displayName: 'A' }],
        ['POST', `/api/agent/conversations/${id}/close`, { agentId: 'a', displayName: 'A' }],
        ['GET', `/api/agent/conversations/${id}/messages`],
      ];
      for (const [method, path, body] of cases) {
        const res = await server.api.request(method, path, { body, headers: { 'X-Participant-Id': 'p', 'X-Agent-Id': 'a' } });
        assertError(res, 404, `${method} ${path}`);
      }
    });

    it("403: reading another agent's conversation messages", async () => {
      const { conv, agentId } = await assigned();
      await server.api.send(conv.id, { content: 'secret' });
      const res = await server.api.request('GET', `/api/agent/conversations/${conv.id}/messages`, { headers: { 'X-Agent-Id': uid('intruder') } });
      assertError(res, 403, "another agent's messages");
      assert.equal((await server.api.agentMessages(conv.id, agentId)).length, 1, 'the owner can read them');
      await server.api.closeByAgent(conv.id, agentId, 'Agent Err');
    });

    it('409 assigned to another agent, 410 closed, 429 over the cap (cap 1)', async () => {
      const { conv, agentId } = await assigned();
      assertError(await server.api.acceptRaw(conv.id, uid('other'), 'Other'), 409, 'accept a conversation assigned to another agent');
      const next = await server.api.queuedConversation();
      assertError(await server.api.acceptRaw(next.id, agentId, 'Agent Err'), 429, 'accept over max-concurrent-by-agent');
      await server.api.closeByAgent(conv.id, agentId, 'Agent Err');
      assertError(await server.api.acceptRaw(conv.id, agentId, 'Agent Err'), 410, 'accept a closed conversation (even by its agent)');
      assertError(await server.api.acceptRaw(conv.id, uid('other'), 'Other'), 410, 'accept a closed conversation');
      await server.api.accept(next.id, agentId, 'Agent Err');
      await server.api.closeByAgent(next.id, agentId, 'Agent Err');
    });

    it('410: sending to a CLOSED conversation (REST and socket)', async () => {
      const { conv, customerId, agentId } = await assigned();
      const customer = await clients.customer(server.url, { token: customerId, conversationId: conv.id });
      await server.api.closeByCustomer(conv.id, customerId);
      await customer.waitStatus('CLOSED');
      assertError(await server.api.sendRaw(conv.id, { content: 'hello?' }), 410, 'REST send to CLOSED');
      assertError(
        await server.api.sendRaw(conv.id, { content: 'hello?', senderType: 'AGENT', senderId: agentId }),
        410,
        'REST agent send to CLOSED',
      );
      if (customer.socket.connected) assertAckError(await customer.send(conv.id, 'hello?'), 410, 'socket send to CLOSED');
    });

    it('socket chat:message errors ack {error, code}: empty, too long, unknown conversation', async () => {
      const { conv, customerId } = await assigned();
      const customer = await clients.customer(server.url, { token: customerId, conversationId: conv.id });
      assertAckError(await customer.send(conv.id, ''), 400, 'empty content');
      assertAckError(await customer.send(conv.id, 'z'.repeat(MAX_LENGTH + 1)), 400, 'too long content');
      const unknown = await customer.send(randomUUID(), 'to nowhere');
      assert.ok(unknown && typeof unknown.error === 'string', `unknown conversation acks an error: ${JSON.stringify(unknown)}`);
      // Still connected and working.
      const ok = await customer.sendOk(conv.id, 'fine');
      assert.equal(ok.seq, 1, 'refused socket sends consumed no seq');
      await customer.waitSeq(1);
      assert.deepEqual(customer.messages.items.map((m) => m.seq), [1], 'refused sends were not broadcast');
    });

    for (const role of ['customer', 'agent']) {
      it(`socket refusal (${role}): unknown conversationId -> system:error, then disconnect`, async () => {
        const c = clients.create(server.url, { role, token: uid(role), displayName: 'X', conversationId: randomUUID() });
        await assertRefused(c);
      });

      it(`socket refusal (${role}): CLOSED conversation -> system:error, then disconnect`, async () => {
        const { conv, customerId, agentId } = await assigned();
        await server.api.closeByAgent(conv.id, agentId, 'Agent Err');
        const token = role === 'customer' ? customerId : agentId;
        const c = clients.create(server.url, { role, token, displayName: 'X', conversationId: conv.id });
        await assertRefused(c);
        // A refused socket is not in the room: a later REST read still shows only the close message.
        assert.equal((await server.api.messages(conv.id)).length, 1);
      });
    }

    /** Connect; expect `system:error {message, code}` and then a disconnect, and no join event. */
    async function assertRefused(c) {
      const err = c.errors.until((e) => e.length > 0, { description: 'system:error' });
      const gone = c.disconnects.until((d) => d.length > 0, { description: 'the disconnect after system:error' });
      c.socket.connect();
      const [payload] = await err;
      assert.ok(typeof payload?.message === 'string' && payload.message.length > 0, `system:error.message: ${JSON.stringify(payload)}`);
      assert.ok(
        (typeof payload.code === 'string' && payload.code.length > 0) || Number.isInteger(payload.code),
        `system:error.code: ${JSON.stringify(payload)}`,
      );
      const [reason] = await gone;
      assert.ok(['io server disconnect', 'transport close'].includes(reason), `disconnect reason ${JSON.stringify(reason)}`);
      const order = c.timeline.map(([ev]) => ev).filter((ev) => ev === 'system:error' || ev === 'disconnect');
      assert.deepEqual(order.slice(0, 2), ['system:error', 'disconnect'], 'system:error comes before the disconnect');
      assert.deepEqual(
        c.events.items.filter((e) => e?.participant && e?.conversation),
        [],
        'no join system:event for a refused socket',
      );
      assert.equal(c.connectErrors.items.length, 0, `refusal is not a CONNECT_ERROR: ${JSON.stringify(c.connectErrors.items.map((e) => e?.message))}`);
    }
  });
}
