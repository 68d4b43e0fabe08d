// Security through the real binary, in both modes: every kind of bad token (REST 401 with
// `{code: "unauthorized"}`, socket `system:error` then disconnect), every cross-conversation
// and cross-agent attempt (403 `forbidden`, nothing changed), the agent queue without the
// role, tokens from a JWKS file, anonymous customers, a socket whose token expires, and the
// start-up rules of `chat.security.mode`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  EXECUTOR_COUNTS,
  TEST_JWT_SECRET,
  assertAckError,
  assertError,
  signJwt,
  toToml,
  uid,
  useChatClients,
  useChatServer,
  withChatServer,
} from '../lib/chat.mjs';

const TESTDATA = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'gateway', 'src', 'chat', 'auth', 'testdata');
const ISS = 'https://auth.test';
const AUD = 'livechat';
const now = () => Math.floor(Date.now() / 1000);

/** A valid token of this file's servers (issuer and audience checked). */
const jwt = (sub, role = 'customer', extra = {}) => signJwt({ sub, role, iss: ISS, aud: AUD, exp: now() + 600, ...extra });
const bearer = (token) => ({ authorization: `Bearer ${token}` });

const JWT_SERVER = {
  'chat.security': { mode: 'jwt', 'anonymous-customers': true },
  'chat.security.jwt': { secret: TEST_JWT_SECRET, issuer: ISS, audience: AUD, leeway: '0s' },
};

/** Every kind of token that must not verify, with a name. */
function badTokens(sub = uid('cust')) {
  const claims = { sub, role: 'customer', iss: ISS, aud: AUD, exp: now() + 600 };
  const good = signJwt(claims);
  const [h, , sig] = good.split('.');
  const admin = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
  return {
    expired: signJwt({ ...claims, exp: now() - 3600 }),
    'not yet valid': signJwt({ ...claims, nbf: now() + 3600 }),
    'wrong issuer': signJwt({ ...claims, iss: 'https://evil.test' }),
    'wrong audience': signJwt({ ...claims, aud: 'other' }),
    'no exp': signJwt({ sub, role: 'customer', iss: ISS, aud: AUD }),
    'bad signature': signJwt(claims, { secret: 'another-secret-another-secret-xx' }),
    'tampered payload': `${h}.${admin}.${sig}`,
    'alg none': signJwt(claims, { alg: 'none' }),
    'RS256 against an HS256 key': signJwt(claims, { alg: 'RS256', key: readFileSync(resolve(TESTDATA, 'rsa-private.pem')) }),
    garbage: 'not-a-token',
  };
}

/** Connects `c`; expects `system:error {code}` then a disconnect, and no join. */
async function assertRefused(c, code) {
  const err = c.errors.until((e) => e.length > 0, { description: 'system:error' });
  const gone = c.disconnects.until((d) => d.length > 0, { description: 'the disconnect after system:error' });
  await c.connect();
  const [payload] = await err;
  await gone;
  assert.equal(payload?.code, code, `${c.label}: system:error ${JSON.stringify(payload)}`);
  assert.ok(!c.events.items.some((e) => e?.participant && e?.conversation), `${c.label}: no join event`);
}

