// A rolling deploy under chat traffic (issue: "a 3-node local cluster under chat traffic, nodes
// restarted one by one → every acknowledged message reaches every receiver exactly once, in seq
// order"). deploy/local-cluster.sh starts 3 nodes of this build with Redis, PostgreSQL, the
// Kafka-compatible broker and HAProxy in front; a customer and an agent chat through HAProxy
// with socket.io-client's own reconnection (WebSocket transport), each sending a steady stream,
// while `local-cluster.sh restart-node 1`, `2`, `3` drain and restart every node in turn.
//
// The clients are what a real frontend does: the handshake's `auth` is a function, so every
// reconnection presents the highest seq received so far as `lastSeq`; a send whose ack is lost
// with its node is sent again with the same `clientMessageId` (stored once, whichever node
// committed it). Afterwards: each side received 1..n exactly once in order, every
// acknowledged message is stored once as acknowledged, and each node's /metrics is saved to
// tests/js/artifacts/rolling-restart/ (what a 3-node drain run produced).
//
// Needs haproxy, redis-server, PostgreSQL server binaries and python3 (the broker); the
// README's test command installs them.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { Api, assertContiguous, uid, usingChatStub } from '../lib/chat.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SCRIPT = join(ROOT, 'deploy', 'local-cluster.sh');
const BIN = process.env.LIVECHAT_CHAT_BIN || join(ROOT, 'target', 'debug', 'livechat');
const ARTIFACTS = join(ROOT, 'tests', 'js', 'artifacts', 'rolling-restart');
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const SKIP = usingChatStub
  ? 'the Node stand-in is not deployable'
  : !have('haproxy')
    ? 'haproxy is not installed (scripts/test.sh installs it)'
    : !have('redis-server')
      ? 'redis-server is not installed'
      : false;

