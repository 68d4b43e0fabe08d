// GET /metrics on a 2-executor node: a full conversation (queue, two agents racing to accept,
// socket messages, close) moves the metrics as expected, summed over both executors. The
// Prometheus text format is parsed here (HELP / TYPE / samples with escaped label values), so
// the test checks the exposition, not a substring. Runs on the embedded backend, and on Redis
// with LIVECHAT_TEST_REDIS_URL (each server has a key prefix of its own, so the Redis gauges
// start from zero).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { EVENT_TIMEOUT_MS, uid, withChatServer } from '../lib/chat.mjs';

const REDIS = Boolean(process.env.LIVECHAT_TEST_REDIS_URL);
const MESSAGES = 5;
const VERSION = /^version\s*=\s*"([^"]+)"/m.exec(
  readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'Cargo.toml'), 'utf8'),
)?.[1];

/** Parses a label set body `a="x",b="y\"z"` (escapes: \\ \" \n). */
function parseLabels(body, line) {
  const labels = {};
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf('=', i);
    assert.ok(eq > i, `label name in ${line}`);
    const name = body.slice(i, eq).trim();
    assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_]*$/, `label name in ${line}`);
    assert.equal(body[eq + 1], '"', `quoted label value in ${line}`);
    let value = '';
    let j = eq + 2;
    for (; j < body.length && body[j] !== '"'; j++) {
      if (body[j] === '\\') {
        j++;
        value += body[j] === 'n' ? '\n' : body[j];
      } else value += body[j];
    }
    assert.equal(body[j], '"', `closed label value in ${line}`);
    labels[name] = value;
    i = j + 1;
    if (body[i] === ',') i++;
  }
  return labels;
}

/**
 * The Prometheus text format (0.0.4): `{ families: Map<name, {type, help}>, samples: [{name,
 * labels, value}] }`. Every sample must belong to a family declared by `# TYPE` before it.
 */
function parseExposition(text) {
  const families = new Map();
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      families.set(m[1], { ...families.get(m[1]), help: m[2] });
      continue;
    }
    if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      families.set(m[1], { ...families.get(m[1]), type: m[2] });
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment line: ${line}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed sample line: ${JSON.stringify(line)}`);
    const [, name, labelBody, raw] = m;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    assert.ok(!Number.isNaN(value) || raw === 'NaN', `sample value of ${line}`);
    const family = [name, name.replace(/_(bucket|sum|count)$/, '')].find((f) => families.get(f)?.type);
    assert.ok(family, `sample ${name} has no # TYPE before it`);
    samples.push({ name, labels: labelBody ? parseLabels(labelBody, line) : {}, value });
  }
  return { families, samples };
}

/** A parsed scrape with lookups. */
class Scrape {
  constructor(text) {
    this.text = text;
    Object.assign(this, parseExposition(text));
  }

