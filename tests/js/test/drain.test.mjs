// Graceful drain (README, "Operating livechat"; gateway/src/serve.rs): SIGTERM turns /readyz
// to 503 at once while the node keeps serving for `chat.shutdown.drain-delay`, then it closes
// every session the way a dying transport would (socket.io-client's reason is
// "transport close", on which it reconnects by itself — not "io server disconnect", on
// which it would give up), finishes, and exits 0. A client resuming on another node with
// `lastSeq` loses nothing that was acknowledged. A second signal exits at once.
//
// Two nodes share a redis-server this file starts itself (needs `redis-server` on PATH; the
// README's test command installs it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Api,
  BULK_TIMEOUT_MS,
  ChatClients,
  assertContiguous,
  startChatServer,
  uid,
  usingChatStub,
} from '../lib/chat.mjs';
import { HAVE_REDIS_SERVER, OwnRedis } from '../lib/redis-server.mjs';

const SKIP = usingChatStub ? 'the Node stand-in does not drain' : !HAVE_REDIS_SERVER ? 'redis-server is not installed' : false;

const bulk = { timeoutMs: BULK_TIMEOUT_MS };
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET `path` on `url` -> {status, body}. */
async function probe(url, path) {
  const res = await fetch(new URL(path, url));
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // (not JSON: kept as text for the failure message)
  }
  return { status: res.status, body };
}

/** Polls `path` until it answers `status` (awaiting the condition; no fixed sleep decides). */
async function untilStatus(url, path, status, { timeoutMs = BULK_TIMEOUT_MS } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await probe(url, path);
    if (last.status === status) return last;
    await pause(20);
  }
  throw new Error(`${path} on ${url} did not answer ${status} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

/** A node on `redisUrl` whose exit the test watches (`exited`: {code, signal}). */
async function node(label, redisUrl, prefix, extraArgs = []) {
  const server = await startChatServer({
    executors: 2,
    label,
    extraArgs,
    config: { 'chat.redis': { url: redisUrl, 'key-prefix': prefix } },
  });
  server.exited = new Promise((r) => server.child.once('close', (code, signal) => r({ code, signal })));
  server.api = new Api(server.url);
  return server;
}

describe('graceful drain on SIGTERM', { skip: SKIP }, () => {
  it('SIGTERM: /readyz 503 at once, chat served through the delay, sessions closed as a transport close, exit 0; the customer resumes on another node and loses nothing', async (t) => {
    const redis = await new OwnRedis().start();
    const prefix = uid('lc-drain');
    const clients = new ChatClients();
    const servers = [];
    try {
      const A = await node('node A (drained)', redis.url, prefix, ['--drain-delay', '2s', '--shutdown-timeout', '20s']);
      servers.push(A);
      const B = await node('node B', redis.url, prefix);
      servers.push(B);

      // Ready before: every check named, every one ok.
      const before = await probe(A.url, '/readyz');
      assert.equal(before.status, 200, JSON.stringify(before.body));
      assert.deepEqual(before.body, { ready: true, checks: { draining: 'ok', executors: 'ok', redis: 'ok' } });

      const customerId = uid('cust');
      const agentId = uid('agent');
      const conv = await A.api.queuedConversation({ customerId, name: 'Drained Customer' });
      await B.api.accept(conv.id, agentId, 'Agent on B');
      const customer = await clients.customer(A.url, { token: customerId, conversationId: conv.id });
      const agent = await clients.agent(B.url, { token: agentId, conversationId: conv.id });
      const acked = [];
      for (let k = 1; k <= 3; k++) acked.push(await customer.sendOk(conv.id, `before ${k}`, { clientMessageId: uid('cmid') }));

      A.child.kill('SIGTERM');
      const draining = await untilStatus(A.url, '/readyz', 503);
      assert.equal(draining.body.ready, false);
      assert.notEqual(draining.body.checks.draining, 'ok', `the draining check says why: ${JSON.stringify(draining.body)}`);
      assert.equal(draining.body.checks.redis, 'ok', 'the backends are still fine');
      assert.equal((await probe(A.url, '/healthz')).status, 200, 'a draining node is alive');

      // Still serving during the delay: REST, and messages both ways on A's socket.
      assert.equal((await A.api.conversation(conv.id)).id, conv.id);
      acked.push(await customer.sendOk(conv.id, 'during the drain', { clientMessageId: uid('cmid') }));
      acked.push(await agent.sendOk(conv.id, 'answer during the drain', { clientMessageId: uid('cmid') }));
      await customer.waitSeq(acked[acked.length - 1].seq, bulk);

      // Then the session ends as a transport close (the client would reconnect by itself).
      const [disconnect] = await customer.disconnects.until((d) => d.length > 0, { description: 'the disconnect of the drained socket', ...bulk });
      assert.equal(disconnect, 'transport close', 'socket.io-client reconnects on "transport close" (not on "io server disconnect")');
      const exit = await A.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, 'the drained node exits 0');
      t.diagnostic(`node A drained and exited ${JSON.stringify(exit)}`);

      // Meanwhile the agent goes on; the customer resumes on B with the last seq it saw.
      const old = [...customer.messages.items];
      assertContiguous(old, 1, 'chat:message on the drained socket');
      const lastSeq = old[old.length - 1].seq;
      for (let k = 1; k <= 3; k++) acked.push(await agent.sendOk(conv.id, `after ${k}`, { clientMessageId: uid('cmid') }));
      const again = await clients.customer(B.url, { token: customerId, conversationId: conv.id, lastSeq });
      assert.equal(again.joined.recovered, true, JSON.stringify(again.joined));
      const n = acked[acked.length - 1].seq;
      await again.waitSeq(n, bulk);
      const together = [...old, ...again.messages.items];
      assertContiguous(together, 1, 'drained socket + resumed socket');
      assert.equal(together.length, n, 'every message once');
      const history = await B.api.messages(conv.id);
      assert.deepEqual(together.map((m) => m.id), history.map((m) => m.id), 'the customer saw exactly the stored messages');
      for (const a of acked) assert.equal(history.find((m) => m.seq === a.seq)?.id, a.id, `acknowledged seq ${a.seq} is stored as acknowledged`);
      assert.equal(agent.disconnects.items.length, 0, 'the agent on B stayed connected');
    } finally {
      clients.closeAll();
      for (const s of servers) {
        if (s.child.exitCode === null && s.child.signalCode === null) await s.close();
      }
      await redis.stop();
    }
  });

  it('a second signal during the drain delay exits at once, without draining', async () => {
    const redis = await new OwnRedis().start();
    let A;
    try {
      // A delay far longer than the test's timeout: only the second signal can end it in time.
      A = await node('node A (signalled twice)', redis.url, uid('lc-drain'), ['--drain-delay', '10m', '--shutdown-timeout', '11m']);
      A.child.kill('SIGTERM');
      await untilStatus(A.url, '/readyz', 503);
      A.child.kill('SIGTERM');
      const exit = await A.exited;
      // 128 + SIGTERM (15): the conventional status of a process ended by that signal.
      assert.deepEqual(exit, { code: 143, signal: null });
    } finally {
      if (A && A.child.exitCode === null && A.child.signalCode === null) A.child.kill('SIGKILL');
      await redis.stop();
    }
  });
});
