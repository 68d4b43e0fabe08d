// Redis for the tests that need a server of their own or to look inside one: a throwaway
// redis-server (AOF fsynced on every write, so a kill loses nothing it acknowledged) that a
// test can kill, restart on the same port and data, pause and resume; a free-port finder; a
// TCP proxy that cuts a node off; and a tiny RESP client (node:net) to read or corrupt keys
// and to delete a test's keys.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether `redis-server` is on PATH (the tests that start their own skip without it). */
export const HAVE_REDIS_SERVER = spawnSync('redis-server', ['--version']).status === 0;

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once `PING` on 127.0.0.1:`port` answers `+PONG` (retrying while it refuses or loads). */
export async function untilRedisAnswers(port, tries = 200) {
  for (let i = 0; i < tries; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      let got = '';
      c.setTimeout(1000, () => c.destroy());
      c.on('connect', () => c.write('PING\r\n'));
      c.on('data', (d) => {
        got += d;
        if (got.includes('\r\n')) c.end();
      });
      c.on('error', () => resolve(false));
      c.on('close', () => resolve(got.startsWith('+PONG')));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis on port ${port} did not answer PING`);
}

/** A redis-server of this test's own, with AOF fsynced on every write. */
export class OwnRedis {
  /** `extra`: more redis-server arguments (e.g. `--cluster-enabled yes`). */
  constructor(name = 'livechat-test-redis', extra = []) {
    this.dir = mkdtempSync(join(tmpdir(), `${name}-`));
    this.child = null;
    this.extra = extra;
  }

  async start(port) {
    this.port = port ?? this.port ?? (await freePort());
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...this.extra];
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    this.exited = new Promise((r) => this.child.once('exit', r));
    await untilRedisAnswers(this.port);
    return this;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** kill -9 and wait for the process to be gone. */
  async kill() {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  pause() {
    this.child.kill('SIGSTOP');
  }

  resume() {
    this.child.kill('SIGCONT');
  }

  async stop() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGCONT');
      await this.kill();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A port whose cluster bus port (port + 10000, below 65536) is free too. */
async function clusterPort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    const free = (p) =>
      new Promise((resolve) => {
        const srv = net.createServer();
        srv.once('error', () => resolve(false));
        srv.listen(p, '127.0.0.1', () => srv.close(() => resolve(true)));
      });
    if ((await free(port)) && (await free(port + 10000))) return port;
  }
}

/**
 * A Redis Cluster of three masters of this test's own (each an OwnRedis: AOF fsynced on every
 * write, `nodes.conf` in its directory, so a killed master restarts as itself with its slots).
 */
export class OwnCluster {
  async start() {
    this.masters = [];
    for (let i = 0; i < 3; i++) {
      const m = new OwnRedis('livechat-test-cluster', ['--cluster-enabled', 'yes', '--cluster-node-timeout', '5000']);
      this.masters.push(await m.start(await clusterPort()));
    }
    const hosts = this.masters.map((m) => `127.0.0.1:${m.port}`);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...hosts, '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await this.untilOk();
    return this;
  }

  get url() {
    return `redis+cluster://${this.masters.map((m) => `127.0.0.1:${m.port}`).join(',')}`;
  }

  /** The index of the master that holds `key`. */
  async masterFor(key) {
    const r = await Resp.openFor(this.url, key);
    try {
      const port = r.sock.remotePort;
      return this.masters.findIndex((m) => m.port === port);
    } finally {
      r.close();
    }
  }

  /** Resolves once every master says `cluster_state:ok`. */
  async untilOk(tries = 600) {
    for (let i = 0; i < tries; i++) {
      const states = await Promise.all(
        this.masters.map(async (m) => {
          try {
            const r = await Resp.open(m.port);
            try {
              return String(await r.cmd('CLUSTER', 'INFO')).includes('cluster_state:ok');
            } finally {
              r.close();
            }
          } catch {
            return false;
          }
        }),
      );
      if (states.every(Boolean)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the test cluster did not reach cluster_state:ok');
  }

  async stop() {
    for (const m of this.masters ?? []) await m.stop();
  }
}

/**
 * A TCP proxy on 127.0.0.1 to `port` that can cut every connection and refuse new ones until
 * restored; `onClientData(chunk, connection)` sees what clients send (to watch a node's commands).
 */
export class TcpProxy {
  constructor(port, { onClientData } = {}) {
    this.target = port;
    this.open = true;
    this.pairs = new Set();
    this.server = net.createServer((client) => {
      if (!this.open) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.target, '127.0.0.1');
      const pair = [client, upstream];
      this.pairs.add(pair);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
      if (onClientData) client.on('data', (chunk) => onClientData(chunk, client));
    });
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(this.server.address().port)));
  }

  cut() {
    this.open = false;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  restore() {
    this.open = true;
  }

  close() {
    this.cut();
    return new Promise((r) => this.server.close(r));
  }
}

