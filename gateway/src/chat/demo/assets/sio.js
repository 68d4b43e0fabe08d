// livechat demo: a small Socket.IO v5 / Engine.IO v4 client, written for this demo.
//
// Why not the npm `socket.io-client`: the demo ships inside the livechat binary as plain files
// (no npm install, no bundler, no third-party code to vet or update), and the chat contract
// needs only a sliver of the protocol. What this supports:
//   - the WebSocket transport only: GET /socket.io/?EIO=4&transport=websocket (no long-polling,
//     no upgrade), text frames only (no binary attachments);
//   - the default namespace "/", with the CONNECT auth payload (role, token, displayName,
//     conversationId, scope, lastSeq: see docs/api.md), asked for afresh on every (re)connect so
//     a resume always carries the latest `lastSeq`;
//   - events both ways, and acks for what we emit (`emitWithAck`, with a timeout);
//   - Engine.IO heartbeats: the server pings, we pong; no ping within pingInterval +
//     pingTimeout means the link is dead;
//   - reconnects after an unexpected loss, with exponential backoff and jitter (0.5 s … 10 s),
//     at once when the browser says it is back online. A server-side disconnect or a refused
//     CONNECT is final, as in socket.io-client ("io server disconnect").

const OPEN = '0';
const CLOSE = '1';
const PING = '2';
const PONG = '3';
const MESSAGE = '4';
const [CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR] = [0, 1, 2, 3, 4];
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

export class ChatSocket {
  /**
   * @param {object} opts
   * @param {() => object} opts.auth the CONNECT auth payload (called on every connect)
   * @param {(event: string, data: any) => void} opts.onEvent every server event
   * @param {(state: string, detail?: string) => void} [opts.onState] 'connecting' |
   *   'connected' | 'waiting' (retry scheduled) | 'offline' (dropped on purpose) | 'closed' (final)
   * @param {string} [opts.path] the Engine.IO path
   */
  constructor({ auth, onEvent, onState = () => {}, path = '/socket.io/' }) {
    this.auth = auth;
    this.onEvent = onEvent;
    this.onState = onState;
    this.path = path;
    this.ws = null;
    this.state = 'offline';
    this.attempt = 0;
    this.retryTimer = 0;
    this.heartbeat = 0;
    this.pingWindow = 45_000;
    this.acks = new Map();
    this.nextAckId = 0;
    this.retrying = false;
    this.onOnline = () => {
      if (this.state === 'waiting') this.connect();
    };
    addEventListener('online', this.onOnline);
  }