for (const executors of EXECUTOR_COUNTS) {
  describe(`security, jwt mode (--executors ${executors})`, () => {
    const server = useChatServer({ executors, config: JWT_SERVER });
    const clients = useChatClients();
    const api = () => server.api;

    /** A conversation of a fresh customer, queued and accepted by a fresh agent. */
    async function assigned() {
      const customer = uid('cust');
      const agent = uid('agent');
      const start = await api().request('POST', '/api/conversations', { body: { channel: 'web' }, headers: bearer(jwt(customer)) });
      assert.equal(start.status, 200, start.text);
      const id = start.body.id;
      const q = await api().request('POST', `/api/conversations/${id}/queue`, { body: {}, headers: bearer(jwt(customer)) });
      assert.equal(q.status, 200, q.text);
      const a = await api().request('POST', `/api/agent/conversations/${id}/accept`, { body: { displayName: 'Ann' }, headers: bearer(jwt(agent, 'agent')) });
      assert.equal(a.status, 200, a.text);
      return { id, customer, agent };
    }

    const messagesOf = async (id, token) => {
      const r = await api().request('GET', `/api/conversations/${id}/messages`, { headers: bearer(token) });
      assert.equal(r.status, 200, r.text);
      return r.body;
    };

    it('REST: every bad token kind is 401 unauthorized (with WWW-Authenticate) and changes nothing', async () => {
      const { id, customer } = await assigned();
      for (const [kind, token] of Object.entries(badTokens(customer))) {
        for (const [method, path, body] of [
          ['POST', '/api/conversations', { channel: 'web' }],
          ['GET', `/api/conversations/${id}`],
          ['POST', `/api/conversations/${id}/messages`, { content: 'x' }],
          ['DELETE', `/api/conversations/${id}`],
        ]) {
          const r = await api().request(method, path, { body, headers: bearer(token) });
          assertError(r, 401, `${method} ${path} with a token that is ${kind}`);
          assert.equal(r.body.code, 'unauthorized');
          assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
        }
      }
      // No token at all on an existing conversation.
      assertError(await api().request('GET', `/api/conversations/${id}/messages`), 401, 'no token');
      // Nothing happened: still ASSIGNED, no message.
      const meta = await api().request('GET', `/api/conversations/${id}`, { headers: bearer(jwt(customer)) });
      assert.equal(meta.body.status, 'ASSIGNED');
      assert.deepEqual(await messagesOf(id, jwt(customer)), []);
    });

    it('socket: every bad token kind gets system:error unauthorized, then a disconnect', async () => {
      const { id, customer } = await assigned();
      for (const [kind, token] of Object.entries(badTokens(customer))) {
        for (const via of ['query', 'auth']) {
          const c = clients.create(server.url, { token, conversationId: id }, { via, label: `socket with a token that is ${kind} (${via})` });
          await assertRefused(c, 'unauthorized');
        }
      }
      // An agent without any token.
      await assertRefused(clients.create(server.url, { role: 'agent', scope: 'queue' }), 'unauthorized');
    });

    it('customers: another customer\'s conversation is 403 on every route and every socket action', async () => {
      const { id, customer } = await assigned();
      const other = jwt(uid('cust'));
      for (const [method, path, body] of [
        ['GET', `/api/conversations/${id}`],
        ['GET', `/api/conversations/${id}/messages`],
        ['POST', `/api/conversations/${id}/messages`, { content: 'intruding' }],
        ['POST', `/api/conversations/${id}/queue`, {}],
        ['DELETE', `/api/conversations/${id}`],
        // Posing as the agent does not help.
        ['POST', `/api/conversations/${id}/messages`, { content: 'intruding', senderType: 'AGENT' }],
      ]) {
        const r = await api().request(method, path, { body, headers: bearer(other) });
        assertError(r, 403, `${method} ${path} by another customer`);
        assert.equal(r.body.code, 'forbidden');
      }
      await assertRefused(clients.create(server.url, { token: other, conversationId: id }), 'forbidden');
      // A socket of the other customer's own conversation cannot post into this one.
      const mine = await clients.customer(server.url, { token: other });
      assertAckError(await mine.send(id, 'cross-posting'), 403, 'chat:message into another conversation');
      // A token naming the conversation grants it (as its customer).
      const invited = jwt(uid('guest'), 'customer', { conversations: [id] });
      const guest = await clients.customer(server.url, { token: invited, conversationId: id });
      assert.equal(guest.joined.participant.id, customer, 'the invited guest acts as the conversation\'s customer');
      const sent = await guest.sendOk(id, 'hello from the invited guest');
      assert.equal(sent.sender.id, customer);
      // Nothing else was stored; the conversation is still ASSIGNED.
      const msgs = await messagesOf(id, jwt(customer));
      assert.deepEqual(msgs.map((m) => m.content), ['hello from the invited guest']);
    });

    it('agents: only what is assigned to them; the queue needs the agent role; admins observe', async () => {
      const { id, customer, agent } = await assigned();
      const other = jwt(uid('agent'), 'agent');
      for (const [method, path, body] of [
        ['GET', `/api/agent/conversations/${id}/messages`],
        ['GET', `/api/conversations/${id}`],
        ['POST', `/api/agent/conversations/${id}/close`, {}],
        ['POST', `/api/conversations/${id}/messages`, { content: 'not mine', senderType: 'AGENT' }],
        ['POST', `/api/conversations/${id}/queue`, {}],
      ]) {
        assertError(await api().request(method, path, { body, headers: bearer(other) }), 403, `${method} ${path} by another agent`);
      }
      assertError(
        await api().request('GET', '/api/agent/conversations', { headers: { ...bearer(other), 'X-Agent-Id': agent } }),
        403,
        'another agent\'s list',
      );
      // A body naming someone other than the token's subject.
      const q = await api().request('POST', '/api/conversations', { body: { channel: 'web' }, headers: bearer(jwt(uid('cust'))) });
      assertError(
        await api().request('POST', `/api/agent/conversations/${q.body.id}/accept`, { body: { agentId: agent }, headers: bearer(other) }),
        403,
        'accept naming another agent',
      );
      await assertRefused(clients.create(server.url, { role: 'agent', token: other, conversationId: id }), 'forbidden');
      // Customers: no queue, no accept.
      const cust = jwt(customer);
      assertError(await api().request('GET', '/api/agent/queue', { headers: bearer(cust) }), 403, 'queue read by a customer');
      assertError(await api().request('POST', `/api/agent/conversations/${q.body.id}/accept`, { body: {}, headers: bearer(cust) }), 403, 'accept by a customer');
      await assertRefused(clients.create(server.url, { token: cust, scope: 'queue' }), 'forbidden');
      // The assigned agent's socket works; the admin observes but cannot post.
      const mine = await clients.agent(server.url, { token: jwt(agent, 'agent'), conversationId: id });
      await mine.sendOk(id, 'from the agent');
      const boss = jwt(uid('admin'), 'admin');
      const read = await api().request('GET', `/api/agent/conversations/${id}/messages`, { headers: bearer(boss) });
      assert.equal(read.status, 200, read.text);
      assert.deepEqual(read.body.map((m) => m.content), ['from the agent']);
      const list = await api().request('GET', '/api/agent/conversations', { headers: { ...bearer(boss), 'X-Agent-Id': agent } });
      assert.deepEqual(list.body.map((c) => c.id), [id]);
      const observer = await clients.agent(server.url, { token: boss, conversationId: id });
      assertAckError(await observer.send(id, 'admin says'), 403, 'admin post where not assigned');
      // Re-queued by the customer: the agent loses the conversation at once.
      const rq = await api().request('POST', `/api/conversations/${id}/queue`, { body: {}, headers: bearer(cust) });
      assert.equal(rq.status, 200, rq.text);
      assertAckError(await mine.send(id, 'after the re-queue'), 403, 'agent post after re-queue');
      assert.deepEqual((await messagesOf(id, cust)).filter((m) => m.type !== 'SYSTEM').map((m) => m.content), ['from the agent']);
    });

    it('anonymous customers get an id and a token; reconnecting with it rejoins their conversation', async () => {
      const c = clients.create(server.url, { displayName: 'Zoe' });
      const issued = new Promise((res) => c.socket.once('auth:token', res));
      const joined = await c.join();
      const { participantId, token } = await issued;
      assert.equal(joined.participant.id, participantId);
      const back = await clients.customer(server.url, { token, conversationId: joined.conversation.id });
      assert.equal(back.joined.participant.id, participantId);
      // Someone else's server-issued token does not open it.
      const other = clients.create(server.url, {});
      const otherToken = new Promise((res) => other.socket.once('auth:token', res));
      await other.join();
      const stranger = (await otherToken).token;
      await assertRefused(clients.create(server.url, { token: stranger, conversationId: joined.conversation.id }), 'forbidden');
    });

    it('a socket whose token expires is told on its next message and disconnected', async () => {
      const customer = uid('cust');
      const start = await api().request('POST', '/api/conversations', { body: { channel: 'web' }, headers: bearer(jwt(customer)) });
      // Valid for one more second (leeway 0 on this server).
      const short = jwt(customer, 'customer', { exp: now() + 1 });
      const c = await clients.customer(server.url, { token: short, conversationId: start.body.id });
      const errored = c.errors.until((e) => e.length > 0, { description: 'system:error after expiry', timeoutMs: 15_000 });
      // Keep talking (paced; the token's clock is the server's) until the server says the
      // token expired: every message before that is stored, the one after is refused.
      let ack;
      for (let i = 0; i < 50; i++) {
        ack = await c.send(start.body.id, `tick ${i}`);
        if (ack?.code === 'unauthorized') break;
        assert.equal(ack?.content, `tick ${i}`, `stored while valid: ${JSON.stringify(ack)}`);
        await new Promise((res) => setTimeout(res, 200));
      }
      assert.equal(ack?.code, 'unauthorized', `ack after expiry: ${JSON.stringify(ack)}`);
      const [payload] = await errored;
      assert.equal(payload.code, 'unauthorized');
      await c.disconnects.until((d) => d.length > 0, { description: 'the disconnect after expiry' });
    });

    it('tokens from a JWKS file: RS256 and ES256 picked by kid', async () => {
      // A server of its own, configured with the JWKS only.
      await withChatServer(
        { executors, config: { 'chat.security': { mode: 'jwt' }, 'chat.security.jwt': { 'jwks-file': resolve(TESTDATA, 'jwks.json') } } },
        async ({ api: a }) => {
          const claims = { sub: uid('cust'), exp: now() + 60 };
          const rs = signJwt(claims, { alg: 'RS256', kid: 'rsa-1', key: readFileSync(resolve(TESTDATA, 'rsa-private.pem')) });
          const es = signJwt(claims, { alg: 'ES256', kid: 'ec-1', key: readFileSync(resolve(TESTDATA, 'ec-private.pem')) });
          for (const t of [rs, es]) {
            const r = await a.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: bearer(t) });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.body.customer.id, claims.sub);
          }
          const swapped = signJwt(claims, { alg: 'RS256', kid: 'ec-1', key: readFileSync(resolve(TESTDATA, 'rsa-private.pem')) });
          assertError(await a.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: bearer(swapped) }), 401, 'RS256 under the EC key id');
          // No anonymous customers on this server.
          assertError(await a.request('POST', '/api/conversations', { body: { channel: 'web' } }), 401, 'no token');
        },
      );
    });
  });

  describe(`security, trust-headers mode (--executors ${executors})`, () => {
    const server = useChatServer({ executors, config: { 'chat.security': { mode: 'trust-headers' } } });
    const clients = useChatClients();

    it('a named caller is held to its name: cross-conversation and cross-agent attempts are 403', async () => {
      const customer = uid('cust');
      const agent = uid('agent');
      const conv = await server.api.queuedConversation({ customerId: customer });
      await server.api.accept(conv.id, agent, 'Ann');
      const other = { 'X-Participant-Id': uid('cust') };
      for (const [method, path, body] of [
        ['GET', `/api/conversations/${conv.id}`],
        ['GET', `/api/conversations/${conv.id}/messages`],
        ['POST', `/api/conversations/${conv.id}/messages`, { content: 'x' }],
        ['POST', `/api/conversations/${conv.id}/queue`, {}],
        ['DELETE', `/api/conversations/${conv.id}`],
      ]) {
        assertError(await server.api.request(method, path, { body, headers: other }), 403, `${method} ${path} as another customer`);
      }
      const otherAgent = uid('agent');
      assertError(await server.api.request('GET', `/api/agent/conversations/${conv.id}/messages`, { headers: { 'X-Agent-Id': otherAgent } }), 403, 'another agent reads');
      assertError(await server.api.request('POST', `/api/agent/conversations/${conv.id}/close`, { body: { agentId: otherAgent } }), 403, 'another agent closes');
      assertError(
        await server.api.sendRaw(conv.id, { content: 'x', senderType: 'AGENT', senderId: otherAgent }),
        403,
        'another agent sends',
      );
      await assertRefused(clients.create(server.url, { role: 'customer', token: uid('cust'), conversationId: conv.id }), 'forbidden');
      await assertRefused(clients.create(server.url, { role: 'agent', token: otherAgent, conversationId: conv.id }), 'forbidden');
      await assertRefused(clients.create(server.url, { role: 'customer', token: customer, scope: 'queue' }), 'forbidden');
      // Nothing changed; the real parties still work.
      assert.deepEqual(await server.api.messages(conv.id), []);
      const c = await clients.customer(server.url, { token: customer, conversationId: conv.id });
      await c.sendOk(conv.id, 'still mine');
    });
  });
}

