// A client that floods chat:message without waiting for acks. The server keeps at most 64 of
// one socket's messages in flight and refuses the rest with an ack error (too_many_requests)
// instead of piling up work — whether the bound is reached depends on how fast the backend
// answers (the embedded one keeps up; Redis usually does not), so this test checks what must
// hold either way: every message is answered exactly once, stored or refused with the right
// error, the stored ones have contiguous seqs, and the socket and other clients are still
// served. The bound itself is unit-tested (gateway/src/chat/socket_ctx.rs). The socket's event
// rate limit (chat.security.rate, 20/s burst 40 by default) would refuse a flood long before:
// it is raised here so the in-flight bound is what is exercised (the rate limit has its own
// tests in security.test.mjs).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EXECUTOR_COUNTS,
  BULK_TIMEOUT_MS,
  assertContiguous,
  uid,
  useChatClients,
  useChatServer,
} from '../lib/chat.mjs';

const FLOOD = 3000;

for (const executors of EXECUTOR_COUNTS) {
  describe(`chat flood (--executors ${executors})`, () => {
    const server = useChatServer({
      executors,
      config: { 'chat.security.rate': { 'events-per-second': 1000000, burst: 1000000 } },
    });
    const clients = useChatClients();

    it('excess messages are refused with too_many_requests, the rest stored in order', async () => {
      const customerId = uid('flood');
      const conv = await server.api.queuedConversation({ customerId, name: 'Flood' });
      const customer = await clients.customer(server.url, { token: customerId, conversationId: conv.id });
      // All emitted in one burst into a corked TCP socket, so they leave in one write and the
      // server reads hundreds of them at once, before any is processed: well past the bound,
      // however fast the server is.
      const tcp = customer.socket.io.engine.transport.ws._socket;
      tcp.cork();
      const pending = Array.from({ length: FLOOD }, (_, i) =>
        customer.send(conv.id, `burst ${i}`, {}, { timeoutMs: BULK_TIMEOUT_MS }),
      );
      await new Promise((resolve) => setImmediate(resolve));
      tcp.uncork();
      const acks = await Promise.all(pending);
      const stored = acks.filter((a) => a && typeof a.seq === 'number');
      const refused = acks.filter((a) => a && a.code === 'too_many_requests');
      assert.equal(stored.length + refused.length, FLOOD, 'every message answered: stored or refused');
      assert.ok(stored.length >= 64, 'up to the bound is accepted');
      for (const r of refused) assert.match(r.error, /awaiting their ack/);
      assertContiguous(stored.map((m) => m).sort((a, b) => a.seq - b.seq), 1, 'stored messages');

      // The socket is still usable once its acks are in, and others are served.
      const after = await customer.sendOk(conv.id, 'after the flood');
      assert.equal(after.seq, stored.length + 1);
      const other = await server.api.queuedConversation({ customerId: uid('other'), name: 'Other' });
      assert.equal(other.status, 'QUEUED');
    });
  });
}
