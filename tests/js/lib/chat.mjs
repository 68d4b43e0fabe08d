// Helpers for the chat contract tests (test/chat-*.test.mjs): start the
// `livechat serve` binary with a TOML config, a small REST client, chat
// socket clients that record every chat event, and contract-shape checks.
//
// Environment:
//   LIVECHAT_CHAT_BIN          path of the `livechat` binary
//                              (default: <repo>/target/debug/livechat)
//   LIVECHAT_CHAT_REF_SERVER   path to a Node script implementing the chat
//                              contract; when set, `node <script> serve <args...>`
//                              is spawned instead of the binary (used to validate
//                              the tests themselves)
//   LIVECHAT_EVENT_TIMEOUT_MS  default wait for one event (see lib/events.mjs)
//   LIVECHAT_TEST_REDIS_URL    when set, every chat server runs the Redis backend on
//                              it (each server start with a key prefix of its own, so
//                              tests never see each other's queue or conversations)
//   LIVECHAT_TEST_CHAT_DATABASE_URL
//                              when set, every chat server also keeps durable metadata in
//                              this PostgreSQL database (chat.database.url): the contract
//                              must hold unchanged with the durable write in every step
//   LIVECHAT_TEST_VERBOSE=1    forward the server's stdout/stderr to ours
//   LIVECHAT_TEST_SECURITY=jwt every chat server runs `chat.security.mode = jwt` (HS256,
//                              anonymous customers on) and the clients here present
//                              tokens for the identities the tests name: REST sends
//                              `Authorization: Bearer` for the X-Participant-Id /
//                              X-Agent-Id / agentId / senderId it would send (those still
//                              go too, and must be ignored), sockets send a token for
//                              their `token` field; a customer who names no one is the
//                              conversation's customer as learned from earlier replies
//
// Like lib/server.mjs (which starts the example binaries by name), every wait
// here is for an event or a response, bounded by a timeout; nothing sleeps.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, createSign, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before } from 'node:test';
import { io } from 'socket.io-client';
import { EVENT_TIMEOUT_MS, emitWithAck } from './events.mjs';

export { EXECUTOR_COUNTS } from './server.mjs';
export { EVENT_TIMEOUT_MS };

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEFAULT_BIN = resolve(REPO_ROOT, 'target', 'debug', 'livechat');
const STARTUP_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const STDERR_KEEP = 64 * 1024;
const LISTENING_RE = /^listening on (http:\/\/([^\s/]+):(\d+))\s*$/;

/** The whole suite in `jwt` mode (see the header). */
export const JWT_MODE = process.env.LIVECHAT_TEST_SECURITY === 'jwt';
/** The HS256 secret of `jwt`-mode test servers. */
export const TEST_JWT_SECRET = 'livechat-test-secret-0123456789abcdef';
/** The `chat.security` config of a `jwt`-mode test server. */
export const JWT_CONFIG = {
  'chat.security': { mode: 'jwt', 'anonymous-customers': true },
  'chat.security.jwt': { secret: TEST_JWT_SECRET },
};

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * A signed JWT. `alg`: HS256 (with `secret`), RS256 / ES256 (with `key`, a PEM private key),
 * or `none` (unsigned, for refusal tests).
 */