const ACK_TIMEOUT_MS = 3_000;
const WAIT_MS = 60_000;
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `local-cluster.sh args...` with the cluster's environment; resolves with its output. */
function cluster(dir, ...args) {
  return new Promise((res, rej) => {
    const child = spawn(SCRIPT, args, {
      env: {
        ...process.env,
        LOCAL_CLUSTER_DIR: dir,
        LOCAL_CLUSTER_PORT: '0',
        LIVECHAT_BIN: BIN,
        LOCAL_CLUSTER_DRAIN_DELAY: '3s',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`local-cluster.sh ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

/** A chat participant through the balancer: reconnects by itself, resumes with lastSeq, retries lost acks. */
class Participant {
  constructor(url, { role, id, conversationId }) {
    this.role = role;
    this.received = []; // every chat:message, in arrival order
    this.acked = []; // every message this participant sent and got acknowledged
    this.disconnects = [];
    this.joins = 0;
    this.conversationId = conversationId;
    this.socket = io(url, {
      path: '/socket.io/',
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      randomizationFactor: 0.2,
      // Called on every (re)connection: the resume point is the last seq received.
      auth: (cb) => cb({ role, token: id, conversationId, ...(this.received.length ? { lastSeq: this.lastSeq() } : {}) }),
    });
    this.socket.on('chat:message', (m) => this.received.push(m));
    this.socket.on('system:event', (e) => {
      if (e?.participant && e?.conversation) this.joins++;
    });
    this.socket.on('disconnect', (reason) => this.disconnects.push(reason));
  }

  lastSeq() {
    return this.received.length ? this.received[this.received.length - 1].seq : 0;
  }

  async until(pred, what) {
    const end = Date.now() + WAIT_MS;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`${this.role}: ${what} not within ${WAIT_MS} ms (last seq ${this.lastSeq()}, disconnects ${JSON.stringify(this.disconnects)})`);
      await pause(10);
    }
  }

  /** Sends until acknowledged as stored, the same clientMessageId every time. */
  async send(content) {
    const clientMessageId = uid(`cmid-${this.role}`);
    for (let attempt = 1; ; attempt++) {
      if (!this.socket.connected) await this.until(() => this.socket.connected, 'a connection');
      try {
        const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('chat:message', { conversationId: this.conversationId, content, clientMessageId });
        if (ack && ack.seq) {
          this.acked.push(ack);
          return ack;
        }
        // A refusal (e.g. `unavailable` while a node drains): try again shortly.
        if (attempt > 200) throw new Error(`${this.role}: "${content}" refused 200 times: ${JSON.stringify(ack)}`);
      } catch (err) {
        if (attempt > 200) throw err;
      }
      await pause(20);
    }
  }

  close() {
    this.socket.close();
  }
}

describe('rolling restart through HAProxy (deploy/local-cluster.sh)', { skip: SKIP }, () => {
  it('3 nodes restarted one by one under chat traffic: every acknowledged message reaches both sides exactly once, in seq order', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'livechat-rolling-'));
    // The throwaway PostgreSQL runs as user postgres, which must reach its data dir inside.
    chmodSync(dir, 0o755);
    let started = false;
    const people = [];
    try {
      // (Set first: a start that fails half-way has still started something to stop.)
      started = true;
      let up;
      try {
        up = await cluster(dir, 'start', '3');
      } catch (err) {
        // One more try from a clean state: a throwaway server of the cluster (the broker, most
        // often) can lose a race for its port on a busy machine; a second failure is real.
        t.diagnostic(`first start failed, retrying: ${err.message.split('\n').slice(-3).join(' | ')}`);
        await cluster(dir, 'stop').catch(() => {});
        up = await cluster(dir, 'start', '3');
      }
      t.diagnostic(up.trim().split('\n').pop());
      const lb = `http://127.0.0.1:${readFileSync(join(dir, 'ports', 'lb'), 'utf8').trim()}`;
      const api = new Api(lb);
      const customerId = uid('cust');
      const agentId = uid('agent');
      const conv = await api.queuedConversation({ customerId, name: 'Rolling Customer' });
      await api.accept(conv.id, agentId, 'Rolling Agent');
      const customer = new Participant(lb, { role: 'customer', id: customerId, conversationId: conv.id });
      const agent = new Participant(lb, { role: 'agent', id: agentId, conversationId: conv.id });
      people.push(customer, agent);
      await Promise.all([customer.until(() => customer.joins > 0, 'the join'), agent.until(() => agent.joins > 0, 'the join')]);

      // Both write steadily until told to stop.
      let stop = false;
      const stream = (p) =>
        (async () => {
          for (let k = 1; !stop; k++) {
            await p.send(`${p.role} ${k}`);
            await pause(40);
          }
        })();
      const streams = [stream(customer), stream(agent)];

      for (const i of [1, 2, 3]) {
        const before = customer.acked.length + agent.acked.length;
        const out = await cluster(dir, 'restart-node', String(i));
        t.diagnostic(out.trim().split('\n').filter((l) => /exited|rotation/.test(l)).join(' | '));
        // Traffic went on through the restart.
        await customer.until(() => customer.acked.length + agent.acked.length > before + 10, `traffic after restarting node ${i}`);
      }
      stop = true;
      await Promise.all(streams);
      const last = await agent.send('final');
      const n = last.seq;
      await Promise.all([customer.until(() => customer.lastSeq() >= n, `seq ${n}`), agent.until(() => agent.lastSeq() >= n, `seq ${n}`)]);

      // Each side: 1..n exactly once, in order, across all its reconnections.
      for (const p of people) {
        assertContiguous(p.received, 1, `chat:message received by the ${p.role}`);
        assert.equal(p.received.length, n, `the ${p.role} received every message once`);
      }
      const reconnections = people.map((p) => `${p.role}: ${p.disconnects.length} disconnects (${[...new Set(p.disconnects)].join(', ')}), ${p.joins} joins`);
      t.diagnostic(`${n} messages; ${reconnections.join('; ')}`);
      assert.ok(customer.disconnects.length + agent.disconnects.length >= 1, 'the restarts moved at least one socket');
      for (const p of people) {
        for (const reason of p.disconnects) assert.notEqual(reason, 'io server disconnect', 'a drain never tells a client to stay away');
      }

      // Stored: what both saw; every acknowledged message once, as acknowledged.
      const history = [];
      for (;;) {
        const page = await api.messages(conv.id, { after: history.length ? history[history.length - 1].seq : 0, limit: 500 });
        history.push(...page);
        if (page.length < 500) break;
      }
      assert.deepEqual(history.map((m) => m.id), customer.received.map((m) => m.id), 'the customer saw exactly the stored messages');
      assert.deepEqual(history.map((m) => m.id), agent.received.map((m) => m.id), 'the agent saw exactly the stored messages');
      const bySeq = new Map(history.map((m) => [m.seq, m]));
      const acked = [...customer.acked, ...agent.acked];
      for (const a of acked) assert.equal(bySeq.get(a.seq)?.id, a.id, `acknowledged seq ${a.seq} is stored as acknowledged`);
      assert.equal(new Set(acked.map((a) => a.seq)).size, acked.length, 'no message was stored twice');

      // What the nodes' /metrics say after the run (kept as a test artifact).
      mkdirSync(ARTIFACTS, { recursive: true });
      for (const i of [1, 2, 3]) {
        const port = readFileSync(join(dir, 'ports', `node-${i}`), 'utf8').trim();
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const file = join(ARTIFACTS, `metrics-node-${i}.txt`);
        writeFileSync(file, text);
        t.diagnostic(`node ${i} /metrics -> ${file}`);
      }
    } catch (err) {
      // What the nodes said, for whoever reads the failure (the state dir is removed below).
      for (const i of [1, 2, 3]) {
        try {
          const log = readFileSync(join(dir, `node-${i}`, 'node.log'), 'utf8');
          err.message += `\n--- node ${i} log (tail) ---\n${log.split('\n').slice(-15).join('\n')}`;
        } catch {
          // (that node never started)
        }
      }
      throw err;
    } finally {
      for (const p of people) p.close();
      if (started) await cluster(dir, 'stop').catch((e) => t.diagnostic(`stop: ${e.message}`));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