/** Runs `livechat serve` with `config` and `args`; resolves with its exit code and stderr. */
function serveExit(config, args) {
  const bin = process.env.LIVECHAT_CHAT_BIN || resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'target', 'debug', 'livechat');
  const dir = mkdtempSync(join(tmpdir(), 'livechat-security-'));
  const file = join(dir, 'livechat.toml');
  writeFileSync(file, toToml(config));
  return new Promise((res) => {
    // (No drain delay: nothing here balances traffic.)
    const child = spawn(bin, ['serve', '--executors', '1', '--drain-delay', '0ms', '--config', file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_BACKTRACE: '0' },
    });
    let stderr = '';
    let listening = false;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      if (!listening && String(d).includes('listening on')) {
        listening = true;
        child.kill('SIGTERM');
      }
    });
    child.on('close', (code) => {
      rmSync(dir, { recursive: true, force: true });
      res({ code, stderr, listening });
    });
  });
}

describe('security: start-up rules of chat.security.mode', () => {
  it('trust-headers refuses a public listen address unless allow-insecure; unknown modes are errors', async () => {
    const pub = await serveExit({}, ['--listen', '0.0.0.0:0']);
    assert.notEqual(pub.code, 0);
    assert.ok(!pub.listening);
    assert.match(pub.stderr, /allow-insecure/);
    const allowed = await serveExit({ 'chat.security': { 'allow-insecure': true } }, ['--listen', '0.0.0.0:0']);
    assert.ok(allowed.listening, allowed.stderr);
    assert.match(allowed.stderr, /DEVELOPMENT MODE/);
    const unknown = await serveExit({ 'chat.security': { mode: 'open-sesame' } }, ['--listen', '127.0.0.1:0']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /open-sesame|unknown variant/);
    const jwtPublic = await serveExit({ 'chat.security.jwt': { secret: TEST_JWT_SECRET } }, ['--listen', '0.0.0.0:0']);
    assert.ok(jwtPublic.listening, jwtPublic.stderr);
    const noKey = await serveExit({ 'chat.security': { mode: 'jwt' } }, ['--listen', '127.0.0.1:0']);
    assert.notEqual(noKey.code, 0);
    assert.match(noKey.stderr, /needs a key/);
  });
});