export function signJwt(claims, { alg = 'HS256', secret = TEST_JWT_SECRET, key, kid } = {}) {
  const header = { alg, typ: 'JWT', ...(kid ? { kid } : {}) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  if (alg === 'none') return `${input}.`;
  if (alg === 'HS256') return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  const signer = createSign('SHA256').update(input);
  const sig = alg === 'ES256' ? signer.sign({ key, dsaEncoding: 'ieee-p1363' }) : signer.sign(key);
  return `${input}.${b64url(sig)}`;
}

/** A valid test token for participant `id` with `role` (an hour long). */
export function tokenFor(id, role = 'customer', extra = {}) {
  return signJwt({ sub: id, role, exp: Math.floor(Date.now() / 1000) + 3600, ...extra });
}

/** Conversation id → its customer id, from every reply and join event seen (jwt mode). */
const customerOf = new Map();
/** Base URLs of the servers started with `JWT_CONFIG` by `JWT_MODE` (their clients present tokens). */
const jwtServers = new Set();

/** Records the customer of every conversation in `value` (a conversation, or an array). */
function learnCustomers(value) {
  for (const c of Array.isArray(value) ? value : [value]) {
    if (c && typeof c === 'object' && typeof c.id === 'string' && c.customer?.id) customerOf.set(c.id, c.customer.id);
  }
}

/** The identity a REST call of the tests stands for, as `[id, role]` (jwt mode), or null. */
function restIdentity(method, path, headers, body) {
  const conv = /^\/api\/(?:agent\/)?conversations\/([^/]+)/.exec(path)?.[1];
  if (path.startsWith('/api/agent/')) {
    const id = headers['X-Agent-Id'] ?? body?.agentId;
    return id ? [id, 'agent'] : null;
  }
  if (body?.senderType === 'AGENT') {
    const id = body.senderId ?? headers['X-Agent-Id'];
    return id ? [id, 'agent'] : null;
  }
  const id = headers['X-Participant-Id'] ?? (conv ? customerOf.get(conv) : undefined);
  return id ? [id, 'customer'] : null;
}

/** True when the tests run against a Node stand-in of the chat server, not the Rust binary. */
export const usingChatStub = Boolean(process.env.LIVECHAT_CHAT_REF_SERVER);

/** Longer wait for bulk traffic (hundreds of messages, bursts, housekeeping ticks). */
export const BULK_TIMEOUT_MS = Math.max(EVENT_TIMEOUT_MS * 4, 20_000);

// ---------------------------------------------------------------------------
// server process
// ---------------------------------------------------------------------------

const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Renders `{ 'chat.queue': { 'max-wait': '300ms', ... }, ... }` as TOML. */
export function toToml(config = {}) {
  let out = '';
  for (const [section, values] of Object.entries(config)) {
    out += `[${section}]\n`;
    for (const [key, value] of Object.entries(values)) {
      out += `${key} = ${typeof value === 'string' ? JSON.stringify(value) : String(value)}\n`;
    }
    out += '\n';
  }
  return out;
}

/**
 * Starts `livechat serve --listen 127.0.0.1:0 --executors N --config <tmp toml>`
 * and resolves once it prints its listening line.
 * `redisPrefix` (with LIVECHAT_TEST_REDIS_URL): the key prefix, shared by every node of one
 * cluster; `label` names the server in logs and errors (default `livechat(N)`).
 * @param {{executors: number, config?: object, extraArgs?: string[], redisPrefix?: string, label?: string}} opts
 */
export function startChatServer({ executors, config = {}, extraArgs = [], redisPrefix, label = `livechat(${executors})` }) {
  const redisUrl = process.env.LIVECHAT_TEST_REDIS_URL;
  if (redisUrl && !usingChatStub) {
    const prefix = redisPrefix || `lc-test-${randomUUID().slice(0, 12)}`;
    config = { ...config, 'chat.redis': { url: redisUrl, 'key-prefix': prefix, ...(config['chat.redis'] || {}) } };
  }
  // Servers a test configures itself keep their security settings (and their clients are not adapted).
  const adaptJwt = JWT_MODE && !usingChatStub && !config['chat.security'] && !config['chat.security.jwt'];
  if (adaptJwt) config = { ...config, ...JWT_CONFIG };
  const dbUrl = process.env.LIVECHAT_TEST_CHAT_DATABASE_URL;
  if (dbUrl && !usingChatStub) {
    config = { ...config, 'chat.database': { url: dbUrl, ...(config['chat.database'] || {}) } };
  }
  const dir = mkdtempSync(join(tmpdir(), 'livechat-chat-test-'));
  const configFile = join(dir, 'livechat.toml');
  writeFileSync(configFile, toToml(config));
  // Every client of the suite comes from one loopback address, as many users would from many:
  // the per-address connection and request limits (tested in tests/tests/http_hardening.rs)
  // are off here.
  const limitsOff = usingChatStub ? [] : ['--max-connections-per-ip', '0', '--rest-rate', '0'];
  // And no drain delay on SIGTERM (README, "Operating livechat"): no balancer watches /readyz
  // here, so waiting would only slow every test's shutdown; drain.test.mjs sets its own.
  const noDrain = usingChatStub || extraArgs.includes('--drain-delay') ? [] : ['--drain-delay', '0ms'];
  const args = ['serve', '--listen', '127.0.0.1:0', '--executors', String(executors), '--config', configFile, ...limitsOff, ...noDrain, ...extraArgs];

  let file;
  let argv;
  if (usingChatStub) {
    file = process.execPath;
    argv = [process.env.LIVECHAT_CHAT_REF_SERVER, ...args];
  } else {
    file = process.env.LIVECHAT_CHAT_BIN || DEFAULT_BIN;
    argv = args;
    if (!existsSync(file)) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`chat server binary not found: ${file}\nbuild it with \`cargo build\` or set LIVECHAT_CHAT_BIN`);
    }
  }
  const verbose = process.env.LIVECHAT_TEST_VERBOSE === '1';
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-STDERR_KEEP);
    if (verbose) process.stderr.write(`[${label}] ${chunk}`);
  });
  const exited = new Promise((res) => {
    child.once('close', (code, signal) => {
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
      res({ code, signal });
    });
  });
  const describeCmd = `${file} ${argv.join(' ')}\n--- config ---\n${toToml(config) || '(empty)'}`;

  return new Promise((resolveStart, rejectStart) => {
    let settled = false;
    const fail = (msg) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      rejectStart(new Error(`${msg}\ncommand: ${describeCmd}\n--- server stderr ---\n${stderr || '(empty)'}`));
    };
    const timer = setTimeout(
      () => fail(`server did not print "listening on http://..." within ${STARTUP_TIMEOUT_MS} ms`),
      STARTUP_TIMEOUT_MS,
    );
    child.once('error', (err) => fail(`failed to spawn server: ${err.message}`));
    exited.then(({ code, signal }) => fail(`server exited before listening (code ${code}, signal ${signal})`));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (verbose) process.stderr.write(`[${label}] ${line}\n`);
      const m = LISTENING_RE.exec(line);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      const [, url, host, port] = m;
      if (adaptJwt) jwtServers.add(url);
      resolveStart({
        url,
        host,
        port: Number(port),
        child,
        stderr: () => stderr,
        close: () => stopChatServer(child, exited, label, () => stderr),
      });
    });
  });
}