  /** Opens the connection (again), unless it is open or opening. */
  connect() {
    clearTimeout(this.retryTimer);
    if (this.ws) return;
    this.retrying = true;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}${this.path}?EIO=4&transport=websocket`);
    this.ws = ws;
    this.setState('connecting');
    // Handlers check `this.ws === ws`: a socket we already let go of must not touch our state.
    ws.onmessage = (e) => {
      if (this.ws === ws && typeof e.data === 'string') this.onFrame(e.data);
    };
    ws.onclose = () => {
      if (this.ws === ws) this.lost('connection lost');
    };
  }

  /**
   * Drops the connection the way a network loss would (no DISCONNECT packet, so the server sees
   * a transport close). With `reconnect` the usual backoff follows; without, it stays offline
   * until `connect()`.
   */
  drop({ reconnect = false } = {}) {
    this.teardown('dropped');
    this.retrying = reconnect;
    if (reconnect) this.scheduleRetry('dropped');
    else this.setState('offline');
  }

  /** Leaves for good: a DISCONNECT packet, then the close; no reconnect. */
  close() {
    if (this.state === 'connected') this.raw(`${MESSAGE}${DISCONNECT}`);
    this.teardown('closed');
    this.retrying = false;
    removeEventListener('online', this.onOnline);
    this.setState('closed');
  }

  get connected() {
    return this.state === 'connected';
  }

  /** Emits `event` with one argument, no ack. */
  emit(event, data) {
    if (!this.connected) return false;
    this.raw(`${MESSAGE}${EVENT}${JSON.stringify([event, data])}`);
    return true;
  }

  /** Emits `event` with one argument; resolves with the ack's first argument. */
  emitWithAck(event, data, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      if (!this.connected) return reject(new Error('not connected'));
      const id = this.nextAckId++;
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new Error('no answer from the server in time'));
      }, timeoutMs);
      const settle = (fn) => (v) => {
        clearTimeout(timer);
        this.acks.delete(id);
        fn(v);
      };
      this.acks.set(id, { resolve: settle(resolve), reject: settle(reject) });
      this.raw(`${MESSAGE}${EVENT}${id}${JSON.stringify([event, data])}`);
    });
  }

  // --- internals ---------------------------------------------------------------------------

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }

  raw(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  /** One Engine.IO packet (one WebSocket frame is always exactly one packet). */
  onFrame(frame) {
    const body = frame.slice(1);
    switch (frame[0]) {
      case OPEN: {
        const open = JSON.parse(body);
        this.pingWindow = open.pingInterval + open.pingTimeout;
        this.beat();
        this.raw(`${MESSAGE}${CONNECT}${JSON.stringify(this.auth())}`);
        break;
      }
      case PING:
        this.raw(PONG);
        this.beat();
        break;
      case CLOSE:
        this.lost('closed by the server');
        break;
      case MESSAGE:
        this.onPacket(body);
        break;
      default:
        break;
    }
  }

  /** One Socket.IO packet: type digit, optional namespace, optional ack id, optional JSON. */
  onPacket(text) {
    const type = Number(text[0]);
    let i = 1;
    if (text[i] === '/') {
      // Only "/" is used; a namespaced packet carries "/name," first.
      const comma = text.indexOf(',', i);
      i = comma < 0 ? text.length : comma + 1;
    }
    let id = '';
    while (i < text.length && text[i] >= '0' && text[i] <= '9') id += text[i++];
    let data;
    try {
      data = i < text.length ? JSON.parse(text.slice(i)) : undefined;
    } catch {
      return; // not ours to guess at
    }
    switch (type) {
      case CONNECT:
        this.attempt = 0;
        this.setState('connected');
        break;
      case EVENT:
        if (Array.isArray(data) && typeof data[0] === 'string') {
          // The contract's server events never ask for acks; answer one anyway, empty.
          if (id !== '') this.raw(`${MESSAGE}${ACK}${id}[]`);
          this.onEvent(data[0], data[1]);
        }
        break;
      case ACK:
        this.acks.get(Number(id))?.resolve(Array.isArray(data) ? data[0] : undefined);
        break;
      case DISCONNECT:
        this.final('disconnected by the server');
        break;
      case CONNECT_ERROR:
        this.final(data?.message || 'connection refused');
        break;
      default:
        break;
    }
  }

  /** Restarts the heartbeat deadline: the server pings every pingInterval. */
  beat() {
    clearTimeout(this.heartbeat);
    this.heartbeat = setTimeout(() => this.lost('no heartbeat from the server'), this.pingWindow);
  }

  /** Lets go of the WebSocket and fails every ack still waiting. */
  teardown(reason) {
    clearTimeout(this.heartbeat);
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
    for (const { reject } of [...this.acks.values()]) reject(new Error(reason));
  }

  /** An unexpected loss: retry with backoff (unless we are not to). */
  lost(reason) {
    this.teardown(reason);
    if (this.retrying) this.scheduleRetry(reason);
    else this.setState('offline', reason);
  }

  /** The server ended the session on purpose: retrying would be refused again. */
  final(reason) {
    this.teardown(reason);
    this.retrying = false;
    this.setState('closed', reason);
  }

  scheduleRetry(reason) {
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt++);
    const delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
    this.setState('waiting', `${reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
