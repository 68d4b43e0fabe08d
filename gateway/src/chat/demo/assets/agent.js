// livechat demo: the agent console. Pick an id and name → the live queue (a `scope=queue`
// socket and its `queue:snapshot`s) → accept (409: someone was faster, 429: at your cap) →
// your conversations, one socket each (an agent socket joins one conversation) → messages →
// close. Plain JavaScript served by the livechat binary (no build step); see sio.js for why.
import { ChatSocket } from './sio.js';
import { $, Transcript, api, el, notice, randomId, report, showConn } from './ui.js';

const KEY = 'livechat-demo-agent';
/** @type {{id: string, name: string} | null} */
let me = JSON.parse(sessionStorage.getItem(KEY) || 'null');
let queueSocket = null;
/** Conversation id → {meta, list, transcript, socket, unread, state}. */
const convs = new Map();
let selected = null;

/** Development-mode identity: the id is believed as given (docs/api.md, "Identity"). */
const who = () => ({ 'X-Agent-Id': me.id });
const agentPath = (id, rest = '') => `/api/agent/conversations/${encodeURIComponent(id)}${rest}`;
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

// --- the queue ------------------------------------------------------------------------------

function renderQueue(entries) {
  const list = $('#queue-list');
  const focused = document.activeElement?.closest?.('li')?.dataset.conversationId;
  list.replaceChildren(
    ...entries.map((q) => {
      const name = q.customerName || q.customerId;
      const button = el('button', { type: 'button', className: 'accept', 'aria-label': `Accept the chat with ${name}` }, 'Accept');
      button.addEventListener('click', () => accept(q.conversationId, button));
      return el(
        'li',
        { 'data-conversation-id': q.conversationId },
        el('span', { className: 'name' }, name),
        el('span', { className: 'meta' }, `waiting since ${clock(q.enqueuedAt)} · ${q.channel || 'web'}`),
        button,
      );
    }),
  );
  // A snapshot replaces the list: keep a keyboard user's place.
  if (focused) list.querySelector(`li[data-conversation-id="${CSS.escape(focused)}"] button`)?.focus();
  $('#queue-count').textContent = String(entries.length);
  $('#queue-empty').hidden = entries.length > 0;
}

const ACCEPT_REFUSED = {
  409: 'Another agent accepted this chat first.',
  410: 'This chat is no longer waiting.',
  404: 'This chat no longer exists.',
  429: 'You already hold as many chats as you may at once (chat.queue.max-concurrent-by-agent): close one first.',
};

async function accept(id, button) {
  notice(null);
  button.disabled = true;
  try {
    const meta = await api('POST', agentPath(id, '/accept'), { headers: who(), body: { agentId: me.id, displayName: me.name } });
    track(meta);
    select(id);
  } catch (err) {
    if (ACCEPT_REFUSED[err.status]) notice(ACCEPT_REFUSED[err.status]);
    else report('Could not accept', err);
    button.disabled = false;
  }
}

// --- my conversations -------------------------------------------------------------------------

/** Starts following `meta` (once): its transcript and its own socket. */
function track(meta) {
  const known = convs.get(meta.id);
  if (known) return update(known, meta);
  const c = { meta, unread: 0, state: 'offline', list: el('ol', { className: 'messages', role: 'log', 'aria-label': 'Messages' }) };
  c.transcript = new Transcript(c.list, {
    selfId: me.id,
    fetchAfter: (seq) => api('GET', agentPath(meta.id, `/messages?after=${seq}&limit=500`), { headers: who() }),
    onAdd: () => {
      if (selected !== meta.id) c.unread++;
      renderMine();
    },
  });
  convs.set(meta.id, c);
  if (meta.status !== 'CLOSED') {
    c.socket = new ChatSocket({
      // lastSeq 0 on the first join replays the history the server keeps.
      auth: () => ({ role: 'agent', token: me.id, displayName: me.name, conversationId: meta.id, lastSeq: c.transcript.lastSeq }),
      onEvent: (name, data) => onConversationEvent(c, name, data),
      onState: (state, detail) => {
        c.state = state;
        if (selected === meta.id) showConn($('#conv-conn'), state, detail);
      },
    });
    c.socket.connect();
  }
  renderMine();
}

function onConversationEvent(c, name, data) {
  if (name === 'chat:message') c.transcript.add(data);
  else if (name === 'system:event') {
    if (data?.conversation) update(c, data.conversation);
    if (data?.recovered === false) c.transcript.fill();
  } else if (name === 'system:error') report('The chat server refused', data);
}