/** SIGTERM, wait for exit; throws (with stderr) if the server crashed earlier or did not exit 0. */
async function stopChatServer(child, exited, label, stderr) {
  const diedEarly = child.exitCode !== null || child.signalCode !== null;
  if (!diedEarly) child.kill('SIGTERM');
  let timer;
  const timeout = new Promise((res) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      res(null);
    }, SHUTDOWN_TIMEOUT_MS);
  });
  const result = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (result === null) {
    await exited;
    throw new Error(`${label} did not exit within ${SHUTDOWN_TIMEOUT_MS} ms of SIGTERM (killed)`);
  }
  if (diedEarly || result.code !== 0) {
    throw new Error(
      `${label} ${diedEarly ? 'exited during the tests' : 'did not exit cleanly on SIGTERM'} ` +
        `(code ${result.code}, signal ${result.signal})\n--- server stderr (tail) ---\n${stderr().slice(-4000) || '(empty)'}`,
    );
  }
  return result;
}

/**
 * Registers before/after hooks (inside a `describe`) that run one chat server
 * for the whole suite. The handle's `url` and `api` are valid inside tests.
 */
export function useChatServer(opts) {
  const handle = {
    server: null,
    api: null,
    get url() {
      return this.server.url;
    },
  };
  before(async () => {
    handle.server = await startChatServer(opts);
    handle.api = new Api(handle.server.url);
  });
  after(async () => {
    if (handle.server) await handle.server.close();
  });
  return handle;
}

/**
 * Runs `fn({url, api, server, clients})` against a fresh chat server (for tests
 * that need an empty queue or their own timeouts); always stops it and closes
 * the clients.
 */
export async function withChatServer(opts, fn) {
  const server = await startChatServer(opts);
  const clients = new ChatClients();
  let failure = null;
  try {
    await fn({ url: server.url, api: new Api(server.url), server, clients });
  } catch (err) {
    failure = err;
  }
  clients.closeAll();
  try {
    await server.close();
  } catch (err) {
    if (!failure) failure = err;
    else failure.message += `\n(and on shutdown: ${err.message})`;
  }
  if (failure) throw failure;
}

// ---------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------

/** Minimal JSON REST client. Every call resolves with `{status, headers, body, text}`. */
export class Api {
  constructor(baseUrl) {
    this.base = baseUrl;
  }

