// Chat lifecycle end to end: a conversation started over REST and one
// started by a customer socket go OPEN -> QUEUED -> ASSIGNED -> CLOSED.
// Messages flow both ways over Socket.IO (with ack) and REST, every side
// receives every message as `chat:message` in seq order, and closing (by the
// agent, by the customer) appends the CHAT_CLOSED SYSTEM message, frees the
// queue/assignment and makes further sends fail with 410.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EXECUTOR_COUNTS,
  JWT_MODE,
  ISO_DURATION_RE,
  assertAckError,
  assertCloseMessage,
  assertContiguous,
  assertConversation,
  assertError,
  assertIsoMillis,
  assertMessage,
  assertQueueEntry,
  idsOf,
  tokenFor,
  randomUUID,
  uid,
  useChatClients,
  useChatServer,
} from '../lib/chat.mjs';

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat lifecycle (--executors ${executors})`, () => {
    const server = useChatServer({ executors });
    const clients = useChatClients();

    /** Checks the `participant` of a system:event received by a socket of `id`/`type`. */
    function assertOwnParticipant(event, id, type, role, what) {
      assert.equal(event.participant?.id, id, `${what}: participant.id is the socket's own (${JSON.stringify(event.participant)})`);
      assert.equal(event.participant?.type, type, `${what}: participant.type`);
      assert.equal(String(event.participant?.metadata?.role ?? '').toLowerCase(), role, `${what}: participant.metadata.role`);
    }

    /** Exchanges 4 messages (socket + REST, both directions); returns them in seq order. */
    async function exchange(conv, customer, agent, { customerId, agentId, agentName, firstSeq }) {
      const m1 = await customer.sendOk(conv.id, 'hello from the customer socket');
      assertMessage(m1, { seq: firstSeq, type: 'TEXT', sender: { id: customerId, type: 'CUSTOMER' } }, 'customer socket ack');
      const m2 = await agent.sendOk(conv.id, 'hello from the agent socket');
      assertMessage(m2, { seq: firstSeq + 1, type: 'TEXT', sender: { id: agentId, type: 'AGENT' } }, 'agent socket ack');
      const m3 = await server.api.send(conv.id, { content: 'customer over REST', metadata: { source: 'rest' } });
      assertMessage(
        m3,
        { conversationId: conv.id, seq: firstSeq + 2, type: 'TEXT', content: 'customer over REST', sender: { type: 'CUSTOMER' }, metadata: { source: 'rest' } },
        'REST customer message',
      );
      const m4 = await server.api.send(conv.id, {
        content: 'agent over REST',
        senderType: 'AGENT',
        senderId: agentId,
        senderDisplayName: agentName,
      });
      assertMessage(
        m4,
        { conversationId: conv.id, seq: firstSeq + 3, type: 'TEXT', sender: { id: agentId, type: 'AGENT', displayName: agentName } },
        'REST agent message',
      );
      const sent = [m1, m2, m3, m4];
      assert.equal(new Set(sent.map((m) => m.id)).size, 4, 'message ids are unique');

      // Both sides receive every message (rooms include the sender) in seq order.
      for (const side of [customer, agent]) {
        const all = await side.waitSeq(firstSeq + 3);
        assertContiguous(all, all[0].seq, `chat:message on ${side.label}`);
        const got = all.filter((m) => m.seq >= firstSeq);
        assert.deepEqual(got.map((m) => m.id), sent.map((m) => m.id), `${side.label} received exactly the stored messages`);
        assert.deepEqual(got, sent, `${side.label}: broadcast equals the stored ChatMessage`);
      }
      // History over REST, customer and agent endpoints.
      const history = await server.api.messages(conv.id);
      assertContiguous(history, 1, 'customer history');
      assert.deepEqual(history.slice(firstSeq - 1), sent);
      assert.deepEqual(await server.api.agentMessages(conv.id, agentId), history, 'agent history equals customer history');
      return sent;
    }

    async function assertClosedEverywhere(conv, sides, closeSeq, closer, customerId, agentId) {
      // The SYSTEM close message reaches both sides after everything else, in seq order.
      for (const side of sides) {
        const got = await side.waitSeq(closeSeq);
        assertContiguous(got, got[0].seq, `chat:message on ${side.label}`);
        assertCloseMessage(got[got.length - 1], { conversationId: conv.id, ...closer }, `close message on ${side.label}`);
        const ev = await side.waitStatus('CLOSED');
        assert.equal(ev.conversation.id, conv.id);
        assert.equal(typeof ev.type, 'string', `lifecycle system:event carries a type: ${JSON.stringify(ev)}`);
      }
      const history = await server.api.messages(conv.id);
      assertContiguous(history, 1, 'history after close');
      assert.equal(history.length, closeSeq);
      assertCloseMessage(history[closeSeq - 1], { conversationId: conv.id, ...closer }, 'close message in history');

      const meta = await server.api.conversation(conv.id);
      assertConversation(meta, { id: conv.id, status: 'CLOSED', customer: { id: customerId } }, 'GET after close');

      // Sending to a closed conversation: REST 410, socket ack {error, code}.
      assertError(await server.api.sendRaw(conv.id, { content: 'too late' }), 410, 'REST send to a CLOSED conversation');
      assertError(
        await server.api.sendRaw(conv.id, { content: 'too late', senderType: 'AGENT', senderId: agentId }),
        410,
        'REST agent send to a CLOSED conversation',
      );
      // Anyone else is refused before the status is even looked at.
      assertError(
        await server.api.sendRaw(conv.id, { content: 'not mine', senderType: 'AGENT', senderId: 'x' }),
        403,
        'REST send by another agent',
      );
      for (const side of sides) {
        if (!side.socket.connected) continue;
        assertAckError(await side.send(conv.id, 'too late over socket'), 410, `socket send to CLOSED on ${side.label}`);
      }
      assert.equal((await server.api.messages(conv.id)).length, closeSeq, 'refused sends stored nothing');
      // Not in the queue any more.
      assert.ok(!idsOf(await server.api.agentQueue()).includes(conv.id), 'closed conversation is not queued');
    }

    it('REST-started conversation: queue -> snapshot -> accept -> messages both ways -> agent closes', async () => {
      const customerId = uid('cust');
      const agentId = uid('agent');
      const watcher = await clients.queueWatcher(server.url, { token: uid('watcher') });

      const conv = await server.api.createConversation({ customerId, name: 'Bob', attributes: { topic: 'billing' } });
      assertConversation(conv, { status: 'OPEN', customer: { id: customerId, displayName: 'Bob', type: 'CUSTOMER' } }, 'created');
      assert.equal(conv.attributes?.topic, 'billing', `body attributes are kept: ${JSON.stringify(conv.attributes)}`);
      assert.deepEqual(await server.api.conversation(conv.id), conv, 'GET returns the same metadata');

      const customer = await clients.customer(server.url, { token: customerId, displayName: 'Bob', conversationId: conv.id });
      assertOwnParticipant(customer.joined, customerId, 'CUSTOMER', 'customer', 'customer join');
      assertConversation(customer.joined.conversation, { id: conv.id, status: 'OPEN' }, 'customer join conversation');

      const q = await server.api.queue(conv.id, { channel: 'web' });
      assert.ok(Number.isInteger(q.position) && q.position >= 0, `position is a 0-based integer: ${JSON.stringify(q)}`);
      assert.match(q.estimatedWait, ISO_DURATION_RE, 'estimatedWait is an ISO-8601 duration');
      const queued = await server.api.conversation(conv.id);
      assertConversation(queued, { status: 'QUEUED' }, 'after queue');
      const queuedEv = await customer.waitStatus('QUEUED');
      assertOwnParticipant(queuedEv, customerId, 'CUSTOMER', 'customer', 'queued event');
      assert.equal(queuedEv.conversation.id, conv.id);

      // The agent-queue room sees it.
      const snap = await watcher.snapshots.find((s) => idsOf(s).includes(conv.id), { description: 'a snapshot with the new conversation' });
      const entry = snap.find((e) => e.conversationId === conv.id);
      assertQueueEntry(entry);
      assert.equal(entry.customerId, customerId);
      assert.equal(entry.customerName, 'Bob');
      assert.equal(entry.channel, 'web');
      const restEntry = (await server.api.agentQueue()).find((e) => e.conversationId === conv.id);
      assert.ok(restEntry, 'GET /api/agent/queue lists it');
      assert.equal(restEntry.enqueuedAt, entry.enqueuedAt);

      // Accept.
      const accepted = await server.api.accept(conv.id, agentId, 'Ann');
      assertConversation(accepted, { id: conv.id, status: 'ASSIGNED', agent: { id: agentId, type: 'AGENT', displayName: 'Ann' } }, 'accepted');
      assert.ok(accepted.version > queued.version, 'version increases with each change');
      assertConversation(await server.api.conversation(conv.id), { status: 'ASSIGNED', agent: { id: agentId } }, 'GET after accept');
      const assignedEv = await customer.waitStatus('ASSIGNED');
      assert.equal(assignedEv.conversation.agent.id, agentId);
      assertOwnParticipant(assignedEv, customerId, 'CUSTOMER', 'customer', 'accepted event (customer side)');
      await watcher.snapshots.latest((s) => !idsOf(s).includes(conv.id), { description: 'a snapshot without the accepted conversation' });
      assert.ok(!idsOf(await server.api.agentQueue()).includes(conv.id), 'accepted conversation left the queue');
      assert.deepEqual(idsOf(await server.api.agentQueue()).filter((id) => id === conv.id), []);
      const mine = await server.api.agentConversations(agentId, ['ASSIGNED']);
      assert.deepEqual(mine.map((c) => c.id), [conv.id], "the agent's ASSIGNED conversations");

      const agent = await clients.agent(server.url, { token: agentId, displayName: 'Ann', conversationId: conv.id });
      assertOwnParticipant(agent.joined, agentId, 'AGENT', 'agent', 'agent join');
      assertConversation(agent.joined.conversation, { id: conv.id, status: 'ASSIGNED' }, 'agent join conversation');

      await exchange(conv, customer, agent, { customerId, agentId, agentName: 'Ann', firstSeq: 1 });

      // Agent closes.
      const closed = await server.api.closeByAgent(conv.id, agentId, 'Ann', 'resolved');
      assertConversation(closed, { id: conv.id, status: 'CLOSED' }, 'closed by agent');
      await assertClosedEverywhere(conv, [customer, agent], 5, { byType: 'AGENT', byName: 'Ann' }, customerId, agentId);
      assert.deepEqual((await server.api.agentConversations(agentId, ['ASSIGNED'])).map((c) => c.id), []);
      assert.deepEqual((await server.api.agentConversations(agentId, ['CLOSED'])).map((c) => c.id), [conv.id]);
      assert.deepEqual(
        (await server.api.agentConversations(agentId, ['ASSIGNED', 'CLOSED'])).map((c) => c.id),
        [conv.id],
        'repeated status parameters',
      );
    });

    it('socket-started conversation: customer socket without conversationId -> ... -> customer closes', async () => {
      const customerId = uid('cust');
      const agentId = uid('agent');
      const customer = await clients.customer(server.url, { token: customerId, displayName: 'Carl' });
      const conv = customer.joined.conversation;
      assertConversation(conv, { status: 'OPEN', customer: { id: customerId, displayName: 'Carl' } }, 'socket-started');
      assertOwnParticipant(customer.joined, customerId, 'CUSTOMER', 'customer', 'customer join');
      assertConversation(await server.api.conversation(conv.id), { id: conv.id, status: 'OPEN' }, 'GET socket-started');

      // The customer can write while OPEN and QUEUED.
      const early = await customer.sendOk(conv.id, 'anyone there?');
      assertMessage(early, { seq: 1, sender: { id: customerId, type: 'CUSTOMER' } });
      await server.api.queue(conv.id);
      await customer.waitStatus('QUEUED');
      const whileQueued = await server.api.send(conv.id, { content: 'still waiting', senderId: customerId });
      assertMessage(whileQueued, { seq: 2, sender: { id: customerId, type: 'CUSTOMER' } });

      await server.api.accept(conv.id, agentId, 'Dana');
      await customer.waitStatus('ASSIGNED');
      const agent = await clients.agent(server.url, { token: agentId, displayName: 'Dana', conversationId: conv.id });
      // The agent fetches what was said before it joined.
      const before = await server.api.agentMessages(conv.id, agentId);
      assert.deepEqual(before, [early, whileQueued]);

      await exchange(conv, customer, agent, { customerId, agentId, agentName: 'Dana', firstSeq: 3 });

      const closed = await server.api.closeByCustomer(conv.id, customerId);
      assertConversation(closed, { id: conv.id, status: 'CLOSED' }, 'closed by customer');
      await assertClosedEverywhere(conv, [customer, agent], 7, { byType: 'CUSTOMER', byName: 'Carl' }, customerId, agentId);
    });

    it('handshake fields in the CONNECT auth payload work like the query string', async () => {
      const customerId = uid('cust');
      const customer = await clients.customer(server.url, { token: customerId, displayName: 'Eve', via: 'auth' });
      const conv = customer.joined.conversation;
      assertConversation(conv, { customer: { id: customerId, displayName: 'Eve' } }, 'auth-started');
      await server.api.queue(conv.id);
      const agentId = uid('agent');
      await server.api.accept(conv.id, agentId, 'Fay');
      const agent = await clients.agent(server.url, { token: agentId, displayName: 'Fay', conversationId: conv.id, via: 'auth' });
      assertOwnParticipant(agent.joined, agentId, 'AGENT', 'agent', 'agent join via auth');
      const m = await agent.sendOk(conv.id, 'via auth');
      assertMessage(m, { sender: { id: agentId, type: 'AGENT' } });
      await customer.waitSeq(m.seq);
      // Auth wins over the query string.
      const c2 = clients.create(server.url, { role: 'customer', token: customerId, displayName: 'Eve', conversationId: conv.id }, {
        via: 'auth',
        query: { role: 'customer', token: 'someone-else', conversationId: randomUUID() },
      });
      const joined = await c2.join();
      assert.equal(joined.participant.id, customerId, 'token from auth wins');
      assert.equal(joined.conversation.id, conv.id, 'conversationId from auth wins');
    });

    it('customer closes while queued: leaves the queue, accept -> 410', async () => {
      const watcher = await clients.queueWatcher(server.url);
      const customerId = uid('cust');
      const conv = await server.api.queuedConversation({ customerId, name: 'Gus' });
      await watcher.snapshots.find((s) => idsOf(s).includes(conv.id), { description: 'a snapshot with the queued conversation' });
      const customer = await clients.customer(server.url, { token: customerId, conversationId: conv.id });
      await server.api.closeByCustomer(conv.id, customerId);
      const closeMsg = await customer.waitMessage((m) => m.type === 'SYSTEM', 'the close message');
      assertCloseMessage(closeMsg, { conversationId: conv.id, byType: 'CUSTOMER', byName: 'Gus' });
      await watcher.snapshots.latest((s) => !idsOf(s).includes(conv.id), { description: 'a snapshot without the closed conversation' });
      assert.ok(!idsOf(await server.api.agentQueue()).includes(conv.id));
      assertError(await server.api.acceptRaw(conv.id, uid('agent'), 'Late'), 410, 'accept a closed conversation');
    });

    it('customer identity: X-Participant-Id > X-Auth-Token > anon-<fingerprint> > new UUID; name header > displayName > Guest (jwt mode: the token only)', async () => {
      if (JWT_MODE) return jwtCustomerIdentity();
      const post = (headers, attributes = {}) => server.api.createConversation({ headers, attributes });
      const a = await post({ 'X-Participant-Id': 'pid-1', 'X-Auth-Token': 'tok-1', 'X-Device-Fingerprint': 'fp-1', 'X-Participant-Name': 'Hal' }, { displayName: 'Ignored' });
      assertConversation(a, { customer: { id: 'pid-1', displayName: 'Hal' } });
      const b = await post({ 'X-Auth-Token': 'tok-2', 'X-Device-Fingerprint': 'fp-2' }, { displayName: 'Ida' });
      assertConversation(b, { customer: { id: 'tok-2', displayName: 'Ida' } });
      const c = await post({ 'X-Device-Fingerprint': 'fp-3' });
      assertConversation(c, { customer: { id: 'anon-fp-3', displayName: 'Guest' } });
      const d = await post({});
      const e = await post({});
      assert.match(d.customer.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a new UUID');
      assert.notEqual(d.customer.id, e.customer.id, 'a new UUID each time');
      assert.equal(d.customer.displayName, 'Guest');
      assert.notEqual(a.id, b.id);
    });

    /** The same contract point in jwt mode: the token only; anonymous customers get an id and a token. */
    async function jwtCustomerIdentity() {
      const post = (headers) => server.api.request('POST', '/api/conversations', { body: { channel: 'web' }, headers });
      // The token's subject, whatever the headers say.
      const a = await post({ authorization: `Bearer ${tokenFor('pid-1')}`, 'X-Participant-Id': 'someone-else', 'X-Participant-Name': 'Hal' });
      assert.equal(a.status, 200, a.text);
      assertConversation(a.body, { customer: { id: 'pid-1', displayName: 'Hal' } });
      // Not a token: refused.
      assertError(await post({ 'X-Auth-Token': 'tok-2' }), 401, 'a non-JWT X-Auth-Token');
      // None: a server-issued id and the token proving it, which works on the next call.
      const d = await post({ 'X-Device-Fingerprint': 'fp-3' });
      assert.equal(d.status, 200, d.text);
      assert.match(d.body.customer.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i, 'a new UUID');
      const issued = d.headers.get('x-participant-token');
      assert.ok(issued, 'X-Participant-Token carries the issued token');
      const again = await server.api.request('GET', `/api/conversations/${d.body.id}`, { headers: { authorization: `Bearer ${issued}` } });
      assert.equal(again.status, 200, again.text);
    }

    it("agent's conversations are listed newest activity first", async () => {
      const agentId = uid('agent');
      const first = await server.api.queuedConversation();
      const second = await server.api.queuedConversation();
      await server.api.accept(first.id, agentId, 'Ivy');
      await server.api.accept(second.id, agentId, 'Ivy');
      await server.api.send(first.id, { content: 'first is now the most recent' });
      assert.deepEqual((await server.api.agentConversations(agentId, ['ASSIGNED'])).map((c) => c.id), [first.id, second.id]);
      await server.api.send(second.id, { content: 'now second is' });
      assert.deepEqual((await server.api.agentConversations(agentId, ['ASSIGNED'])).map((c) => c.id), [second.id, first.id]);
      assert.deepEqual((await server.api.agentConversations(uid('other-agent'), ['ASSIGNED'])).map((c) => c.id), [], "another agent's list");
      for (const c of [first, second]) await server.api.closeByAgent(c.id, agentId, 'Ivy');
    });
  });

  describe(`chat CORS (--executors ${executors})`, () => {
    const origin = 'http://localhost:4200';
    const server = useChatServer({ executors, extraArgs: ['--cors-origin', origin] });

    it('answers preflights for the custom chat headers', async () => {
      for (const [path, method, headers] of [
        ['/api/conversations', 'POST', 'content-type,x-participant-id,x-participant-name'],
        [`/api/agent/conversations/${randomUUID()}/accept`, 'POST', 'content-type,x-agent-id'],
        [`/api/conversations/${randomUUID()}`, 'DELETE', 'x-participant-id'],
        ['/api/agent/queue', 'GET', 'x-agent-id'],
      ]) {
        const res = await fetch(server.url + path, {
          method: 'OPTIONS',
          headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
        });
        await res.arrayBuffer();
        assert.equal(res.status, 204, `preflight ${method} ${path}`);
        assert.equal(res.headers.get('access-control-allow-origin'), origin, `allow-origin for ${path}`);
        const allowed = (res.headers.get('access-control-allow-headers') || '').toLowerCase().split(',').map((h) => h.trim());
        for (const h of headers.split(',')) {
          assert.ok(allowed.includes(h) || allowed.includes('*'), `preflight for ${path} must allow ${h}; allowed: ${allowed}`);
        }
        const methods = (res.headers.get('access-control-allow-methods') || '').toUpperCase();
        assert.ok(methods.includes(method) || methods.includes('*'), `allow-methods ${JSON.stringify(methods)} must include ${method}`);
      }
    });

    it('actual requests from the allowed origin carry Access-Control-Allow-Origin', async () => {
      const res = await server.api.request('POST', '/api/conversations', {
        body: { channel: 'web' },
        headers: { Origin: origin, 'X-Participant-Id': uid('cust'), 'X-Participant-Name': 'Cors' },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assertIsoMillis(res.body.createdAt, 'createdAt');
    });
  });
}
