// Spawns one of the gateway's example binaries (`conformance`, `fanout`) for a
// test and waits until it prints `listening on http://HOST:PORT`.
//
// Environment:
//   LIVECHAT_BIN_DIR     directory holding the example binaries
//                        (default: <repo>/target/debug/examples)
//   LIVECHAT_REF_SERVER  path to a Node reference server script; when set,
//                        `node <script> <binary-name> <args...>` is spawned
//                        instead of the binary (used to validate the tests
//                        themselves while the Rust server does not exist)
//   LIVECHAT_TEST_VERBOSE=1  forward the server's stdout/stderr to ours
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEFAULT_BIN_DIR = resolve(REPO_ROOT, 'target', 'debug', 'examples');
const STARTUP_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const STDERR_KEEP = 64 * 1024;
const LISTENING_RE = /^listening on (http:\/\/([^\s/]+):(\d+))\s*$/;

/** True when the tests run against the Node reference server, not the Rust binaries. */
export const usingReferenceServer = Boolean(process.env.LIVECHAT_REF_SERVER);

const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function command(name, args) {
  if (usingReferenceServer) {
    return { file: process.execPath, argv: [process.env.LIVECHAT_REF_SERVER, name, ...args] };
  }
  const binDir = process.env.LIVECHAT_BIN_DIR || DEFAULT_BIN_DIR;
  const file = resolve(binDir, name);
  if (!existsSync(file)) {
    throw new Error(
      `server binary not found: ${file}\n` +
        `build it with \`cargo build --examples\` or set LIVECHAT_BIN_DIR (or LIVECHAT_REF_SERVER)`,
    );
  }
  return { file, argv: args };
}

/**
 * Starts `name` (e.g. "conformance") with `args` and resolves once it listens.
 * @returns {Promise<{url: string, port: number, host: string, child: import('node:child_process').ChildProcess,
 *   stderr: () => string, close: () => Promise<{code: number|null, signal: string|null}>}>}
 */
export function startServer(name, args = []) {
  const { file, argv } = command(name, args);
  const verbose = process.env.LIVECHAT_TEST_VERBOSE === '1';
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-STDERR_KEEP);
    if (verbose) process.stderr.write(`[${name}] ${chunk}`);
  });

  const exited = new Promise((res) => {
    // 'close' (not 'exit'): fires once the process exited AND its stdio is drained.
    child.once('close', (code, signal) => {
      live.delete(child);
      res({ code, signal });
    });
  });
  const describeCmd = `${file} ${argv.join(' ')}`;

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

    // Keep reading stdout for the whole lifetime: a full pipe would block the server.
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (verbose) process.stderr.write(`[${name}] ${line}\n`);
      const m = LISTENING_RE.exec(line);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      const [, url, host, port] = m;
      resolveStart({
        url,
        host,
        port: Number(port),
        child,
        stderr: () => stderr,
        close: () => stopServer(child, exited),
      });
    });
  });
}

async function stopServer(child, exited) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
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
    throw new Error(`server did not exit within ${SHUTDOWN_TIMEOUT_MS} ms of SIGTERM (killed)`);
  }
  return result;
}

/** Executor counts every suite is run with. */
export const EXECUTOR_COUNTS = [1, 2];

/**
 * Registers before/after hooks (call inside a `describe`) that start `name`
 * with `--listen 127.0.0.1:0 --executors N` plus `extraArgs`, and stop it
 * afterwards. Returns a handle whose `url`/`port` are valid inside tests.
 */
export function useServer(name, { executors, extraArgs = [] }) {
  const handle = {
    /** @type {Awaited<ReturnType<typeof startServer>> | null} */
    server: null,
    get url() {
      return this.server.url;
    },
    get port() {
      return this.server.port;
    },
  };
  before(async () => {
    handle.server = await startServer(name, ['--listen', '127.0.0.1:0', '--executors', String(executors), ...extraArgs]);
  });
  after(async () => {
    const server = handle.server;
    if (!server) return;
    // A server that died during the suite explains the failures above it: say so, with its stderr.
    const diedEarly = server.child.exitCode !== null || server.child.signalCode !== null;
    const { code, signal } = await server.close();
    if (diedEarly || code !== 0) {
      throw new Error(
        `${name} ${diedEarly ? 'exited during the tests' : 'did not exit cleanly on SIGTERM'} ` +
          `(code ${code}, signal ${signal})\n--- server stderr (tail) ---\n${server.stderr().slice(-4000) || '(empty)'}`,
      );
    }
  });
  return handle;
}