  /**
   * @param {string} method
   * @param {string} path e.g. `/api/conversations`
   * @param {{body?: any, rawBody?: string, headers?: Record<string,string>, query?: Record<string, any>}} [opts]
   */
  async request(method, path, { body, rawBody, headers = {}, query } = {}) {
    let url = this.base + path;
    if (query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        for (const item of Array.isArray(v) ? v : [v]) if (item !== undefined) qs.append(k, String(item));
      }
      const s = qs.toString();
      if (s) url += `?${s}`;
    }
    const init = { method, headers: { ...headers } };
    const adapt = jwtServers.has(this.base);
    if (adapt && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
      const who = restIdentity(method, path, headers, body);
      if (who) init.headers.authorization = `Bearer ${tokenFor(...who)}`;
    }
    if (rawBody !== undefined) {
      init.body = rawBody;
      init.headers['content-type'] ??= 'application/json';
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url, init);
    const text = await res.text();
    let parsed = text;
    if (text.length) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    } else {
      parsed = null;
    }
    if (adapt && res.ok) learnCustomers(parsed);
    return { status: res.status, headers: res.headers, body: parsed, text, what: `${method} ${url}` };
  }

  get(path, opts) {
    return this.request('GET', path, opts);
  }

  post(path, body, opts = {}) {
    return this.request('POST', path, { ...opts, body });
  }

  /** Like `request` but asserts `expected` status; returns the body. */
  async expect(expected, method, path, opts) {
    const res = await this.request(method, path, opts);
    assert.equal(res.status, expected, `${res.what} -> ${res.status} (expected ${expected}): ${res.text.slice(0, 500)}`);
    return res.body;
  }

  // --- customer side -------------------------------------------------------

  /**
   * POST /api/conversations. `customerId` -> X-Participant-Id, `name` -> X-Participant-Name.
   * Returns ConversationMetadata (asserts 200).
   */
  createConversation({ customerId, name, channel = 'web', attributes = {}, headers = {} } = {}) {
    const h = { ...headers };
    if (customerId !== undefined) h['X-Participant-Id'] = customerId;
    if (name !== undefined) h['X-Participant-Name'] = name;
    return this.expect(200, 'POST', '/api/conversations', { body: { channel, ...attributes }, headers: h });
  }

  /** POST /api/conversations/{id}/queue -> `{position, estimatedWait}` (asserts 200). */
  queue(id, body = { channel: 'web' }) {
    return this.expect(200, 'POST', `/api/conversations/${id}/queue`, { body });
  }

  /** GET /api/conversations/{id} -> ConversationMetadata (asserts 200). */
  conversation(id) {
    return this.expect(200, 'GET', `/api/conversations/${id}`);
  }

  /** POST /api/conversations/{id}/messages -> the raw response (status not asserted). */
  sendRaw(id, message) {
    return this.request('POST', `/api/conversations/${id}/messages`, { body: message });
  }

  /** POST /api/conversations/{id}/messages -> ChatMessage (asserts 200). */
  send(id, message) {
    return this.expect(200, 'POST', `/api/conversations/${id}/messages`, { body: message });
  }

  /** GET /api/conversations/{id}/messages -> [ChatMessage] (asserts 200 and an array). */
  async messages(id, query) {
    const body = await this.expect(200, 'GET', `/api/conversations/${id}/messages`, { query });
    assert.ok(Array.isArray(body), `messages of ${id} must be a JSON array, got ${JSON.stringify(body).slice(0, 300)}`);
    return body;
  }

  /** DELETE /api/conversations/{id} as `customerId` -> ConversationMetadata (asserts 200). */
  closeByCustomer(id, customerId, name) {
    const headers = { 'X-Participant-Id': customerId };
    if (name !== undefined) headers['X-Participant-Name'] = name;
    return this.expect(200, 'DELETE', `/api/conversations/${id}`, { headers });
  }

  // --- agent side ----------------------------------------------------------

  /** GET /api/agent/queue -> [QueueEntry] (asserts 200 and an array). */
  async agentQueue(query = { page: 0, size: 50 }, agentId = 'queue-reader') {
    const body = await this.expect(200, 'GET', '/api/agent/queue', { query, headers: { 'X-Agent-Id': agentId } });
    assert.ok(Array.isArray(body), `agent queue must be a JSON array, got ${JSON.stringify(body).slice(0, 300)}`);
    return body;
  }

  /** POST /api/agent/conversations/{id}/accept -> raw response. */
  acceptRaw(id, agentId, displayName, extra = {}) {
    const body = { ...extra };
    if (agentId !== undefined) body.agentId = agentId;
    if (displayName !== undefined) body.displayName = displayName;
    return this.request('POST', `/api/agent/conversations/${id}/accept`, { body });
  }

  /** Accept, asserting 200 -> ConversationMetadata. */
  async accept(id, agentId, displayName) {
    const res = await this.acceptRaw(id, agentId, displayName);
    assert.equal(res.status, 200, `accept ${id} by ${agentId} -> ${res.status}: ${res.text.slice(0, 500)}`);
    return res.body;
  }

  /** POST /api/agent/conversations/{id}/close -> ConversationMetadata (asserts 200). */
  closeByAgent(id, agentId, displayName, reason) {
    const body = {};
    if (agentId !== undefined) body.agentId = agentId;
    if (displayName !== undefined) body.displayName = displayName;
    if (reason !== undefined) body.reason = reason;
    return this.expect(200, 'POST', `/api/agent/conversations/${id}/close`, { body });
  }

  /** GET /api/agent/conversations/{id}/messages as `agentId` -> [ChatMessage] (asserts 200). */
  async agentMessages(id, agentId, query) {
    const body = await this.expect(200, 'GET', `/api/agent/conversations/${id}/messages`, {
      query,
      headers: { 'X-Agent-Id': agentId },
    });
    assert.ok(Array.isArray(body), `agent messages of ${id} must be a JSON array, got ${JSON.stringify(body).slice(0, 300)}`);
    return body;
  }

  /** GET /api/agent/conversations?status=... as `agentId` -> [ConversationMetadata]. */
  async agentConversations(agentId, statuses = []) {
    const body = await this.expect(200, 'GET', '/api/agent/conversations', {
      query: { status: statuses },
      headers: { 'X-Agent-Id': agentId },
    });
    assert.ok(Array.isArray(body), `agent conversations must be a JSON array, got ${JSON.stringify(body).slice(0, 300)}`);
    return body;
  }

  /** Creates a conversation for a fresh customer and queues it; returns its metadata (QUEUED). */
  async queuedConversation({ customerId = `cust-${randomUUID()}`, name = 'Queued Customer', channel = 'web', attributes } = {}) {
    const conv = await this.createConversation({ customerId, name, channel, attributes });
    await this.queue(conv.id, { channel });
    return { ...conv, status: 'QUEUED', customerId, name };
  }
}