/** A counter of the server's /metrics. */
async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^livechat_${name}_total (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

for (const executors of EXECUTOR_COUNTS) {
  describe(`limits and hostile input (--executors ${executors})`, () => {
    const server = useChatServer({
      executors,
      config: {
        'chat.security.rate': { 'events-per-second': 2, burst: 5, 'disconnect-after': 20 },
        'chat.message': { 'max-metadata-bytes': 1024 },
        'chat.limits': { 'max-json-depth': 8 },
      },
    });
    const clients = useChatClients();

    it('a socket over its event rate is refused (counted), recovers after the hinted wait, and is disconnected far over it', async () => {
      const c = await clients.customer(server.url, { token: uid('cust') });
      const id = c.joined.conversation.id;
      const before = await metric(server.url, 'chat_rate_limited');
      for (let i = 0; i < 5; i++) await c.sendOk(id, `burst ${i}`);
      const refused = await c.send(id, 'one too many');
      assertAckError(refused, 429, 'over the burst');
      assert.equal(refused.code, 'rate_limited');
      assert.ok(refused.retryAfterMs > 0, JSON.stringify(refused));
      // Unknown events cost a token too.
      const other = await c.socket.timeout(5000).emitWithAck('whatever', {});
      assert.equal(other.code, 'rate_limited');
      assert.equal(await metric(server.url, 'chat_rate_limited'), before + 2);
      // Recovers once a token is back (the server's hint, not a guess).
      await new Promise((res) => setTimeout(res, refused.retryAfterMs + 50));
      await c.sendOk(id, 'after the wait');
      // Far over: 20 refusals in a row → system:error rate_limited, then a disconnect.
      const err = c.errors.until((e) => e.length > 0, { description: 'system:error rate_limited' });
      const gone = c.disconnects.until((d) => d.length > 0, { description: 'the disconnect' });
      for (let i = 0; i < 30 && c.socket.connected; i++) c.socket.emit('chat:message', { conversationId: id, content: `flood ${i}` });
      const [payload] = await err;
      assert.equal(payload.code, 'rate_limited');
      await gone;
      assert.ok((await metric(server.url, 'chat_rate_disconnects')) >= 1);
      // What was stored: the burst and the one after the wait, nothing of the flood beyond its tokens.
      const stored = await server.api.messages(id);
      assert.deepEqual(stored.slice(0, 6).map((m) => m.content), ['burst 0', 'burst 1', 'burst 2', 'burst 3', 'burst 4', 'after the wait']);
    });

    it('hostile input: bad lastSeq, ids, deep JSON, big metadata, control characters, long names are 400s', async () => {
      const customer = uid('cust');
      const conv = await server.api.createConversation({ customerId: customer });
      for (const fields of [
        { token: customer, conversationId: conv.id, lastSeq: 'abc' },
        { token: customer, conversationId: conv.id, lastSeq: '-1' },
        { token: customer, conversationId: '../../etc/passwd' },
        { token: customer, conversationId: 'x'.repeat(65) },
      ]) {
        await assertRefused(clients.create(server.url, fields), 'bad_request');
      }
      const c = await clients.customer(server.url, { token: customer, conversationId: conv.id });
      let deep = 'x';
      for (let i = 0; i < 20; i++) deep = { deep };
      assertAckError(await c.send(conv.id, 'deep', { metadata: deep }), 400, 'metadata nested too deep');
      assertAckError(await c.send(conv.id, 'big', { metadata: { blob: 'z'.repeat(2000) } }), 400, 'metadata too big');
      assertAckError(await c.send(conv.id, 'esc \u001b[2J'), 400, 'control characters');
      await c.sendOk(conv.id, 'line one\nline\ttwo', { metadata: { small: true } });
      const h = { 'X-Participant-Id': customer };
      assertError(await server.api.request('GET', '/api/conversations/a%20b', { headers: h }), 400, 'a conversation id that is not one');
      assertError(
        await server.api.request('POST', `/api/conversations/${conv.id}/messages`, { rawBody: `{"content":"x","metadata":${'['.repeat(50)}${']'.repeat(50)}}`, headers: h }),
        400,
        'REST JSON nested too deep',
      );
      assertError(await server.api.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: { 'X-Participant-Id': 'has space' } }), 400, 'participant id with a space');
      assertError(await server.api.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: { 'X-Participant-Name': 'n'.repeat(101) } }), 400, 'display name too long');
      const err = await server.api.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: { 'X-Participant-Id': 'y'.repeat(5000) } });
      assertError(err, 400, 'participant id far too long');
      assert.ok(err.text.length < 400, `the error does not echo the value back: ${err.text.length} bytes`);
      // Only the one good message was stored.
      assert.deepEqual((await server.api.messages(conv.id)).map((m) => m.content), ['line one\nline\ttwo']);
    });
  });
}

describe('node-wide caps', () => {
  it('live conversations beyond chat.limits.max-live-conversations are 503 and counted', async () => {
    await withChatServer({ executors: 1, config: { 'chat.limits': { 'max-live-conversations': 3 } } }, async ({ url, api: a }) => {
      if (process.env.LIVECHAT_TEST_REDIS_URL) {
        // On Redis the bound is Redis's memory (maxmemory), not a node count.
        for (let i = 0; i < 4; i++) await a.createConversation({ customerId: uid('cust') });
        return;
      }
      for (let i = 0; i < 3; i++) await a.createConversation({ customerId: uid('cust') });
      const full = await a.request('POST', '/api/conversations', { body: { channel: 'web' }, headers: { 'X-Participant-Id': uid('cust') } });
      assertError(full, 503, 'a fourth live conversation');
      assert.equal(full.body.code, 'unavailable');
      assert.equal(await metric(url, 'chat_capacity_refused'), 1);
    });
  });
});
