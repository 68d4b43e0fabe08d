// A node of a cluster dies without a goodbye (kill -9) while the others keep serving:
// nodes (`livechat serve --executors 2`, Redis backend) share a redis-server this file starts
// itself (AOF, `appendfsync always`) on a free port.
//
// - Killed during traffic: the customer whose socket was on the dead node reconnects to
//   another node with `lastSeq` (the highest seq it received) and gets the join
//   `system:event {recovered: true}`, every message after lastSeq, then live ones. Its two
//   sockets together saw exactly 1..n (the only de-duplication being the lastSeq cut), every
//   acknowledged message is stored once, and the message whose ack the kill swallowed is
//   stored exactly once after a retry with its clientMessageId.
// - Killed while holding the housekeeping lease (`<prefix>:lock:housekeeping`, SET NX PX with
//   a lease of one `chat.housekeeping.interval`, never released — see
//   gateway/src/chat/housekeeping.rs): the lease outlives the holder, then the survivor takes
//   the duty over; a conversation queued afterwards times out exactly once. Each node talks to
//   Redis through a small TCP proxy of this file that reads the lock tokens the node sends,
//   so the test knows which node holds the lease and kills that one.
//
// Needs `redis-server` on PATH (the README's test command installs it).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import {
  Api,
  BULK_TIMEOUT_MS,
  ChatClients,
  EventLog,
  SYSTEM_SENDER,
  assertContiguous,
  assertMessage,
  startChatServer,
  uid,
  usingChatStub,
} from '../lib/chat.mjs';
import { HAVE_REDIS_SERVER, OwnRedis, Resp, TcpProxy } from '../lib/redis-server.mjs';

const SKIP = usingChatStub ? 'the Node stand-in has no Redis backend' : !HAVE_REDIS_SERVER ? 'redis-server is not installed' : false;

const bulk = { timeoutMs: BULK_TIMEOUT_MS };
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
// Streams here run faster than the per-socket event rate limit (tested in security.test.mjs).
const NO_RATE_LIMIT = { 'chat.security.rate': { 'events-per-second': 1000000, burst: 1000000 } };

// ---------------------------------------------------------------------------
// Redis: an own server, a tiny RESP client, a proxy that reads the lock tokens
// ---------------------------------------------------------------------------

/**
 * A TCP proxy to Redis for one node that reads what the node sends: every
 * `SET <lockKey> <token> NX ...` (a try for the housekeeping lease) is logged in `leads`
 * (its token). The bytes pass unchanged.
 */
class LeaseSniffer extends EventEmitter {
  constructor(target, lockKey, what) {
    super();
    this.leads = new EventLog(this, 'lead', `the Redis link of ${what}`);
    const escaped = lockKey.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const setLock = new RegExp(`\\r\\n${escaped}\\r\\n\\$\\d+\\r\\n([^\\r\\n]+)\\r\\n\\$2\\r\\nNX\\r\\n`, 'gi');
    // What each connection sent and was not matched yet.
    const unmatched = new WeakMap();
    this.proxy = new TcpProxy(target, {
      onClientData: (chunk, connection) => {
        let seen = (unmatched.get(connection) ?? '') + chunk.toString('latin1');
        let consumed = 0;
        setLock.lastIndex = 0;
        for (let m; (m = setLock.exec(seen)); ) {
          this.emit('lead', m[1]);
          consumed = setLock.lastIndex;
        }
        // Keep an unfinished command's start (commands here are far shorter than 1 KiB).
        unmatched.set(connection, seen.slice(Math.max(consumed, seen.length - 1024)));
      },
    });
  }

  listen() {
    return this.proxy.listen();
  }

  close() {
    this.leads.cancelAll();
    return this.proxy.close();
  }
}

// ---------------------------------------------------------------------------
// the cluster
// ---------------------------------------------------------------------------

