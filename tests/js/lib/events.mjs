// Helpers that await events instead of sleeping. Every wait has a timeout that
// fails the test with a message naming what was being waited for.
//
// Works with socket.io-client sockets/managers/engines and with `ws`
// WebSockets (anything with on/once/off).
import { io } from 'socket.io-client';

/** Default time to wait for any single event. Generous: CI machines are slow. */
export const EVENT_TIMEOUT_MS = Number(process.env.LIVECHAT_EVENT_TIMEOUT_MS || 5000);

function off(emitter, event, fn) {
  if (typeof emitter.off === 'function') emitter.off(event, fn);
  else emitter.removeListener(event, fn);
}

/**
 * Resolves with the array of arguments of the next `event` emitted by `emitter`.
 * Rejects after `timeoutMs`, or as soon as one of `failOn` events fires.
 * @param {object} emitter
 * @param {string} event
 * @param {{timeoutMs?: number, what?: string, failOn?: string[], filter?: (...args: any[]) => boolean}} [opts]
 * @returns {Promise<any[]>}
 */
export function once(emitter, event, { timeoutMs = EVENT_TIMEOUT_MS, what = 'socket', failOn = [], filter } = {}) {
  return quiet(new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      off(emitter, event, onEvent);
      for (const [name, fn] of failHandlers) off(emitter, name, fn);
    };
    const onEvent = (...args) => {
      if (filter && !filter(...args)) return;
      cleanup();
      resolve(args);
    };
    const failHandlers = failOn.map((name) => [
      name,
      (...args) => {
        cleanup();
        const detail = args.map((a) => (a instanceof Error ? a.message : safeJson(a))).join(', ');
        reject(new Error(`got "${name}" (${detail}) on ${what} while waiting for "${event}"`));
      },
    ]);
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}" on ${what}`));
    }, timeoutMs);
    emitter.on(event, onEvent);
    for (const [name, fn] of failHandlers) emitter.on(name, fn);
  }));
}

/**
 * Marks `promise` as handled so that a wait which is never awaited (because
 * the test already failed on an earlier assertion) does not surface later as
 * an unhandled rejection. Awaiting it still throws as usual.
 */
function quiet(promise) {
  promise.catch(() => {});
  return promise;
}

function safeJson(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/**
 * Records every occurrence of `event` so a test can await the N-th one and
 * inspect all of them afterwards.
 */
export class Recorder {
  constructor(emitter, event, what = 'socket') {
    this.event = event;
    this.what = what;
    /** @type {any[][]} */
    this.calls = [];
    this.waiters = [];
    emitter.on(event, (...args) => {
      this.calls.push(args);
      this.waiters = this.waiters.filter((w) => !w.check());
    });
  }

  /** Resolves once at least `n` occurrences were recorded (or one matching `pred`). */
  waitFor(pred, { timeoutMs = EVENT_TIMEOUT_MS, description } = {}) {
    const test = typeof pred === 'number' ? () => this.calls.length >= pred : () => this.calls.some((c) => pred(...c));
    const label = description ?? (typeof pred === 'number' ? `${pred} x "${this.event}"` : `matching "${this.event}"`);
    return quiet(new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          if (!test()) return false;
          clearTimeout(timer);
          resolve(this.calls);
          return true;
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${label} on ${this.what}; ` +
              `got ${this.calls.length}: ${safeJson(this.calls).slice(0, 500)}`,
          ),
        );
      }, timeoutMs);
      if (!waiter.check()) this.waiters.push(waiter);
    }));
  }
}

/**
 * Emits `event` with `args` and resolves with the ack's arguments (array).
 * Fails with a clear message if the ack does not come within `timeoutMs`.
 */
export function emitWithAck(socket, event, args = [], { timeoutMs = EVENT_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, ...args, (err, ...ackArgs) => {
      if (err) reject(new Error(`no ack for "${event}" within ${timeoutMs} ms (socket ${socket.id ?? '(not connected)'})`));
      else resolve(ackArgs);
    });
  });
}

/**
 * Factory for socket.io-client sockets that are all closed by `closeAll()`
 * (call it from afterEach). Sockets never share a Manager (`forceNew`) and
 * never reconnect on their own, so every test controls its connections.
 */
export function socketFactory() {
  const sockets = new Set();
  return {
    /** Creates a socket (autoConnect off) for `url` + `nsp`. */
    create(url, { nsp = '/', ...opts } = {}) {
      const socket = io(url + nsp, { forceNew: true, reconnection: false, autoConnect: false, ...opts });
      sockets.add(socket);
      return socket;
    },
    /**
     * Creates and connects a socket; resolves with `{socket, auth}` where `auth`
     * is the payload of the server's `auth` event (sent right after CONNECT).
     * Pass `expectAuth: false` for servers that do not send it (fanout).
     */
    async connect(url, { expectAuth = true, ...opts } = {}) {
      const socket = this.create(url, opts);
      const what = `socket to ${opts.nsp ?? '/'} (${(opts.transports ?? ['polling', 'websocket']).join('+')})`;
      const auth = expectAuth ? once(socket, 'auth', { what, failOn: ['connect_error', 'disconnect'] }) : Promise.resolve([]);
      const connected = once(socket, 'connect', { what, failOn: ['connect_error'] });
      socket.connect();
      const [, [authPayload]] = await Promise.all([connected, auth]);
      return { socket, auth: authPayload };
    },
    closeAll() {
      for (const s of sockets) s.disconnect();
      sockets.clear();
    },
  };
}
