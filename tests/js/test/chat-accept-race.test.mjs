// Accepting queued conversations under contention: 50 agents racing for one
// conversation (exactly one wins, the others get 409/410, all observers agree
// on the winner), and the per-agent cap (max-concurrent-by-agent) with slots
// freed by closing — sequentially and under a concurrent burst.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EXECUTOR_COUNTS,
  assertConversation,
  assertError,
  idsOf,
  uid,
  useChatClients,
  useChatServer,
} from '../lib/chat.mjs';

const RACERS = 50;
const ROUNDS = 3;

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat accept race (--executors ${executors})`, () => {
    const server = useChatServer({ executors, config: { 'chat.queue': { 'max-concurrent-by-agent': 2 } } });
    const clients = useChatClients();

    for (let round = 1; round <= ROUNDS; round++) {
      it(`${RACERS} agents accept one queued conversation at once: exactly one 200 (round ${round})`, async () => {
        const customerId = uid('cust');
        const conv = await server.api.queuedConversation({ customerId, name: 'Racy' });
        const customer = await clients.customer(server.url, { token: customerId, conversationId: conv.id });
        const agents = Array.from({ length: RACERS }, (_, i) => `racer-${round}-${i}-${uid('a')}`);

        const results = await Promise.all(agents.map((a) => server.api.acceptRaw(conv.id, a, `Agent ${a}`)));

        const winners = results.map((r, i) => [r, agents[i]]).filter(([r]) => r.status === 200);
        assert.equal(
          winners.length,
          1,
          `exactly one accept wins; statuses: ${JSON.stringify(results.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {}))}`,
        );
        const [[winRes, winner]] = winners;
        assertConversation(winRes.body, { id: conv.id, status: 'ASSIGNED', agent: { id: winner, type: 'AGENT' } }, 'winning accept');
        for (const [i, r] of results.entries()) {
          if (r.status === 200) continue;
          assert.ok([409, 410].includes(r.status), `losing accept by ${agents[i]} -> ${r.status} (expected 409 or 410): ${r.text}`);
          assertError(r, r.status, `losing accept by ${agents[i]}`);
        }

        // Everybody agrees on the winner.
        assertConversation(await server.api.conversation(conv.id), { status: 'ASSIGNED', agent: { id: winner } }, 'GET after race');
        const assigned = await customer.waitStatus('ASSIGNED');
        assert.equal(assigned.conversation.agent.id, winner, 'the room is told the winner');
        assert.equal(
          customer.events.items.filter((e) => e?.conversation?.status === 'ASSIGNED' && e.conversation.agent?.id !== winner).length,
          0,
          'no assignment event names a loser',
        );
        assert.deepEqual((await server.api.agentConversations(winner, ['ASSIGNED'])).map((c) => c.id), [conv.id]);
        for (const loser of agents.filter((a) => a !== winner).slice(0, 5)) {
          assert.deepEqual((await server.api.agentConversations(loser, ['ASSIGNED'])).map((c) => c.id), [], `${loser} got nothing`);
        }
        assert.ok(!idsOf(await server.api.agentQueue()).includes(conv.id), 'no longer queued');

        // After the race: the winner may re-accept (200), a loser still gets 409.
        const again = await server.api.acceptRaw(conv.id, winner, 'again');
        assert.equal(again.status, 200, `re-accepting your own conversation -> 200: ${again.text}`);
        assertConversation(again.body, { status: 'ASSIGNED', agent: { id: winner } }, 're-accept');
        assertError(await server.api.acceptRaw(conv.id, agents.find((a) => a !== winner), 'loser'), 409, 'loser accepts again');

        // The winner's messages get through; then the slot is freed again.
        const msg = await server.api.send(conv.id, { content: 'you won', senderType: 'AGENT', senderId: winner, senderDisplayName: 'W' });
        await customer.waitSeq(msg.seq);
        await server.api.closeByAgent(conv.id, winner, 'W');
        assertError(await server.api.acceptRaw(conv.id, winner, 'W'), 410, 'accept after close');
      });
    }

    it('per-agent cap (2): third accept -> 429; closing one (agent or customer) frees a slot', async () => {
      const agentId = uid('capped');
      const convs = [];
      for (let i = 0; i < 5; i++) convs.push(await server.api.queuedConversation({ customerId: uid('cust'), name: `C${i}` }));
      const [a, b, c, d, e] = convs;

      await server.api.accept(a.id, agentId, 'Cap');
      await server.api.accept(b.id, agentId, 'Cap');
      assertError(await server.api.acceptRaw(c.id, agentId, 'Cap'), 429, 'third accept');
      assertConversation(await server.api.conversation(c.id), { status: 'QUEUED' }, 'refused conversation stays queued');
      assert.ok(idsOf(await server.api.agentQueue()).includes(c.id), 'refused conversation is still in the queue');
      // Re-accepting one you hold is not a new slot.
      assert.equal((await server.api.acceptRaw(a.id, agentId, 'Cap')).status, 200, 're-accept at the cap -> 200');
      // Another agent is not affected by this agent's cap.
      const other = uid('other');
      await server.api.accept(e.id, other, 'Other');

      // Agent closes one -> a slot is free.
      await server.api.closeByAgent(a.id, agentId, 'Cap');
      await server.api.accept(c.id, agentId, 'Cap');
      assertError(await server.api.acceptRaw(d.id, agentId, 'Cap'), 429, 'full again');

      // Customer closes one -> a slot is free too.
      await server.api.closeByCustomer(b.id, b.customerId);
      await server.api.accept(d.id, agentId, 'Cap');
      assert.deepEqual(
        (await server.api.agentConversations(agentId, ['ASSIGNED'])).map((x) => x.id).sort(),
        [c.id, d.id].sort(),
        'the agent holds exactly c and d',
      );
      for (const x of [c, d]) await server.api.closeByAgent(x.id, agentId, 'Cap');
      await server.api.closeByAgent(e.id, other, 'Other');
    });

    it('per-agent cap holds under a burst: 6 simultaneous accepts by one agent -> exactly 2 win, the rest 429', async () => {
      const agentId = uid('bursty');
      const convs = await Promise.all(Array.from({ length: 6 }, (_, i) => server.api.queuedConversation({ name: `B${i}` })));
      const results = await Promise.all(convs.map((c) => server.api.acceptRaw(c.id, agentId, 'Bursty')));
      const won = convs.filter((_, i) => results[i].status === 200);
      assert.equal(won.length, 2, `exactly the cap wins; statuses ${results.map((r) => r.status)}`);
      for (const r of results) if (r.status !== 200) assertError(r, 429, 'accept over the cap');
      assert.deepEqual(
        (await server.api.agentConversations(agentId, ['ASSIGNED'])).map((x) => x.id).sort(),
        won.map((c) => c.id).sort(),
      );
      const queue = idsOf(await server.api.agentQueue());
      for (const c of convs) {
        assert.equal(queue.includes(c.id), !won.includes(c), `${c.id} queued iff not won`);
      }
      for (const c of won) await server.api.closeByAgent(c.id, agentId, 'Bursty');
      for (const c of convs.filter((x) => !won.includes(x))) await server.api.closeByCustomer(c.id, c.customerId);
    });
  });
}
