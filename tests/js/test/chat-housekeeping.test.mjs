// Housekeeping with short timeouts (each test runs its own server):
// - a queue entry older than max-wait leaves the queue: status back to OPEN, a
//   SYSTEM message tells the customer, agents' snapshots drop it, accept -> 410;
// - a conversation idle longer than inactivity-timeout is closed with a SYSTEM
//   message (and frees the agent's slot);
// - a conversation older than max-duration is closed even while active.
// Nothing sleeps: the tests wait for the events the server must send.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BULK_TIMEOUT_MS,
  EXECUTOR_COUNTS,
  SYSTEM_SENDER,
  assertContiguous,
  assertConversation,
  assertError,
  assertMessage,
  idsOf,
  uid,
  withChatServer,
} from '../lib/chat.mjs';

const wait = { timeoutMs: BULK_TIMEOUT_MS };

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat housekeeping (--executors ${executors})`, () => {
    it('queue timeout: entry leaves the queue, status OPEN, SYSTEM message to the customer', () =>
      withChatServer(
        { executors, config: { 'chat.housekeeping': { interval: '100ms' }, 'chat.queue': { 'max-wait': '300ms' } } },
        async ({ url, api, clients }) => {
          const watcher = await clients.queueWatcher(url);
          const customerId = uid('cust');
          const conv = await api.createConversation({ customerId, name: 'Waiting' });
          const customer = await clients.customer(url, { token: customerId, conversationId: conv.id });
          await customer.sendOk(conv.id, 'is anyone there?');
          await api.queue(conv.id);
          await watcher.snapshots.find((s) => idsOf(s).includes(conv.id), { description: 'a snapshot with the conversation', ...wait });

          const note = await customer.waitMessage((m) => m.type === 'SYSTEM', 'the queue-timeout SYSTEM message', wait);
          assertMessage(note, { conversationId: conv.id, type: 'SYSTEM', sender: SYSTEM_SENDER, seq: 2 }, 'queue-timeout message');
          assert.ok(note.content.length > 0, 'the SYSTEM message says something');
          assert.notEqual(note.metadata?.event, 'CHAT_CLOSED', 'a queue timeout does not close the chat');

          const reopened = await customer.waitStatus('OPEN', wait);
          assert.equal(reopened.conversation.id, conv.id);
          assertConversation(await api.conversation(conv.id), { status: 'OPEN' }, 'after queue timeout');
          await watcher.snapshots.latest((s) => !idsOf(s).includes(conv.id), { description: 'a snapshot without the timed-out entry', ...wait });
          assert.ok(!idsOf(await api.agentQueue()).includes(conv.id), 'GET /api/agent/queue no longer lists it');
          assertError(await api.acceptRaw(conv.id, uid('agent'), 'Late'), 410, 'accept after the queue timeout (not queued any more)');
          const history = await api.messages(conv.id);
          assertContiguous(history, 1, 'history');
          assert.deepEqual(history.map((m) => m.type), ['TEXT', 'SYSTEM']);

          // The customer can still talk and queue again.
          const more = await customer.sendOk(conv.id, 'please?');
          assert.equal(more.seq, 3);
          await api.queue(conv.id);
          assertConversation(await api.conversation(conv.id), { status: 'QUEUED' }, 're-queued');
          const agentId = uid('agent');
          // Accepting right away wins the race against the next timeout
          // (300 ms); if it loses, the server must answer 410 — never both.
          const res = await api.acceptRaw(conv.id, agentId, 'Quick');
          if (res.status === 200) {
            assertConversation(res.body, { status: 'ASSIGNED', agent: { id: agentId } }, 'accepted after re-queue');
          } else {
            assertError(res, 410, 'accept raced with the queue timeout');
          }
        },
      ));

    it('queue timeout applies to each entry; entries keep leaving oldest first', () =>
      withChatServer(
        { executors, config: { 'chat.housekeeping': { interval: '100ms' }, 'chat.queue': { 'max-wait': '300ms' } } },
        async ({ url, api, clients }) => {
          const watcher = await clients.queueWatcher(url);
          const convs = [];
          for (let i = 0; i < 5; i++) convs.push(await api.queuedConversation({ name: `W${i}` }));
          const customers = [];
          for (const c of convs) customers.push(await clients.customer(url, { token: c.customerId, conversationId: c.id }));
          await Promise.all(customers.map((c) => c.waitMessage((m) => m.type === 'SYSTEM', 'the queue-timeout message', wait)));
          await watcher.snapshots.latest((s) => s.length === 0, { description: 'an empty queue snapshot', ...wait });
          for (const c of convs) assertConversation(await api.conversation(c.id), { status: 'OPEN' }, `${c.id} after timeout`);
          // While the queue emptied, no snapshot ever showed a newer entry without an older one.
          const order = idsOf(convs);
          for (const snap of watcher.snapshots.items) {
            const ids = idsOf(snap).filter((id) => order.includes(id));
            const first = order.indexOf(ids[0]);
            assert.deepEqual(ids, order.slice(first, first + ids.length), `snapshot ${JSON.stringify(ids)} keeps queue order`);
          }
        },
      ));

    it('inactivity: an idle ASSIGNED conversation is closed with a SYSTEM message; the agent slot is freed', () =>
      withChatServer(
        {
          executors,
          config: {
            'chat.housekeeping': { interval: '100ms' },
            // 1s rather than less: the setup (accept, two joins, two messages) must fit in it on a slow machine.
            'chat.conversation': { 'inactivity-timeout': '1s' },
            'chat.queue': { 'max-concurrent-by-agent': 1 },
          },
        },
        async ({ url, api, clients }) => {
          const customerId = uid('cust');
          const agentId = uid('agent');
          const conv = await api.queuedConversation({ customerId, name: 'Idle' });
          await api.accept(conv.id, agentId, 'Agent Idle');
          const customer = await clients.customer(url, { token: customerId, conversationId: conv.id });
          const agent = await clients.agent(url, { token: agentId, displayName: 'Agent Idle', conversationId: conv.id });
          const hello = await customer.sendOk(conv.id, 'hi');
          await agent.sendOk(conv.id, 'hello');

          for (const side of [customer, agent]) {
            const closeMsg = await side.waitMessage((m) => m.type === 'SYSTEM', 'the inactivity close message', wait);
            assertMessage(closeMsg, { conversationId: conv.id, type: 'SYSTEM', sender: SYSTEM_SENDER, seq: 3 }, `inactivity close on ${side.label}`);
            assert.ok(closeMsg.seq > hello.seq);
            await side.waitStatus('CLOSED', wait);
          }
          assertConversation(await api.conversation(conv.id), { status: 'CLOSED' }, 'after inactivity');
          assertError(await api.sendRaw(conv.id, { content: 'anyone?' }), 410, 'send after the inactivity close');
          // The agent (cap 1) can take the next conversation.
          const next = await api.queuedConversation();
          await api.accept(next.id, agentId, 'Agent Idle');
        },
      ));

    it('inactivity: an idle OPEN conversation is closed too', () =>
      withChatServer(
        { executors, config: { 'chat.housekeeping': { interval: '100ms' }, 'chat.conversation': { 'inactivity-timeout': '500ms' } } },
        async ({ url, api, clients }) => {
          const customer = await clients.customer(url, { token: uid('cust'), displayName: 'Quiet' });
          const conv = customer.joined.conversation;
          const closeMsg = await customer.waitMessage((m) => m.type === 'SYSTEM', 'the inactivity close message', wait);
          assertMessage(closeMsg, { conversationId: conv.id, type: 'SYSTEM', sender: SYSTEM_SENDER, seq: 1 });
          assertConversation(await api.conversation(conv.id), { status: 'CLOSED' }, 'after inactivity');
        },
      ));

    it('max-duration: an active conversation is closed once it is older than max-duration', () =>
      withChatServer(
        {
          executors,
          config: {
            'chat.housekeeping': { interval: '100ms' },
            'chat.conversation': { 'max-duration': '2s', 'inactivity-timeout': '30m' },
          },
        },
        async ({ url, api, clients }) => {
          const customerId = uid('cust');
          const agentId = uid('agent');
          const conv = await api.queuedConversation({ customerId, name: 'Long' });
          await api.accept(conv.id, agentId, 'Agent Long');
          const customer = await clients.customer(url, { token: customerId, conversationId: conv.id });
          // Activity does not matter (inactivity-timeout is 30m): the age does.
          await customer.sendOk(conv.id, 'still here');
          const closed = customer.waitMessage((m) => m.type === 'SYSTEM', 'the max-duration close message', wait);
          const closeMsg = await closed;
          assertMessage(closeMsg, { conversationId: conv.id, type: 'SYSTEM', sender: SYSTEM_SENDER }, 'max-duration close');
          assertConversation(await api.conversation(conv.id), { status: 'CLOSED' }, 'after max-duration');
          const history = await api.messages(conv.id, { limit: 500 });
          assert.equal(history[history.length - 1].id, closeMsg.id, 'the close message is the last one');
        },
      ));
  });
}
