// livechat demo: the customer widget. Name → start a conversation (REST) → live socket →
// ask for an agent (REST queue; the place in line then follows `queue:position`) → messages
// both ways → end; survives reconnects and reloads by keeping the conversation id, the last
// `seq` and the transcript in sessionStorage.
// Plain JavaScript served by the livechat binary (no build step); see sio.js for why.
import { ChatSocket } from './sio.js';
import { $, Transcript, api, notice, randomId, report, showConn, waitWords } from './ui.js';

const KEY = 'livechat-demo-customer';
/**
 * Who this tab is, and its conversation: {participantId, name, conversationId?, lastSeq, messages,
 * queued?}; `queued` is the latest place in line ({position, estimatedWait}) while QUEUED.
 */
const saved = { participantId: randomId('customer'), name: '', messages: [], ...JSON.parse(sessionStorage.getItem(KEY) || '{}') };
let socket = null;
let transcript = null;
let conversation = null;

function save() {
  if (transcript) {
    saved.lastSeq = transcript.lastSeq;
    saved.messages = transcript.items.slice(-200);
  }
  sessionStorage.setItem(KEY, JSON.stringify(saved));
}

/** Development-mode identity: the id is believed as given (docs/api.md, "Identity"). */
const who = () => ({ 'X-Participant-Id': saved.participantId, 'X-Participant-Name': saved.name });
const path = (rest = '') => `/api/conversations/${encodeURIComponent(saved.conversationId)}${rest}`;

/** The place in line in words: `position` is 0-based (0: served next). */
function placeText(q) {
  if (!q) return 'Waiting for an agent…';
  if (q.position === 0) return `You're next — ${waitWords(q.estimatedWait)}.`;
  return `You are number ${q.position + 1} in the queue — ${waitWords(q.estimatedWait)}.`;
}

function setStatus(conv) {
  conversation = conv;
  const status = conv.status;
  // Out of the queue (accepted, timed out, ended): the place in line is history.
  if (status !== 'QUEUED' && saved.queued) {
    saved.queued = null;
    save();
  }
  const line = $('#status');
  line.dataset.status = status;
  line.dataset.position = status === 'QUEUED' && saved.queued ? String(saved.queued.position) : '';
  if (status === 'OPEN') line.textContent = 'You are connected. Ask for an agent when you are ready.';
  else if (status === 'QUEUED') line.textContent = placeText(saved.queued);
  else if (status === 'ASSIGNED') line.textContent = `You are chatting with ${conv.agent?.displayName || 'an agent'}.`;
  else line.textContent = 'This chat has ended.';
  const closed = status === 'CLOSED';
  $('#queue').disabled = status !== 'OPEN';
  $('#close').disabled = closed;
  $('#drop').disabled = closed;
  $('#reconnect').disabled = closed;
  $('#message').disabled = closed;
  $('#send').disabled = closed;
  $('#new').hidden = !closed;
  if (closed && socket) {
    socket.close();
    socket = null;
  }
}

function onEvent(name, data) {
  if (name === 'chat:message') transcript.add(data);
  else if (name === 'system:event') {
    if (data?.conversation) setStatus(data.conversation);
    // A resume the server could not serve whole: fetch the rest over REST.
    if (data?.recovered === false) transcript.fill();
    if (data?.type === 'CONVERSATION_ACCEPTED') notice(null);
  } else if (name === 'queue:position') {
    // The server sends it only after telling us QUEUED, and never after telling us otherwise;
    // checking the status here too keeps an older server's (or a late event's) word out.
    if (data?.conversationId !== saved.conversationId || conversation?.status !== 'QUEUED') return;
    saved.queued = { position: data.position, estimatedWait: data.estimatedWait };
    save();
    setStatus(conversation);
  } else if (name === 'system:error') {
    report('The chat server refused', data);
    if (data?.code === 'not_found' || data?.code === 'gone') setStatus({ ...conversation, status: 'CLOSED' });
  }
}

function connect() {
  socket?.close();
  socket = new ChatSocket({
    auth: () => ({
      role: 'customer',
      token: saved.participantId,
      displayName: saved.name,
      conversationId: saved.conversationId,
      lastSeq: transcript.lastSeq,
    }),
    onEvent,
    onState: (state, detail) => showConn($('#conn'), state, detail),
  });
  socket.connect();
}

function openChat(conv) {
  $('#start-view').hidden = true;
  $('#chat-view').hidden = false;
  $('#messages').replaceChildren();
  transcript = new Transcript($('#messages'), {
    selfId: saved.participantId,
    fetchAfter: (seq) => api('GET', path(`/messages?after=${seq}&limit=500`), { headers: who() }),
    onAdd: save,
  });
  transcript.restore(saved.messages);
  save();
  setStatus(conv);
  if (conv.status !== 'CLOSED') connect();
  $('#message').focus();
}

function showStart() {
  socket?.close();
  socket = null;
  $('#chat-view').hidden = true;
  $('#start-view').hidden = false;
  $('#name').value = saved.name;
  $('#name').focus();
}

$('#start-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  notice(null);
  saved.name = $('#name').value.trim();
  if (!saved.name) return;
  $('#start').disabled = true;
  try {
    const conv = await api('POST', '/api/conversations', { headers: who(), body: { channel: 'web', displayName: saved.name } });
    Object.assign(saved, { conversationId: conv.id, lastSeq: 0, messages: [], queued: null });
    openChat(conv);
  } catch (err) {
    report('Could not start the chat', err);
  } finally {
    $('#start').disabled = false;
  }
});

$('#queue').addEventListener('click', async () => {
  notice(null);
  try {
    saved.queued = null;
    const answer = await api('POST', path('/queue'), { headers: who(), body: { channel: 'web' } });
    // A live `queue:position` that came first is newer than the answer.
    saved.queued ||= answer;
    save();
    // The socket's CONVERSATION_QUEUED event may have come first: show the position now.
    if (conversation?.status === 'QUEUED' || conversation?.status === 'OPEN') setStatus({ ...conversation, status: 'QUEUED' });
  } catch (err) {
    report('Could not ask for an agent', err);
  }
});

$('#close').addEventListener('click', async () => {
  notice(null);
  try {
    setStatus(await api('DELETE', path(), { headers: who() }));
  } catch (err) {
    report('Could not end the chat', err);
  }
});

$('#drop').addEventListener('click', () => socket?.drop());
// Drop the socket and connect again at once: the handshake's lastSeq replays what was missed.
$('#reconnect').addEventListener('click', () => {
  socket?.drop();
  socket?.connect();
});

$('#new').addEventListener('click', () => {
  Object.assign(saved, { conversationId: null, lastSeq: 0, messages: [], queued: null });
  transcript = null;
  save();
  showStart();
});

$('#send-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#message');
  const content = input.value.trim();
  if (!content || !socket) return;
  input.value = '';
  try {
    // A clientMessageId makes a retried send store once.
    const ack = await socket.emitWithAck('chat:message', { conversationId: saved.conversationId, content, clientMessageId: randomId('m') });
    if (ack?.error) throw Object.assign(new Error(ack.error), { code: ack.code });
    transcript.add(ack);
  } catch (err) {
    input.value ||= content;
    report('Not sent', err);
  }
});

// A reload resumes the tab's conversation, if the server still has it.
if (saved.conversationId) {
  api('GET', path(), { headers: who() })
    .then(openChat)
    .catch((err) => {
      if (err.status !== 404) report('Could not resume your chat', err);
      Object.assign(saved, { conversationId: null, lastSeq: 0, messages: [], queued: null });
      save();
      showStart();
    });
} else {
  showStart();
}