/**
 * Starts one node per Redis URL (all sharing `prefix`), runs `fn({nodes, clients})` with
 * `nodes[i] = {name, url, api, server, kill()}`; always cleans up: a node the test killed is
 * only reaped (its exit was wanted), every other node must exit 0 on SIGTERM.
 */
async function withNodes({ redisUrls, prefix, config = {} }, fn) {
  const names = ['A', 'B', 'C'];
  const servers = [];
  const killed = new Set();
  const clients = new ChatClients();
  let failure = null;
  try {
    for (const [i, url] of redisUrls.entries()) {
      const server = await startChatServer({
        executors: 2,
        label: `node ${names[i]}`,
        config: { ...NO_RATE_LIMIT, ...config, 'chat.redis': { url, 'key-prefix': prefix } },
      });
      server.gone = new Promise((r) => server.child.once('close', (code, signal) => r({ code, signal })));
      servers.push(server);
    }
    const nodes = servers.map((server, i) => ({
      name: names[i],
      url: server.url,
      api: new Api(server.url),
      server,
      /** kill -9; resolves with the exit once the process is gone. */
      async kill() {
        killed.add(server);
        server.child.kill('SIGKILL');
        return server.gone;
      },
    }));
    await fn({ nodes, clients });
  } catch (err) {
    failure = err;
  }
  clients.closeAll();
  for (const server of servers) {
    if (killed.has(server)) {
      server.child.kill('SIGKILL'); // a no-op when it is gone already
      await server.gone;
      continue;
    }
    try {
      await server.close();
    } catch (err) {
      if (!failure) failure = err;
      else failure.message += `\n(and on shutdown: ${err.message})`;
    }
  }
  if (failure) throw failure;
}

/** Every stored message of `id`, read page by page (`after`, at most 500 a page). */
async function allMessages(api, id) {
  const all = [];
  for (;;) {
    const page = await api.messages(id, { after: all.length ? all[all.length - 1].seq : 0, limit: 500 });
    all.push(...page);
    if (page.length < 500) return all;
  }
}

/** The seqs of `messages`, for failure messages. */
const seqsOf = (messages) => messages.map((m) => m.seq).join(',');