/** A minimal RESP client: one command at a time or pipelined, replies in order. */
export class Resp {
  /**
   * Connects to a `redis://` URL (AUTH and SELECT as it says), to the first node of a
   * `redis+cluster://h:p,h:p` URL, or to a port on 127.0.0.1.
   */
  static async open(urlOrPort) {
    const url = new URL(typeof urlOrPort === 'number' ? `redis://127.0.0.1:${urlOrPort}` : firstNodeUrl(urlOrPort));
    const r = new Resp();
    await new Promise((resolveConn, reject) => {
      r.sock = net.connect({ host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) }, resolveConn);
      r.sock.once('error', reject);
    });
    r.sock.on('error', (err) => r.failAll(err));
    r.sock.on('close', () => r.failAll(new Error('redis connection closed')));
    r.sock.on('data', (chunk) => r.onData(chunk));
    if (url.password) {
      const user = decodeURIComponent(url.username || '');
      await r.cmd('AUTH', ...(user ? [user] : []), decodeURIComponent(url.password));
    }
    const db = url.pathname.replace(/^\//, '');
    if (db) await r.cmd('SELECT', db);
    return r;
  }

  /** One connection per server holding keys: the one Redis, or every master of a cluster. */
  static async openEach(urlText) {
    if (!isCluster(urlText)) return [await Resp.open(urlText)];
    const first = await Resp.open(urlText);
    try {
      return await Promise.all(mastersOf(await first.cmd('CLUSTER', 'SLOTS')).map((m) => Resp.open(withNode(urlText, m))));
    } finally {
      first.close();
    }
  }

  /** A connection to the server that holds `key` (its slot's master on a cluster). */
  static async openFor(urlText, key) {
    if (!isCluster(urlText)) return Resp.open(urlText);
    const first = await Resp.open(urlText);
    try {
      const slot = await first.cmd('CLUSTER', 'KEYSLOT', key);
      const range = (await first.cmd('CLUSTER', 'SLOTS')).find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return await Resp.open(withNode(urlText, `${range[2][0]}:${range[2][1]}`));
    } finally {
      first.close();
    }
  }

  constructor() {
    this.buf = Buffer.alloc(0);
    this.pending = [];
  }

  /** Sends one command; resolves with its reply (rejects on a RESP error). */
  cmd(...args) {
    let out = `*${args.length}\r\n`;
    for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
    return new Promise((resolveReply, reject) => {
      this.pending.push({ resolve: resolveReply, reject });
      this.sock.write(out);
    });
  }

  /** The replies of `commands` run atomically (MULTI/EXEC). */
  async atomically(...commands) {
    const queued = [this.cmd('MULTI'), ...commands.map((c) => this.cmd(...c))];
    const exec = this.cmd('EXEC');
    await Promise.all(queued);
    return exec;
  }

  onData(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const parsed = this.parse(0);
      if (!parsed) return;
      this.buf = this.buf.subarray(parsed.end);
      const p = this.pending.shift();
      if (!p) continue;
      if (parsed.value instanceof Error) p.reject(parsed.value);
      else p.resolve(parsed.value);
    }
  }

  /** Parses one reply at `at`; null when incomplete. */
  parse(at) {
    const eol = this.buf.indexOf('\r\n', at);
    if (eol < 0) return null;
    const type = String.fromCharCode(this.buf[at]);
    const line = this.buf.toString('utf8', at + 1, eol);
    const next = eol + 2;
    switch (type) {
      case '+':
        return { value: line, end: next };
      case '-':
        return { value: new Error(`redis: ${line}`), end: next };
      case ':':
        return { value: Number(line), end: next };
      case '$': {
        const n = Number(line);
        if (n < 0) return { value: null, end: next };
        if (this.buf.length < next + n + 2) return null;
        return { value: this.buf.toString('utf8', next, next + n), end: next + n + 2 };
      }
      case '*': {
        const n = Number(line);
        if (n < 0) return { value: null, end: next };
        const items = [];
        let pos = next;
        for (let i = 0; i < n; i++) {
          const item = this.parse(pos);
          if (!item) return null;
          items.push(item.value);
          pos = item.end;
        }
        return { value: items, end: pos };
      }
      default:
        throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
    }
  }

  failAll(err) {
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  close() {
    this.sock.end();
    this.sock.destroy();
  }
}

const isCluster = (url) => /^rediss?\+cluster:\/\//.test(url);

/** `redis://[auth@]h:p/...` for the first node of a cluster URL (a plain URL unchanged). */
function firstNodeUrl(url) {
  if (!isCluster(url)) return url;
  const m = /^rediss?\+cluster:\/\/([^@/]*@)?([^,/?#]+)[^/?#]*(.*)$/.exec(url);
  if (!m) throw new Error(`bad cluster URL ${url}`);
  return `redis://${m[1] ?? ''}${m[2]}${m[3]}`;
}

/** The cluster URL's credentials with node `hostPort`, as a plain URL. */
function withNode(url, hostPort) {
  const m = /^rediss?\+cluster:\/\/([^@/]*@)?/.exec(url);
  return `redis://${m?.[1] ?? ''}${hostPort}`;
}

/** `host:port` of every master in a CLUSTER SLOTS reply. */
function mastersOf(slots) {
  return [...new Set(slots.map((r) => `${r[2][0]}:${r[2][1]}`))];
}