// ---------------------------------------------------------------------------
// contract shapes
// ---------------------------------------------------------------------------

export const ISO_MILLIS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** ISO-8601 duration such as PT2M, PT0S, PT1M30S, P1DT2H. */
export const ISO_DURATION_RE = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;

export function assertIsoMillis(value, what) {
  assert.ok(typeof value === 'string' && ISO_MILLIS_RE.test(value), `${what} must be ISO-8601 UTC with milliseconds, got ${JSON.stringify(value)}`);
}

const absent = (v) => v === undefined || v === null;

/** Checks the REST error body `{timestamp, error, code}` of `res` and its status. */
export function assertError(res, status, what = res.what) {
  assert.equal(res.status, status, `${what} -> ${res.status} (expected ${status}): ${String(res.text).slice(0, 500)}`);
  const ct = res.headers.get('content-type') || '';
  assert.match(ct, /application\/json/, `${what}: error content-type must be JSON, got ${JSON.stringify(ct)}`);
  const b = res.body;
  assert.ok(b && typeof b === 'object' && !Array.isArray(b), `${what}: error body must be a JSON object, got ${res.text}`);
  assertIsoMillis(b.timestamp, `${what}: error.timestamp`);
  assert.ok(typeof b.error === 'string' && b.error.length > 0, `${what}: error.error must be a non-empty string, got ${res.text}`);
  assertErrorCode(b.code, status, what);
}

/** `code` is a non-empty string, or a number equal to the HTTP status. */
export function assertErrorCode(code, status, what) {
  if (typeof code === 'number') assert.equal(code, status, `${what}: numeric error code must equal the status`);
  else assert.ok(typeof code === 'string' && code.length > 0, `${what}: error.code must be a non-empty string or the status, got ${JSON.stringify(code)}`);
}

/** Socket ack error `{error, code}`. */
export function assertAckError(ack, status, what) {
  assert.ok(ack && typeof ack === 'object', `${what}: ack must be an object, got ${JSON.stringify(ack)}`);
  assert.ok(typeof ack.error === 'string' && ack.error.length > 0, `${what}: ack must carry {error, code}, got ${JSON.stringify(ack)}`);
  assert.ok(absent(ack.seq) && absent(ack.id), `${what}: an error ack must not look like a stored message: ${JSON.stringify(ack)}`);
  assertErrorCode(ack.code, status, `${what} (ack)`);
}

const STATUSES = ['OPEN', 'QUEUED', 'ASSIGNED', 'CLOSED'];

/** Checks a ConversationMetadata; `expect` holds fields that must be equal. */
export function assertConversation(c, expect = {}, what = 'conversation') {
  assert.ok(c && typeof c === 'object', `${what} must be an object, got ${JSON.stringify(c)}`);
  assert.ok(typeof c.id === 'string' && c.id.length > 0, `${what}.id must be a non-empty string: ${JSON.stringify(c)}`);
  assert.ok(STATUSES.includes(c.status), `${what}.status ${JSON.stringify(c.status)} not one of ${STATUSES}`);
  assertIsoMillis(c.createdAt, `${what}.createdAt`);
  assertIsoMillis(c.updatedAt, `${what}.updatedAt`);
  assert.ok(c.customer && typeof c.customer === 'object', `${what}.customer must be a participant: ${JSON.stringify(c)}`);
  assert.equal(c.customer.type, 'CUSTOMER', `${what}.customer.type`);
  assert.ok(Number.isInteger(c.version), `${what}.version must be an integer, got ${JSON.stringify(c.version)}`);
  if (c.status === 'ASSIGNED') {
    assert.ok(c.agent && c.agent.type === 'AGENT', `${what}.agent must be an AGENT participant when ASSIGNED: ${JSON.stringify(c)}`);
    assertIsoMillis(c.acceptedAt, `${what}.acceptedAt`);
  }
  if (c.status === 'CLOSED') assertIsoMillis(c.closedAt, `${what}.closedAt`);
  else assert.ok(absent(c.closedAt), `${what}.closedAt must be empty while ${c.status}: ${JSON.stringify(c.closedAt)}`);
  if (c.status === 'OPEN' || c.status === 'QUEUED') {
    assert.ok(absent(c.agent), `${what}.agent must be empty while ${c.status}: ${JSON.stringify(c.agent)}`);
  }
  for (const [k, v] of Object.entries(expect)) {
    if (k === 'customer' || k === 'agent') {
      for (const [pk, pv] of Object.entries(v)) assert.equal(c[k]?.[pk], pv, `${what}.${k}.${pk}`);
    } else {
      assert.deepEqual(c[k], v, `${what}.${k}`);
    }
  }
  return c;
}

const MESSAGE_TYPES = ['TEXT', 'SYSTEM', 'EVENT'];

