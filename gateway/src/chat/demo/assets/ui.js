// livechat demo: what the customer widget and the agent console share — DOM helpers, the REST
// client, error wording, and the transcript (messages in `seq` order, each exactly once).
// Plain JavaScript served by the livechat binary (no build step); see sio.js for why.

/** `document.querySelector`. */
export const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (text children are text nodes: never parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role') node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

/** A random id with `prefix` (ids only need to be unique within the demo). */
export function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** A REST error with the contract's `code`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
  }
}

/** A JSON REST call; resolves with the body, rejects with an `ApiError`. */
export async function api(method, path, { headers = {}, body } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = { error: text };
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

const JWT_TEXT =
  'This server verifies identities with JSON Web Tokens (chat.security.mode = "jwt"). ' +
  'The demo signs in the development way (the ids you type are believed), so it cannot work ' +
  'here: run the demo on a development server (no JWT keys configured).';

/** Shows `text` in the page's alert line (`null` hides it). */
export function notice(text) {
  const box = $('#notice');
  box.textContent = text || '';
  box.hidden = !text;
}

/** Shows what went wrong, in words; an identity refusal explains the jwt-mode limitation. */
export function report(what, err) {
  if (err?.status === 401 || err?.code === 'unauthorized') return notice(JWT_TEXT);
  notice(`${what}: ${err?.message || err}`);
}

const CONN_TEXT = {
  connecting: 'connecting…',
  connected: 'connected',
  waiting: 'reconnecting…',
  offline: 'offline',
  closed: 'disconnected',
};

/** Renders a ChatSocket state into a badge element. */
export function showConn(badge, state, detail) {
  badge.dataset.state = state;
  badge.textContent = CONN_TEXT[state] || state;
  badge.title = detail || '';
}

/** `PT4M` → `about 4 minutes` (the queue's `estimatedWait`, in words). */
export function waitWords(iso) {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$/.exec(iso || '');
  if (!m) return iso || '';
  const minutes = Number(m[1] || 0) * 60 + Number(m[2] || 0) + Math.round(Number(m[3] || 0) / 60);
  if (minutes < 1) return 'under a minute';
  return minutes === 1 ? 'about a minute' : `about ${minutes} minutes`;
}

const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '');

/**
 * A conversation's messages in `seq` order, each shown once: a duplicate (a replay after a
 * resume, an ack that raced its broadcast) is dropped, and a gap (a replay the server no
 * longer had) is filled over REST before anything after it is shown.
 */
export class Transcript {
  /**
   * @param {HTMLElement} list the `<ol>` to render into
   * @param {{selfId: string, fetchAfter: (seq: number) => Promise<object[]>, onAdd?: (m: object) => void}} opts
   */
  constructor(list, { selfId, fetchAfter, onAdd = () => {} }) {
    this.list = list;
    this.selfId = selfId;
    this.fetchAfter = fetchAfter;
    this.onAdd = onAdd;
    this.items = [];
    this.lastSeq = 0;
    this.held = new Map();
    this.filling = false;
  }

  /** Shows saved messages again (after a page reload) without telling `onAdd`. */
  restore(messages = []) {
    // What was kept may start after seq 1 (only the latest are kept): older ones stay unshown.
    if (this.lastSeq === 0 && messages.length) this.lastSeq = messages[0].seq - 1;
    for (const m of messages) if (m.seq === this.lastSeq + 1) this.show(m);
  }

  /** Takes a message from anywhere (broadcast, replay, ack, REST). */
  add(m) {
    if (!m || typeof m.seq !== 'number' || m.seq <= this.lastSeq || this.held.has(m.seq)) return;
    this.held.set(m.seq, m);
    this.flush();
    if (this.held.size && !this.filling) this.fill();
  }

  /** Fetches what follows the last shown message (a gap, or a replay that was incomplete). */
  async fill() {
    this.filling = true;
    try {
      for (const m of await this.fetchAfter(this.lastSeq)) if (m.seq > this.lastSeq) this.held.set(m.seq, m);
      this.flush();
    } catch (err) {
      report('Could not load earlier messages', err);
    } finally {
      this.filling = false;
    }
  }

  flush() {
    while (this.held.has(this.lastSeq + 1)) {
      const m = this.held.get(this.lastSeq + 1);
      this.held.delete(m.seq);
      this.show(m);
      this.onAdd(m);
    }
  }

  show(m) {
    this.lastSeq = m.seq;
    this.items.push(m);
    const kind = (m.sender?.type || m.type || 'SYSTEM').toLowerCase();
    const mine = m.sender?.id === this.selfId;
    const li = el(
      'li',
      { className: `msg ${kind}${mine ? ' mine' : ''}`, 'data-seq': String(m.seq) },
      kind === 'system' ? null : el('span', { className: 'who' }, mine ? 'You' : m.sender?.displayName || '?'),
      el('span', { className: 'text' }, m.content),
      el('time', { dateTime: m.timestamp || '', className: 'at' }, clock(m.timestamp)),
    );
    this.list.append(li);
    this.list.scrollTop = this.list.scrollHeight;
  }
}