  /** Samples of `name` whose labels include `labels`. */
  all(name, labels = {}) {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The one sample of `name` with exactly-matching `labels` (undefined if absent). */
  get(name, labels = {}) {
    const found = this.all(name, labels).filter((s) => Object.keys(s.labels).length === Object.keys(labels).length);
    assert.ok(found.length <= 1, `several samples ${name}${JSON.stringify(labels)}`);
    return found[0]?.value;
  }

  /** Like `get`, failing when absent. */
  value(name, labels = {}) {
    const v = this.get(name, labels);
    assert.notEqual(v, undefined, `no sample ${name}${JSON.stringify(labels)} in:\n${this.text}`);
    return v;
  }

  type(name) {
    return this.families.get(name)?.type;
  }
}

async function scrape(url) {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /metrics -> ${res.status}: ${text.slice(0, 300)}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return new Scrape(text);
}

/** Scrapes until `check(scrape)` passes (gauges follow steps that finish after the reply). */
async function scrapeUntil(url, check, what) {
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  for (;;) {
    const s = await scrape(url);
    try {
      check(s);
      return s;
    } catch (err) {
      if (Date.now() > deadline) {
        err.message = `${what}: ${err.message}\n--- last scrape ---\n${s.text}`;
        throw err;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const STATUSES = ['OPEN', 'QUEUED', 'ASSIGNED', 'CLOSED'];
const byStatus = (s) => Object.fromEntries(STATUSES.map((st) => [st, s.value('livechat_conversations', { status: st })]));

/** A raw socket.io-client socket on long-polling only, joined as the conversation's customer. */
function pollingCustomer(url, customerId, conversationId) {
  const socket = io(url, {
    path: '/socket.io/',
    transports: ['polling'],
    forceNew: true,
    reconnection: false,
    query: { role: 'customer', token: customerId, conversationId },
  });
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error('polling customer did not join')), EVENT_TIMEOUT_MS);
    socket.on('system:event', (e) => {
      if (e?.participant) {
        clearTimeout(timer);
        res(socket);
      }
    });
    socket.on('system:error', (e) => rej(new Error(`polling customer refused: ${JSON.stringify(e)}`)));
  });
}

describe(`GET /metrics (--executors 2, ${REDIS ? 'Redis' : 'embedded'} backend)`, () => {
  it('is the Prometheus text format with the contract names, before any traffic', () =>
    withChatServer({ executors: 2 }, async ({ url }) => {
      const s = await scrape(url);
      assert.ok(!s.text.includes('# EOF'), 'Prometheus text, not OpenMetrics');
      assert.equal(s.value('livechat_build_info', { version: VERSION }), 1);
      assert.equal(s.value('livechat_scrape_executors_missing'), 0, 'both executors answered');
      for (const e of ['0', '1']) assert.ok(s.value('livechat_executor_mailbox_depth', { executor: e }) >= 0);
      assert.equal(s.all('livechat_executor_mailbox_depth').length, 2, 'one per executor, no more');
      assert.deepEqual(byStatus(s), { OPEN: 0, QUEUED: 0, ASSIGNED: 0, CLOSED: 0 });
      assert.equal(s.value('livechat_queue_length'), 0);
      assert.equal(s.value('livechat_queue_oldest_wait_seconds'), 0);
      const types = {
        livechat_connections: 'gauge',
        livechat_sockets: 'gauge',
        livechat_rooms: 'gauge',
        livechat_conversations: 'gauge',
        livechat_queue_length: 'gauge',
        livechat_queue_oldest_wait_seconds: 'gauge',
        livechat_messages_stored_total: 'counter',
        livechat_deliveries_total: 'counter',
        livechat_acks_total: 'counter',
        livechat_accepts_total: 'counter',
        livechat_rate_limited_total: 'counter',
        livechat_backend_errors_total: 'counter',
        livechat_backend_command_duration_seconds: 'histogram',
        livechat_kafka_events_dropped_total: 'counter',
        livechat_executor_mailbox_depth: 'gauge',
        livechat_build_info: 'gauge',
        livechat_scrape_executors_missing: 'gauge',
        // Names from before this scrape summed executors: unchanged.
        livechat_mesh_full_total: 'counter',
        livechat_http_rate_limited_total: 'counter',
        livechat_chat_rate_limited_total: 'counter',
        livechat_events_dropped_total: 'counter',
      };
      if (REDIS) types.livechat_pubsub_messages_total = 'counter';
      for (const [name, type] of Object.entries(types)) assert.equal(s.type(name), type, `# TYPE of ${name}`);
      for (const outcome of ['accepted', 'conflict', 'gone', 'cap']) {
        assert.equal(s.value('livechat_accepts_total', { outcome }), 0);
      }
      for (const scope of ['http', 'socket']) assert.equal(s.value('livechat_rate_limited_total', { scope }), 0);
      assert.equal(s.value('livechat_messages_stored_total'), 0);
    }));

  it('follows a full conversation: statuses, queue, accepts, messages, deliveries, connections', () =>
    withChatServer({ executors: 2 }, async ({ url, api, clients }) => {
      const customerId = uid('cust');
      const conv = await api.createConversation({ customerId, name: 'Metered' });
      let s = await scrapeUntil(url, (s) => assert.equal(byStatus(s).OPEN, 1), 'one OPEN conversation');

      await api.queue(conv.id);
      s = await scrapeUntil(
        url,
        (s) => {
          assert.deepEqual(byStatus(s), { OPEN: 0, QUEUED: 1, ASSIGNED: 0, CLOSED: 0 });
          assert.equal(s.value('livechat_queue_length'), 1);
        },
        'queued',
      );
      assert.ok(s.value('livechat_queue_oldest_wait_seconds') >= 0);

      const customer = await clients.customer(url, { token: customerId, conversationId: conv.id });
      const [winner, loser] = [uid('agent'), uid('agent')];
      await api.accept(conv.id, winner, 'Winner');
      const second = await api.acceptRaw(conv.id, loser, 'Loser');
      assert.equal(second.status, 409, `second accept -> ${second.status}: ${second.text}`);
      await customer.waitStatus('ASSIGNED');
      const agent = await clients.agent(url, { token: winner, conversationId: conv.id });
      const poller = await pollingCustomer(url, customerId, conv.id);

      s = await scrapeUntil(
        url,
        (s) => {
          assert.deepEqual(byStatus(s), { OPEN: 0, QUEUED: 0, ASSIGNED: 1, CLOSED: 0 });
          assert.equal(s.value('livechat_queue_length'), 0);
          assert.equal(s.value('livechat_connections', { transport: 'websocket' }), 2, 'customer + agent sockets');
          assert.equal(s.value('livechat_connections', { transport: 'polling' }), 1, 'the polling customer');
        },
        'assigned, three sockets open',
      );
      assert.equal(s.value('livechat_accepts_total', { outcome: 'accepted' }), 1);
      assert.equal(s.value('livechat_accepts_total', { outcome: 'conflict' }), 1);
      assert.equal(s.value('livechat_sockets'), 3);
      assert.ok(s.value('livechat_rooms') >= 1, 'the conversation room has members');
      assert.equal(s.value('livechat_scrape_executors_missing'), 0);
      const before = {
        stored: s.value('livechat_messages_stored_total'),
        delivered: s.value('livechat_deliveries_total'),
        acks: s.value('livechat_acks_total'),
      };

      for (let i = 1; i <= MESSAGES; i++) await customer.sendOk(conv.id, `hello ${i}`);
      await agent.waitSeq(MESSAGES);
      s = await scrapeUntil(
        url,
        (s) => assert.ok(s.value('livechat_deliveries_total') - before.delivered >= 2 * MESSAGES),
        'deliveries',
      );
      assert.equal(s.value('livechat_messages_stored_total') - before.stored, MESSAGES);
      assert.ok(s.value('livechat_acks_total') - before.acks >= MESSAGES, 'every chat:message was acked');
      if (REDIS) {
        assert.ok(s.value('livechat_pubsub_messages_total', { direction: 'out' }) >= MESSAGES);
        assert.ok(s.value('livechat_pubsub_messages_total', { direction: 'in' }) >= MESSAGES);
        assert.ok(s.value('livechat_backend_command_duration_seconds_count', { backend: 'redis' }) > 0);
        const inf = s.value('livechat_backend_command_duration_seconds_bucket', { backend: 'redis', le: '+Inf' });
        assert.equal(inf, s.value('livechat_backend_command_duration_seconds_count', { backend: 'redis' }));
        assert.equal(s.value('livechat_backend_errors_total', { backend: 'redis' }), 0);
      } else {
        assert.equal(s.all('livechat_backend_command_duration_seconds_count', { backend: 'redis' }).length, 0);
      }

      await api.closeByAgent(conv.id, winner, 'Winner');
      s = await scrapeUntil(
        url,
        (s) => assert.deepEqual(byStatus(s), { OPEN: 0, QUEUED: 0, ASSIGNED: 0, CLOSED: 1 }),
        'closed',
      );
      const stored = await api.messages(conv.id);
      assert.equal(s.value('livechat_messages_stored_total'), stored.length, 'every stored message, the close message included');

      poller.disconnect();
      customer.dispose();
      agent.dispose();
      s = await scrapeUntil(
        url,
        (s) => {
          assert.equal(s.value('livechat_connections', { transport: 'websocket' }), 0);
          assert.equal(s.value('livechat_connections', { transport: 'polling' }), 0);
          assert.equal(s.value('livechat_sockets'), 0);
        },
        'every socket gone',
      );
    }));
});
