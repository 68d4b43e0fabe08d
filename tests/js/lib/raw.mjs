// Raw Engine.IO v4 clients (WebSocket via `ws`, long-polling via fetch) for
// tests that check the wire protocol itself rather than socket.io-client.
import WebSocket from 'ws';
import { EVENT_TIMEOUT_MS, Recorder, once } from './events.mjs';

/** Engine.IO v4 packet separator for HTTP long-polling payloads. */
export const RECORD_SEPARATOR = '\x1e';

/**
 * Opens `ws://host:port<path>?EIO=4&transport=websocket` and waits for the
 * Engine.IO open packet. Every frame is recorded in `frames` as
 * `[text|Buffer, isBinary]`; `closed` resolves with `[code, reason]`.
 */
export async function openRawWebSocket(baseUrl, path = '/socket.io/') {
  const url = `${baseUrl.replace(/^http/, 'ws')}${path}?EIO=4&transport=websocket`;
  const ws = new WebSocket(url);
  const frames = new Recorder(ws, 'message', `raw websocket ${url}`);
  const closedEvents = new Recorder(ws, 'close', `raw websocket ${url}`);
  ws.on('error', () => {}); // surfaced through 'close' / timeouts with context
  await once(ws, 'open', { what: `raw websocket ${url}`, failOn: ['error', 'close'] });
  await frames.waitFor(1, { description: 'the Engine.IO open packet' });
  const [data, isBinary] = frames.calls[0];
  if (isBinary) throw new Error(`first frame is binary, expected the open packet "0{...}"`);
  const text = data.toString('utf8');
  if (!text.startsWith('0')) throw new Error(`first frame is ${JSON.stringify(text)}, expected "0{...}"`);
  return {
    ws,
    url,
    open: JSON.parse(text.slice(1)),
    frames,
    /** Text frames received so far (strings). */
    texts: () => frames.calls.filter(([, bin]) => !bin).map(([d]) => d.toString('utf8')),
    /** Resolves with `[code, reason]` once the server closed the connection. */
    closed: (opts = {}) => closedEvents.waitFor(1, { description: 'the connection to be closed', ...opts }).then((c) => c[0]),
    isClosed: () => closedEvents.calls.length > 0,
    /** Waits for a text frame equal to / matching `expected`; resolves with that frame's text. */
    async waitText(expected, opts = {}) {
      const match = typeof expected === 'function' ? expected : (t) => t === expected;
      const isHit = (d, bin) => !bin && match(d.toString('utf8'));
      await frames.waitFor(isHit, {
        description: `text frame ${typeof expected === 'function' ? 'matching predicate' : JSON.stringify(expected)}`,
        ...opts,
      });
      return frames.calls.find(([d, bin]) => isHit(d, bin))[0].toString('utf8');
    },
    /** Number of text frames equal to `text`. */
    count(text) {
      return this.texts().filter((t) => t === text).length;
    },
    /** Answer every ping `2` with a pong `3` from now on. */
    answerPings() {
      const reply = (d, bin) => {
        if (!bin && d.toString('utf8') === '2') ws.send('3');
      };
      for (const [d, bin] of frames.calls) reply(d, bin);
      ws.on('message', reply);
    },
  };
}

/**
 * Minimal Engine.IO v4 long-polling session using fetch. `receive()` returns
 * the packets of the next GET, answering pings on its own.
 */
export async function openPolling(baseUrl, path = '/socket.io/') {
  const base = `${baseUrl}${path}?EIO=4&transport=polling`;
  const first = await timedFetch(base, {}, 'polling handshake');
  const body = await first.text();
  if (first.status !== 200) throw new Error(`polling handshake answered ${first.status}: ${body}`);
  if (!body.startsWith('0')) throw new Error(`polling handshake body is ${JSON.stringify(body)}, expected "0{...}"`);
  const open = JSON.parse(body.slice(1));
  const sessionUrl = `${base}&sid=${encodeURIComponent(open.sid)}`;
  const session = {
    open,
    sessionUrl,
    async send(...packets) {
      const res = await timedFetch(
        sessionUrl,
        { method: 'POST', body: packets.join(RECORD_SEPARATOR), headers: { 'content-type': 'text/plain;charset=UTF-8' } },
        'polling POST',
      );
      const text = await res.text();
      if (res.status !== 200) throw new Error(`polling POST answered ${res.status}: ${text}`);
      return text;
    },
    /** One GET; returns its packets (strings). Pings are answered. */
    async receive() {
      const res = await timedFetch(sessionUrl, {}, 'polling GET');
      const text = await res.text();
      if (res.status !== 200) throw new Error(`polling GET answered ${res.status}: ${text}`);
      const packets = text.split(RECORD_SEPARATOR);
      if (packets.includes('2')) await session.send('3');
      return packets;
    },
    /** GETs until `count` packets satisfying `pred` arrived (at most `maxPolls` GETs); returns them in order. */
    async collect(count, pred, { maxPolls = 20 } = {}) {
      const seen = [];
      const hits = [];
      for (let i = 0; i < maxPolls && hits.length < count; i++) {
        const packets = await session.receive();
        seen.push(...packets);
        hits.push(...packets.filter(pred));
      }
      if (hits.length < count) {
        throw new Error(`got ${hits.length} of ${count} expected polling packets after ${maxPolls} GETs: ${JSON.stringify(seen)}`);
      }
      return hits;
    },
    /** GETs until a packet satisfying `pred` shows up; returns it. */
    async receiveUntil(pred, opts) {
      return (await session.collect(1, pred, opts))[0];
    },
  };
  return session;
}

async function timedFetch(url, init, what) {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(EVENT_TIMEOUT_MS) });
  } catch (err) {
    throw new Error(`${what} to ${url} failed: ${err.cause?.message ?? err.message}`);
  }
}