describe('a node killed with kill -9', { skip: SKIP }, () => {
  it('a node killed with kill -9 during traffic: its clients reconnect to another node with lastSeq and lose nothing acknowledged', async (t) => {
    const redis = await new OwnRedis().start();
    try {
      await withNodes({ redisUrls: [redis.url, redis.url, redis.url], prefix: uid('lc-kill') }, async ({ nodes: [A, B, C], clients }) => {
        // Customer socket on A (the node that dies), agent socket on B.
        const customerId = uid('cust');
        const agentId = uid('agent');
        const conv = await A.api.queuedConversation({ customerId, name: 'Killed Customer' });
        await B.api.accept(conv.id, agentId, 'Surviving Agent');
        const first = await clients.customer(A.url, { token: customerId, displayName: 'Killed Customer', conversationId: conv.id });
        const agent = await clients.agent(B.url, { token: agentId, displayName: 'Surviving Agent', conversationId: conv.id });

        /** Every message acknowledged as stored, by either side, over any socket. */
        const acked = [];

        // The agent writes steadily from B until told to stop (B never goes away: every send must be acknowledged).
        let agentStop = false;
        const agentStream = (async () => {
          for (let k = 1; !agentStop; k++) {
            acked.push(await agent.sendOk(conv.id, `agent ${k}`, { clientMessageId: uid('cmid-agent') }));
            await pause(15);
          }
        })();
        agentStream.catch(() => {});

        // The customer writes steadily on A until its socket dies; `inFlight` is the message whose ack the kill swallowed.
        const gone = first.disconnects.until((d) => d.length > 0, { description: 'the disconnect of the socket on the killed node', ...bulk });
        let inFlight = null;
        const customerStream = (async () => {
          for (let k = 1; ; k++) {
            inFlight = { content: `customer ${k}`, clientMessageId: uid('cmid-cust') };
            let ack;
            try {
              // (A send after the socket died would only time out: the disconnect ends the stream at once.)
              const died = gone.then(() => Promise.reject(new Error('the socket disconnected before the ack')));
              ack = await Promise.race([first.send(conv.id, inFlight.content, { clientMessageId: inFlight.clientMessageId }), died]);
            } catch (err) {
              return err; // no ack: the node is gone
            }
            assertMessage(ack, { conversationId: conv.id, content: inFlight.content }, `customer ack ${k} (on A)`);
            acked.push(ack);
            inFlight = null;
            await pause(25);
          }
        })();
        customerStream.catch(() => {});

        // Mid-stream: kill -9 node A.
        await first.waitSeq(30, bulk);
        const exit = await A.kill();
        assert.equal(exit.signal, 'SIGKILL', `node A died of the kill: ${JSON.stringify(exit)}`);
        await gone;
        const noAck = await customerStream;
        assert.ok(noAck instanceof Error, `the customer's stream ends with a send left without an ack, got ${noAck}`);
        t.diagnostic(`the customer's last send on A: ${noAck.message}`);

        // What the customer had: 1..lastSeq, nothing missing in between.
        const old = [...first.messages.items];
        assertContiguous(old, 1, 'chat:message on the socket of the killed node');
        const lastSeq = old.length ? old[old.length - 1].seq : 0;
        assert.ok(lastSeq >= 30, `lastSeq ${lastSeq}`);

        // The agent goes on (B and C unaffected); the customer misses some, then comes back on C.
        await agent.waitSeq(lastSeq + 10, bulk);
        const again = await clients.customer(C.url, { token: customerId, displayName: 'Killed Customer', conversationId: conv.id, lastSeq });
        const streamAtJoin = agent.messages.last.seq;
        assert.equal(again.joined.recovered, true, `the join system:event of the resumed socket: ${JSON.stringify(again.joined)}`);
        assert.equal(again.joined.conversation?.id, conv.id, 'the join names the conversation');
        assert.equal(again.joined.participant?.id, customerId, 'the join names the customer');

        // As a client would: the unacknowledged message again, with its clientMessageId (stored once, whether or not A had committed it).
        const retried = await again.sendOk(conv.id, inFlight.content, { clientMessageId: inFlight.clientMessageId });
        acked.push(retried);
        // (Every seq up to streamAtJoin existed before the retry: a lower one was committed by A before it died.)
        const how = retried.seq <= streamAtJoin ? 'committed by A before it died, the retry got it back' : 'stored by the retry';
        t.diagnostic(`resumed on C with lastSeq ${lastSeq}, the stream at seq ${streamAtJoin}; the in-flight "${inFlight.content}" is seq ${retried.seq} (${how})`);
        for (let k = 1; k <= 5; k++) {
          acked.push(await again.sendOk(conv.id, `customer again ${k}`, { clientMessageId: uid('cmid-cust') }));
          await pause(25);
        }

        // Live ones after the join, then the end of the stream and a last marker.
        await again.waitSeq(streamAtJoin + 15, bulk);
        agentStop = true;
        await agentStream;
        const final = await agent.sendOk(conv.id, 'final', { clientMessageId: uid('cmid-agent') });
        acked.push(final);
        const n = final.seq;
        await Promise.all([again.waitSeq(n, bulk), agent.waitSeq(n, bulk)]);

        // The resumed socket: the join first, then lastSeq+1 .. n exactly once, in order.
        const resumed = again.messages.items;
        assertContiguous(resumed, lastSeq + 1, 'chat:message on the resumed socket (on C)');
        assert.equal(resumed[resumed.length - 1].seq, n, 'the resumed socket ends at the last message');
        const firstEvent = again.timeline.find(([ev]) => ev !== 'queue:snapshot');
        assert.deepEqual(firstEvent, ['system:event', again.joined], 'the join system:event comes before any message');
        const together = [...old, ...resumed];
        assertContiguous(together, 1, 'old socket + resumed socket');
        assert.equal(together.length, n);

        // Stored: exactly what the customer saw; every acknowledged message once, as acknowledged.
        const history = await allMessages(B.api, conv.id);
        assert.deepEqual(await allMessages(C.api, conv.id), history, 'history on C equals history on B');
        assertContiguous(history, 1, 'history');
        assert.equal(history.length, n, `history holds ${history.length} messages, the last ack was seq ${n}`);
        assert.deepEqual(together.map((m) => m.id), history.map((m) => m.id), 'the customer saw exactly the stored messages');
        assert.deepEqual(together, history, 'the customer saw the stored messages as stored');
        const bySeq = new Map(history.map((m) => [m.seq, m]));
        for (const a of acked) {
          const stored = bySeq.get(a.seq);
          assert.ok(stored, `acknowledged seq ${a.seq} ("${a.content}") is stored`);
          assert.equal(stored.id, a.id, `acknowledged seq ${a.seq}: same id`);
          assert.equal(stored.content, a.content, `acknowledged seq ${a.seq}: same content`);
        }
        assert.equal(new Set(acked.map((a) => a.seq)).size, acked.length, `every acknowledgement names its own seq (acks: ${seqsOf(acked)})`);
        assert.equal(
          history.filter((m) => m.content === inFlight.content).length,
          1,
          `the message in flight at the kill ("${inFlight.content}") is stored exactly once`,
        );

        // The agent on B never noticed: 1..n once, still connected.
        assertContiguous(agent.messages.items, 1, 'chat:message on the agent socket (on B)');
        assert.equal(agent.messages.items.length, n);
        assert.equal(agent.disconnects.items.length, 0, 'the agent socket on B stayed connected');
      });
    } finally {
      await redis.stop();
    }
  });

  it('housekeeping duty moves to another node when its holder is killed', async (t) => {
    const redis = await new OwnRedis().start();
    const prefix = uid('lc-kill');
    const lockKey = `${prefix}:lock:housekeeping`;
    const sniffers = [new LeaseSniffer(redis.port, lockKey, 'node A'), new LeaseSniffer(redis.port, lockKey, 'node B')];
    let resp = null;
    try {
      const ports = await Promise.all(sniffers.map((s) => s.listen()));
      resp = await Resp.open(redis.port);
      // A lease of 1s (= the interval), a queue timeout well inside it.
      const config = { 'chat.housekeeping': { interval: '1s' }, 'chat.queue': { 'max-wait': '300ms' } };
      const redisUrls = ports.map((p) => `redis://127.0.0.1:${p}/0`);
      await withNodes({ redisUrls, prefix, config }, async ({ nodes, clients }) => {
        nodes.forEach((node, i) => (node.sniffer = sniffers[i]));
        /** token -> the node that tried to take the lease with it */
        const tokens = new Map();
        for (const node of nodes) node.sniffer.on('lead', (token) => tokens.set(token, node));

        /** Queues a new conversation on `node` with its customer's socket there; resolves once it timed out. */
        async function queueTimeout(node, name) {
          const customerId = uid('cust');
          const conv = await node.api.createConversation({ customerId, name });
          const customer = await clients.customer(node.url, { token: customerId, conversationId: conv.id });
          await node.api.queue(conv.id);
          await customer.waitStatus('QUEUED', bulk);
          const note = await customer.waitMessage((m) => m.type === 'SYSTEM', `the queue-timeout message of ${name}`, bulk);
          assertMessage(note, { conversationId: conv.id, type: 'SYSTEM', sender: SYSTEM_SENDER, seq: 1 }, `queue-timeout message of ${name}`);
          assert.equal(note.metadata?.event, 'QUEUE_TIMEOUT', `the SYSTEM message of ${name} is the queue timeout: ${JSON.stringify(note.metadata)}`);
          const reopened = await customer.waitStatus('OPEN', bulk);
          assert.equal(reopened.conversation.id, conv.id);
          return { conv, customer };
        }

        /** Exactly one queue timeout happened to `conv`: stored once, told once, back to OPEN. */
        async function assertTimedOutOnce({ conv, customer }, node, what) {
          const history = await node.api.messages(conv.id);
          assertContiguous(history, 1, `history of ${what}`);
          assert.deepEqual(history.map((m) => m.metadata?.event), ['QUEUE_TIMEOUT'], `one queue timeout of ${what}: ${JSON.stringify(history)}`);
          assert.equal((await node.api.conversation(conv.id)).status, 'OPEN', `${what} is OPEN again`);
          assert.deepEqual(customer.messages.items.map((m) => m.seq), [1], `the customer of ${what} got the SYSTEM message once`);
          const statuses = customer.events.items.filter((e) => e !== customer.joined).map((e) => e?.conversation?.status);
          assert.deepEqual(statuses, ['QUEUED', 'OPEN'], `the lifecycle notices of ${what}`);
        }

        // Both nodes sweep when they hold the lease and try for it every interval.
        await Promise.all(nodes.map((n) => n.sniffer.leads.until((l) => l.length > 0, { description: 'a try for the housekeeping lease', ...bulk })));
        const before = await queueTimeout(nodes[0], 'the conversation queued before the kill');

        // Find the holder: right after a fresh take of the lease (more than 400 ms of its 1 s left), kill it.
        let holder = null;
        let token = null;
        for (let round = 0; round < 20 && !holder; round++) {
          const counts = nodes.map((n) => n.sniffer.leads.items.length);
          await Promise.race(nodes.map((n, i) => n.sniffer.leads.until((l) => l.length > counts[i], { description: 'the next try for the lease', ...bulk })));
          await pause(100); // the SET reaches Redis after we read it on its way
          const [value, pttl] = await resp.atomically(['GET', lockKey], ['PTTL', lockKey]);
          if (value !== null && tokens.has(value) && pttl > 400) {
            holder = tokens.get(value);
            token = value;
          }
        }
        for (const n of nodes) n.sniffer.leads.cancelAll();
        assert.ok(holder, 'a node was seen holding the housekeeping lease');
        const survivor = nodes.find((n) => n !== holder);
        const exit = await holder.kill();
        assert.equal(exit.signal, 'SIGKILL', `node ${holder.name} died of the kill`);
        // The lease outlives its holder: the dead node held the duty at its death.
        assert.equal(await resp.cmd('GET', lockKey), token, `node ${holder.name} held the housekeeping lease when it was killed`);
        t.diagnostic(`killed node ${holder.name} while it held the housekeeping lease; node ${survivor.name} survives`);

        // Queued through the survivor after the kill: times out once, so the survivor took the duty over.
        const leadsBefore = survivor.sniffer.leads.items.length;
        const after = await queueTimeout(survivor, 'the conversation queued after the kill');
        // The lease is the survivor's now.
        let takenOver = false;
        for (let round = 0; round < 10 && !takenOver; round++) {
          const count = survivor.sniffer.leads.items.length;
          await survivor.sniffer.leads.until((l) => l.length > count, { description: "the survivor's next try for the lease", ...bulk });
          await pause(100);
          const value = await resp.cmd('GET', lockKey);
          assert.notEqual(value, token, 'the dead node’s lease expired');
          takenOver = value !== null && tokens.get(value) === survivor;
        }
        assert.ok(takenOver, `node ${survivor.name} holds the housekeeping lease after the kill`);
        // Two more intervals of sweeping by the survivor: still one timeout each.
        const seen = survivor.sniffer.leads.items.length;
        await survivor.sniffer.leads.until((l) => l.length >= seen + 2, { description: 'two more tries for the lease', ...bulk });
        assert.ok(survivor.sniffer.leads.items.length > leadsBefore);
        await assertTimedOutOnce(before, survivor, 'the conversation queued before the kill');
        await assertTimedOutOnce(after, survivor, 'the conversation queued after the kill');
      });
    } finally {
      resp?.close();
      for (const s of sniffers) await s.close();
      await redis.stop();
    }
  });
});