function update(c, meta) {
  c.meta = meta;
  if (meta.status === 'CLOSED' && c.socket) {
    c.socket.close();
    c.socket = null;
  }
  renderMine();
  if (selected === meta.id) renderSelected();
}

function renderMine() {
  const items = [...convs.values()].reverse();
  $('#my-list').replaceChildren(
    ...items.map((c) => {
      const name = c.meta.customer?.displayName || c.meta.customer?.id || c.meta.id;
      const label = `${name}${c.meta.status === 'CLOSED' ? ' (closed)' : ''}`;
      const button = el(
        'button',
        { type: 'button', className: 'pick', 'aria-current': selected === c.meta.id ? 'true' : null },
        el('span', { className: 'name' }, label),
        c.unread ? el('span', { className: 'count', 'aria-label': `${c.unread} unread` }, String(c.unread)) : null,
      );
      button.addEventListener('click', () => select(c.meta.id));
      return el('li', { 'data-conversation-id': c.meta.id, 'data-status': c.meta.status }, button);
    }),
  );
  $('#mine-empty').hidden = items.length > 0;
}

function select(id) {
  selected = id;
  const c = convs.get(id);
  c.unread = 0;
  $('#transcript-slot').replaceChildren(c.list);
  c.list.scrollTop = c.list.scrollHeight;
  renderMine();
  renderSelected();
  if (!$('#message').disabled) $('#message').focus();
}

function renderSelected() {
  const c = convs.get(selected);
  const { meta } = c;
  const mine = meta.status === 'ASSIGNED' && meta.agent?.id === me.id;
  $('#conv-title').textContent = `Chat with ${meta.customer?.displayName || meta.customer?.id}`;
  const status = $('#conv-status');
  status.dataset.status = meta.status;
  status.textContent =
    meta.status === 'CLOSED'
      ? `Closed${meta.closeReason ? ` (${meta.closeReason})` : ''}.`
      : mine
        ? 'Assigned to you.'
        : `Status ${meta.status}: no longer assigned to you.`;
  $('#close').disabled = meta.status === 'CLOSED';
  $('#message').disabled = !mine;
  $('#send').disabled = !mine;
  showConn($('#conv-conn'), c.socket ? c.state : 'closed');
}

async function loadMine() {
  try {
    const list = await api('GET', '/api/agent/conversations?status=ASSIGNED', { headers: who() });
    for (const meta of list.reverse()) track(meta);
    if (!selected && convs.size) select([...convs.keys()].pop());
  } catch (err) {
    report('Could not load your conversations', err);
  }
}

$('#refresh').addEventListener('click', loadMine);

$('#close').addEventListener('click', async () => {
  notice(null);
  const c = convs.get(selected);
  try {
    update(c, await api('POST', agentPath(c.meta.id, '/close'), { headers: who(), body: { agentId: me.id, displayName: me.name } }));
  } catch (err) {
    report('Could not close', err);
  }
});

$('#send-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const c = convs.get(selected);
  const input = $('#message');
  const content = input.value.trim();
  if (!content || !c?.socket) return;
  input.value = '';
  try {
    const ack = await c.socket.emitWithAck('chat:message', { conversationId: c.meta.id, content, clientMessageId: randomId('m') });
    if (ack?.error) throw Object.assign(new Error(ack.error), { code: ack.code });
    c.transcript.add(ack);
  } catch (err) {
    input.value ||= content;
    report('Not sent', err);
  }
});

// --- signing in and out -----------------------------------------------------------------------

function goOnline() {
  $('#signin-view').hidden = true;
  $('#desk').hidden = false;
  $('#me').textContent = `${me.name} (${me.id})`;
  queueSocket = new ChatSocket({
    auth: () => ({ role: 'agent', token: me.id, displayName: me.name, scope: 'queue' }),
    onEvent: (name, data) => {
      if (name === 'queue:snapshot' && Array.isArray(data)) renderQueue(data);
      else if (name === 'system:error') report('The chat server refused', data);
    },
    onState: (state, detail) => showConn($('#queue-conn'), state, detail),
  });
  queueSocket.connect();
  loadMine();
}

$('#signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  notice(null);
  me = { id: $('#agent-id').value.trim(), name: $('#agent-name').value.trim() };
  if (!me.id || !me.name) return;
  sessionStorage.setItem(KEY, JSON.stringify(me));
  goOnline();
});

$('#signout').addEventListener('click', () => {
  queueSocket?.close();
  for (const c of convs.values()) c.socket?.close();
  convs.clear();
  selected = null;
  me = null;
  sessionStorage.removeItem(KEY);
  location.reload();
});

if (me) goOnline();
else {
  $('#agent-id').value = randomId('agent');
  $('#agent-name').focus();
}