/** Checks a ChatMessage; `expect` holds fields that must be equal (`sender` compared per field). */
export function assertMessage(m, expect = {}, what = 'message') {
  assert.ok(m && typeof m === 'object', `${what} must be an object, got ${JSON.stringify(m)}`);
  assert.ok(typeof m.id === 'string' && m.id.length > 0, `${what}.id must be a non-empty string: ${JSON.stringify(m)}`);
  assert.ok(typeof m.conversationId === 'string', `${what}.conversationId: ${JSON.stringify(m)}`);
  assert.ok(Number.isInteger(m.seq) && m.seq >= 1, `${what}.seq must be an integer >= 1: ${JSON.stringify(m)}`);
  assert.ok(MESSAGE_TYPES.includes(m.type), `${what}.type ${JSON.stringify(m.type)} not one of ${MESSAGE_TYPES}`);
  assert.ok(m.sender && typeof m.sender === 'object', `${what}.sender must be a participant: ${JSON.stringify(m)}`);
  assert.ok(typeof m.content === 'string', `${what}.content must be a string: ${JSON.stringify(m)}`);
  assertIsoMillis(m.timestamp, `${what}.timestamp`);
  for (const [k, v] of Object.entries(expect)) {
    if (k === 'sender' || k === 'metadata') {
      for (const [pk, pv] of Object.entries(v)) assert.deepEqual(m[k]?.[pk], pv, `${what}.${k}.${pk} (${JSON.stringify(m[k])})`);
    } else {
      assert.deepEqual(m[k], v, `${what}.${k}`);
    }
  }
  return m;
}

export const SYSTEM_SENDER = { id: 'system', type: 'SYSTEM', displayName: 'System' };

/** Checks the SYSTEM message appended by a close. */
export function assertCloseMessage(m, { conversationId, byType, byName }, what = 'close message') {
  assertMessage(m, { conversationId, type: 'SYSTEM', sender: SYSTEM_SENDER }, what);
  assert.deepEqual(
    { event: m.metadata?.event, closedByType: m.metadata?.closedByType, closedByDisplayName: m.metadata?.closedByDisplayName },
    { event: 'CHAT_CLOSED', closedByType: byType, closedByDisplayName: byName },
    `${what}.metadata: ${JSON.stringify(m.metadata)}`,
  );
  assert.ok(m.content.includes(byName), `${what}.content should name who closed (${byName}): ${JSON.stringify(m.content)}`);
}

/** Asserts that `messages` have seqs exactly `from, from+1, ...` (no gap, no duplicate, in order). */
export function assertContiguous(messages, from = 1, what = 'messages') {
  const seqs = messages.map((m) => m.seq);
  const expected = seqs.map((_, i) => from + i);
  if (JSON.stringify(seqs) !== JSON.stringify(expected)) {
    // Report the first discrepancy rather than two huge arrays.
    const i = seqs.findIndex((s, k) => s !== expected[k]);
    const max = Math.max(from - 1, ...seqs);
    const have = new Set(seqs);
    const missing = [];
    for (let k = from; k <= max; k++) if (!have.has(k)) missing.push(k);
    const dups = [...new Set(seqs.filter((s, k) => seqs.indexOf(s) !== k))];
    const disorder = seqs.filter((s, k) => k > 0 && s < seqs[k - 1]);
    assert.fail(
      `${what}: seqs must be ${from}, ${from + 1}, ... in order without gap or duplicate; ` +
        `first mismatch at index ${i}: got ${seqs[i]} (expected ${expected[i]}); around: ${JSON.stringify(seqs.slice(Math.max(0, i - 5), i + 5))}; ` +
        `missing: ${JSON.stringify(missing.slice(0, 20))}, duplicated: ${JSON.stringify(dups.slice(0, 20))}, ` +
        `arrived after a larger seq: ${JSON.stringify(disorder.slice(0, 20))}`,
    );
  }
}

// ---------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------

/**
 * Records every occurrence of an event (first argument only) and lets tests
 * await a predicate over the whole list, re-evaluated on every new event.
 */
export class EventLog {
  constructor(emitter, event, what) {
    this.event = event;
    this.what = what;
    /** @type {any[]} */
    this.items = [];
    this.waiters = new Set();
    this.cancels = new Set();
    emitter.on(event, (arg) => {
      this.items.push(arg);
      for (const w of [...this.waiters]) w();
    });
  }

  get last() {
    return this.items[this.items.length - 1];
  }

  /** Resolves with the list once `pred(list)` is truthy. */
  until(pred, { timeoutMs = EVENT_TIMEOUT_MS, description = 'a matching state' } = {}) {
    let cancel;
    const p = new Promise((resolvePromise, reject) => {
      const check = () => {
        let ok;
        try {
          ok = pred(this.items);
        } catch (err) {
          finish();
          reject(err);
          return true;
        }
        if (!ok) return false;
        finish();
        resolvePromise(this.items);
        return true;
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        this.cancels.delete(finish);
      };
      cancel = finish;
      this.cancels.add(finish);
      const timer = setTimeout(() => {
        finish();
        const tail = JSON.stringify(this.items.slice(-5)).slice(0, 1500);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${description} of "${this.event}" on ${this.what}; got ${this.items.length}, last ones: ${tail}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
    p.catch(() => {});
    /** Stops waiting (the promise then never settles); used for abandoned waits. */
    p.cancel = cancel;
    return p;
  }

  /** Cancels every pending wait (their timers would keep the test process alive). */
  cancelAll() {
    for (const c of [...this.cancels]) c();
  }

  /** Resolves with the first item matching `pred` (past or future). */
  async find(pred, opts = {}) {
    await this.until((items) => items.some(pred), opts);
    return this.items.find(pred);
  }

  /** Resolves with the newest item once the newest item matches `pred`. */
  async latest(pred, opts = {}) {
    await this.until((items) => items.length > 0 && pred(items[items.length - 1]), opts);
    return this.last;
  }
}

/**
 * A chat socket (socket.io-client, websocket transport, no auto-reconnect)
 * with logs of `chat:message`, `system:event`, `system:error`,
 * `queue:snapshot`, `queue:position` and `disconnect` that are attached before
 * connecting.
 */
export class ChatClient {
  constructor(url, { query = {}, auth = {}, label } = {}) {
    this.label = label ?? `chat socket ${JSON.stringify({ ...query, ...auth })}`;
    this.query = query;
    this.auth = auth;
    this.socket = io(url, {
      path: '/socket.io/',
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      autoConnect: false,
      query: stringify(query),
      auth,
    });
    if (jwtServers.has(url)) this.socket.on('system:event', (e) => learnCustomers(e?.conversation));
    this.messages = new EventLog(this.socket, 'chat:message', this.label);
    this.events = new EventLog(this.socket, 'system:event', this.label);
    this.errors = new EventLog(this.socket, 'system:error', this.label);
    this.snapshots = new EventLog(this.socket, 'queue:snapshot', this.label);
    this.positions = new EventLog(this.socket, 'queue:position', this.label);
    this.disconnects = new EventLog(this.socket, 'disconnect', this.label);
    this.connectErrors = new EventLog(this.socket, 'connect_error', this.label);
    /** Order in which chat events arrived: `[event, payload]`. */
    this.timeline = [];
    for (const ev of ['chat:message', 'system:event', 'system:error', 'queue:snapshot', 'queue:position', 'disconnect']) {
      this.socket.on(ev, (arg) => this.timeline.push([ev, arg]));
    }
  }

  /** Connects; resolves once Socket.IO CONNECT succeeded (not necessarily joined). */
  connect({ timeoutMs = EVENT_TIMEOUT_MS } = {}) {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms connecting ${this.label}`));
      }, timeoutMs);
      const onConnect = () => {
        cleanup();
        resolvePromise(this);
      };
      const onError = (err) => {
        cleanup();
        reject(new Error(`connect_error on ${this.label}: ${err?.message ?? err}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.socket.off('connect', onConnect);
        this.socket.off('connect_error', onError);
      };
      this.socket.on('connect', onConnect);
      this.socket.on('connect_error', onError);
      this.socket.connect();
    });
  }

  /**
   * Connects and waits for the join `system:event {participant, conversation}`
   * (fails fast on `system:error`). Resolves with that event's payload.
   */
  async join(opts = {}) {
    const joined = this.events.find((e) => e && e.participant && e.conversation, { description: 'the join system:event', ...opts });
    const refused = this.errors.until((items) => items.length > 0, { timeoutMs: opts.timeoutMs ?? EVENT_TIMEOUT_MS });
    await this.connect(opts);
    let first;
    try {
      first = await Promise.race([joined.then((e) => ({ e })), refused.then((items) => ({ err: items[0] }))]);
    } finally {
      refused.cancel();
    }
    if (first.err) throw new Error(`${this.label} was refused: system:error ${JSON.stringify(first.err)}`);
    this.joined = first.e;
    return first.e;
  }

  /** Emits `chat:message` with an ack; resolves with the ack payload. */
  async send(conversationId, content, extra = {}, opts = {}) {
    const [ack] = await emitWithAck(this.socket, 'chat:message', [{ conversationId, content, ...extra }], opts);
    return ack;
  }

  /** Sends and asserts the ack is a stored message. */
  async sendOk(conversationId, content, extra = {}) {
    const ack = await this.send(conversationId, content, extra);
    assertMessage(ack, { conversationId, content }, `${this.label} ack`);
    return ack;
  }

  /** Resolves with the received chat:messages once one with `seq >= seq` arrived. */
  async waitSeq(seq, opts = {}) {
    await this.messages.until((items) => items.some((m) => m && m.seq >= seq), { description: `chat:message seq ${seq}`, ...opts });
    return this.messages.items;
  }

  /** Resolves with the first chat:message matching `pred`. */
  waitMessage(pred, description = 'a matching chat:message', opts = {}) {
    return this.messages.find(pred, { description, ...opts });
  }

  /** Resolves with the first lifecycle system:event (not the join event) whose conversation has `status`. */
  waitStatus(status, opts = {}) {
    // The join event (which also carries the conversation) does not count.
    return this.events.find((e) => e !== this.joined && e?.conversation?.status === status, {
      description: `lifecycle system:event with status ${status}`,
      ...opts,
    });
  }

  disconnect() {
    this.socket.disconnect();
  }

  /** Disconnects and abandons every pending wait. */
  dispose() {
    this.socket.disconnect();
    for (const log of [this.messages, this.events, this.errors, this.snapshots, this.positions, this.disconnects, this.connectErrors]) log.cancelAll();
  }
}

function stringify(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

/** Keeps every ChatClient of a test so `afterEach` can close them. */
export class ChatClients {
  constructor() {
    this.all = new Set();
  }

  /** A client; `fields` go to the query string unless `via: 'auth'`. */
  create(url, fields = {}, { via = 'query', query = {}, auth = {}, label } = {}) {
    const clean = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    if (jwtServers.has(url)) {
      // The same identity, proven: a token for the id the test names (or for the customer of
      // the conversation it joins).
      const role = clean.role ?? 'customer';
      const id = clean.token ?? (role === 'customer' && clean.conversationId ? customerOf.get(clean.conversationId) : undefined);
      // (A token taken from an earlier client is already one.)
      if (id !== undefined && !/^eyJ[\w-]*\.[\w-]*\.[\w-]*$/.test(id)) clean.token = tokenFor(id, role);
    }
    const c = new ChatClient(url, {
      query: via === 'query' ? { ...query, ...clean } : query,
      auth: via === 'auth' ? { ...auth, ...clean } : auth,
      label: label ?? `${clean.role ?? '?'} socket ${fields.token ?? ''}${clean.conversationId ? ` in ${clean.conversationId}` : ''}${clean.scope ? ` scope=${clean.scope}` : ''}`,
    });
    this.all.add(c);
    return c;
  }

  /** Customer socket joined to `conversationId` (or a new conversation when omitted). */
  async customer(url, { token, displayName, conversationId, lastSeq, fingerprint, via } = {}) {
    const c = this.create(url, { role: 'customer', token, displayName, conversationId, lastSeq, fingerprint }, { via });
    c.joined = await c.join();
    return c;
  }

  /** Agent socket joined to `conversationId`. */
  async agent(url, { token, displayName, conversationId, lastSeq, via } = {}) {
    const c = this.create(url, { role: 'agent', token, displayName, conversationId, lastSeq }, { via });
    c.joined = await c.join();
    return c;
  }

  /** Agent socket with scope=queue; resolves once its first queue:snapshot arrived. */
  async queueWatcher(url, { token = `watcher-${randomUUID()}`, displayName = 'Watcher', via } = {}) {
    const c = this.create(url, { role: 'agent', token, displayName, scope: 'queue' }, { via });
    const first = c.snapshots.until((items) => items.length > 0, { description: 'the initial queue:snapshot' });
    await c.connect();
    await first;
    assertSnapshot(c.snapshots.items[0], 'initial queue:snapshot');
    return c;
  }

  closeAll() {
    for (const c of this.all) c.dispose();
    this.all.clear();
  }
}

/** Registers `afterEach` closing every client created through the returned registry. */
export function useChatClients() {
  const clients = new ChatClients();
  afterEach(() => clients.closeAll());
  return clients;
}

/** A queue:snapshot is a bare array of QueueEntry. */
export function assertSnapshot(snapshot, what = 'queue:snapshot') {
  assert.ok(Array.isArray(snapshot), `${what} must be a bare JSON array, got ${JSON.stringify(snapshot).slice(0, 300)}`);
  snapshot.forEach((e, i) => assertQueueEntry(e, `${what}[${i}]`));
}

export function assertQueueEntry(e, what = 'queue entry') {
  assert.ok(e && typeof e === 'object', `${what} must be an object`);
  assert.ok(typeof e.conversationId === 'string', `${what}.conversationId: ${JSON.stringify(e)}`);
  assertIsoMillis(e.enqueuedAt, `${what}.enqueuedAt`);
  assert.ok(typeof e.customerId === 'string', `${what}.customerId: ${JSON.stringify(e)}`);
}

/** conversationIds of a queue list. */
export const idsOf = (entries) => entries.map((e) => e.conversationId);

/** Asserts that `enqueuedAt` never decreases along `entries` (oldest first). */
export function assertOldestFirst(entries, what = 'queue') {
  for (let i = 1; i < entries.length; i++) {
    assert.ok(
      entries[i - 1].enqueuedAt <= entries[i].enqueuedAt,
      `${what} must be oldest first: [${i - 1}] ${entries[i - 1].enqueuedAt} > [${i}] ${entries[i].enqueuedAt}`,
    );
  }
}

export { randomUUID };

/** A unique id with a readable prefix. */
export const uid = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;
