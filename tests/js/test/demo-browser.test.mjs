// The built-in demo pages (`chat.demo.enabled`) in a real browser: Debian's Chromium driven by
// npm `playwright-core` (which downloads no browser of its own). A customer at `/` and an agent
// at `/agent` run the whole flow — start, queue with a live place in line (a second customer
// queued behind sees hers change when the first is accepted), accept from the live queue,
// messages both ways in order, a customer reconnect that resumes with `lastSeq` (a message
// sent meanwhile shows exactly once), the agent closes, the customer sees it — and the pages
// are screenshotted at each step into tests/js/artifacts/demo/ (gitignored).
//
// Environment: LIVECHAT_CHROMIUM (default /usr/bin/chromium), plus lib/chat.mjs's
// (LIVECHAT_CHAT_BIN, LIVECHAT_TEST_REDIS_URL, ...). Every wait is for a DOM condition,
// bounded by a timeout; nothing sleeps.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { startChatServer, useChatServer } from '../lib/chat.mjs';

const CHROMIUM = process.env.LIVECHAT_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts', 'demo');
/** One DOM condition's wait (page loads and socket round trips on a busy 2-CPU machine). */
const WAIT = { timeout: 20_000 };
/** The pages sign in the development way: whatever the suite's mode, this server trusts ids. */
const DEV = { 'chat.security': { mode: 'trust-headers' } };

function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the demo browser test drives Debian's chromium ` +
        '(scripts/test.sh installs it: apt-get install chromium), or set LIVECHAT_CHROMIUM to a Chromium binary',
    );
  }
  // --no-sandbox: CI and the dev machines run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** A page that records its script errors (a CSP refusal shows up here too). */
async function openPage(browser, url, errors, label) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 820 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT.timeout);
  page.on('pageerror', (e) => errors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${label} console: ${m.text()}`);
  });
  await page.goto(url);
  return page;
}

/** The messages a page shows, in DOM order. */
function transcript(page, list) {
  return page.$$eval(`${list} li.msg`, (items) =>
    items.map((li) => ({ seq: Number(li.dataset.seq), text: li.querySelector('.text').textContent })),
  );
}

describe('demo pages in Chromium', { timeout: 180_000 }, () => {
  const server = useChatServer({ executors: 2, config: DEV, label: 'livechat(demo)' });
  let browser;
  const errors = [];
  const shots = [];

  before(async () => {
    browser = await launchChromium();
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    if (shots.length) console.log(`demo screenshots:\n${shots.map((s) => `  ${s}`).join('\n')}`);
  });

  async function shot(page, name) {
    const file = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  }

  it('customer and agent run the whole flow, with a resume after a reconnect', async () => {
    const customer = await openPage(browser, `${server.url}/`, errors, 'customer');
    const agent = await openPage(browser, `${server.url}/agent`, errors, 'agent');
    const customerMessages = '#messages';
    const agentMessages = '#transcript-slot ol';

    // Customer: a name, then a conversation (REST) and its socket.
    await customer.getByLabel('Your name').fill('Bob Demo');
    await customer.getByRole('button', { name: 'Start chat' }).click();
    await customer.waitForSelector('#status[data-status="OPEN"]');
    await customer.waitForSelector('#conn[data-state="connected"]');
    const conversationId = await customer.evaluate(() => JSON.parse(sessionStorage.getItem('livechat-demo-customer')).conversationId);
    assert.match(conversationId, /^[A-Za-z0-9_-]+$/);
    await shot(customer, '1-customer-started');

    // Agent: online, watching the (empty) live queue.
    await agent.getByLabel('Agent id').fill('agent-ann');
    await agent.getByLabel('Display name').fill('Ann');
    await agent.getByRole('button', { name: 'Go online' }).click();
    await agent.waitForSelector('#queue-conn[data-state="connected"]');
    await agent.waitForSelector('#queue-empty', { state: 'visible' });

    // Customer asks for an agent: waiting, first in line.
    await customer.getByRole('button', { name: 'Ask for an agent' }).click();
    await customer.waitForSelector('#status[data-status="QUEUED"][data-position="0"]');
    await customer.locator('#status', { hasText: "You're next — about 2 minutes." }).waitFor(WAIT);

    // A second customer queues behind: number 2 in line.
    const second = await openPage(browser, `${server.url}/`, errors, 'second customer');
    await second.getByLabel('Your name').fill('Carol Demo');
    await second.getByRole('button', { name: 'Start chat' }).click();
    await second.waitForSelector('#conn[data-state="connected"]');
    await second.getByRole('button', { name: 'Ask for an agent' }).click();
    await second.waitForSelector('#status[data-status="QUEUED"][data-position="1"]');
    await second.locator('#status', { hasText: 'You are number 2 in the queue — about 4 minutes.' }).waitFor(WAIT);

    // The agent's queue shows both live (queue:snapshot), oldest first.
    const entry = agent.locator(`#queue-list li[data-conversation-id="${conversationId}"]`);
    await entry.waitFor(WAIT);
    assert.match(await entry.textContent(), /Bob Demo/);
    const behind = agent.locator('#queue-list li', { hasText: 'Carol Demo' });
    await behind.waitFor(WAIT);
    await shot(customer, '2-customer-queued');
    await shot(second, '2-second-customer-queued');
    await shot(agent, '2-agent-queue');

    // Accept: Bob leaves the queue, the conversation is the agent's, the customer is told (no
    // place in line any more); Carol, still waiting, moves up live (queue:position).
    await entry.getByRole('button', { name: 'Accept the chat with Bob Demo' }).click();
    await agent.waitForSelector(`#my-list li[data-conversation-id="${conversationId}"][data-status="ASSIGNED"]`);
    await agent.waitForSelector('#conv-status[data-status="ASSIGNED"]');
    await agent.waitForSelector('#conv-conn[data-state="connected"]');
    await entry.waitFor({ state: 'detached', ...WAIT });
    await customer.waitForSelector('#status[data-status="ASSIGNED"][data-position=""]');
    await customer.locator('#status', { hasText: 'chatting with Ann' }).waitFor(WAIT);
    await second.waitForSelector('#status[data-status="QUEUED"][data-position="0"]');
    await second.locator('#status', { hasText: "You're next — about 2 minutes." }).waitFor(WAIT);
    await shot(second, '3-second-customer-moved-up');

    // Carol gives up: the queue empties.
    await second.getByRole('button', { name: 'End chat' }).click();
    await second.waitForSelector('#status[data-status="CLOSED"]');
    await agent.waitForSelector('#queue-empty', { state: 'visible' });

    // Messages both ways, each seen on the other side before the next.
    const say = async (page, text) => {
      await page.getByLabel('Message', { exact: true }).fill(text);
      await page.getByLabel('Message', { exact: true }).press('Enter');
    };
    const conversation = [
      [customer, agent, agentMessages, 'Hi, my order has not arrived.'],
      [agent, customer, customerMessages, 'Hello Bob, let me look that up.'],
      [customer, agent, agentMessages, 'Order 1234, thanks!'],
      [agent, customer, customerMessages, 'It ships today.'],
    ];
    for (const [from, to, list, text] of conversation) {
      await say(from, text);
      await to.locator(`${list} li.msg`, { hasText: text }).waitFor(WAIT);
    }
    const expected = conversation.map(([, , , text], i) => ({ seq: i + 1, text }));
    assert.deepEqual(await transcript(customer, customerMessages), expected, 'customer transcript, in order');
    assert.deepEqual(await transcript(agent, agentMessages), expected, 'agent transcript, in order');
    await shot(customer, '3-customer-chatting');
    await shot(agent, '3-agent-chatting');

    // The customer's link goes down; the agent writes meanwhile.
    await customer.getByRole('button', { name: 'Disconnect' }).click();
    await customer.waitForSelector('#conn[data-state="offline"]');
    const away = 'Sent while you were away.';
    await say(agent, away);
    await agent.locator(`${agentMessages} li.msg`, { hasText: away }).waitFor(WAIT);
    assert.equal(await customer.locator(`${customerMessages} li.msg`, { hasText: away }).count(), 0, 'offline: not delivered yet');
    await shot(customer, '4-customer-offline');

    // Reconnect resumes with lastSeq: the missed message exactly once, no gap.
    await customer.getByRole('button', { name: 'Reconnect' }).click();
    await customer.waitForSelector('#conn[data-state="connected"]');
    await customer.locator(`${customerMessages} li.msg`, { hasText: away }).waitFor(WAIT);
    // Reconnect while connected (drop + rejoin at once), then the conversation goes on live.
    await customer.getByRole('button', { name: 'Reconnect' }).click();
    await customer.waitForSelector('#conn[data-state="connected"]');
    await say(customer, 'Back again.');
    await agent.locator(`${agentMessages} li.msg`, { hasText: 'Back again.' }).waitFor(WAIT);
    await say(agent, 'Welcome back.');
    await customer.locator(`${customerMessages} li.msg`, { hasText: 'Welcome back.' }).waitFor(WAIT);
    const after = [...expected, { seq: 5, text: away }, { seq: 6, text: 'Back again.' }, { seq: 7, text: 'Welcome back.' }];
    assert.deepEqual(await transcript(customer, customerMessages), after, 'customer after the reconnects: each once, in order');
    assert.deepEqual(await transcript(agent, agentMessages), after, 'agent transcript');
    await shot(customer, '5-customer-resumed');

    // Reloads: the customer tab resumes from sessionStorage (its transcript, then lastSeq); the
    // agent console rejoins its conversation with lastSeq 0 (the server replays the history).
    await customer.reload();
    await customer.waitForSelector('#conn[data-state="connected"]');
    await agent.reload();
    await agent.waitForSelector(`#my-list li[data-conversation-id="${conversationId}"]`);
    await agent.waitForSelector('#conv-conn[data-state="connected"]');
    await agent.locator(`${agentMessages} li.msg[data-seq="7"]`).waitFor(WAIT);
    await say(agent, 'After the reloads.');
    await customer.locator(`${customerMessages} li.msg`, { hasText: 'After the reloads.' }).waitFor(WAIT);
    const reloaded = [...after, { seq: 8, text: 'After the reloads.' }];
    assert.deepEqual(await transcript(customer, customerMessages), reloaded, 'customer after a reload');
    assert.deepEqual(await transcript(agent, agentMessages), reloaded, 'agent after a reload');

    // The agent closes; the customer sees the chat end (status and the SYSTEM message).
    await agent.getByRole('button', { name: 'Close chat' }).click();
    await agent.waitForSelector('#conv-status[data-status="CLOSED"]');
    await customer.waitForSelector('#status[data-status="CLOSED"]');
    await customer.locator(`${customerMessages} li.msg.system`, { hasText: 'Ann closed the chat.' }).waitFor(WAIT);
    assert.equal(await customer.getByLabel('Message', { exact: true }).isDisabled(), true, 'no sending into a closed chat');
    await customer.getByRole('button', { name: 'Start a new chat' }).waitFor(WAIT);
    await shot(customer, '6-customer-closed');
    await shot(agent, '6-agent-closed');

    assert.deepEqual(errors, [], 'no script or console errors on either page');
  });

  it('an agent at the per-agent cap is told so (429) and keeps the entry in the queue', async () => {
    // Four customers waiting (seeded over REST); the cap is chat.queue.max-concurrent-by-agent = 3.
    const ids = [];
    for (let k = 1; k <= 4; k++) {
      const c = await server.api.createConversation({ customerId: `cap-customer-${k}`, name: `Cap ${k}` });
      await server.api.queue(c.id);
      ids.push(c.id);
    }
    const agent = await openPage(browser, `${server.url}/agent`, errors, 'agent (cap)');
    await agent.getByLabel('Agent id').fill('agent-cap');
    await agent.getByLabel('Display name').fill('Cap Agent');
    await agent.getByRole('button', { name: 'Go online' }).click();
    for (const id of ids) await agent.locator(`#queue-list li[data-conversation-id="${id}"]`).waitFor(WAIT);
    for (const [k, id] of ids.slice(0, 3).entries()) {
      await agent.getByRole('button', { name: `Accept the chat with Cap ${k + 1}` }).click();
      await agent.waitForSelector(`#my-list li[data-conversation-id="${id}"][data-status="ASSIGNED"]`);
    }
    await agent.getByRole('button', { name: 'Accept the chat with Cap 4' }).click();
    await agent.locator('#notice', { hasText: 'as many chats as you may' }).waitFor(WAIT);
    assert.equal(await agent.locator(`#queue-list li[data-conversation-id="${ids[3]}"]`).count(), 1, 'still waiting');
    assert.equal(await agent.locator('#my-list li').count(), 3);
    await shot(agent, '7-agent-at-cap');
    assert.deepEqual(errors.filter((e) => !e.includes('429')), [], 'no script errors (the 429 itself is logged by the browser)');
  });

  it('serves the pages with their types and caching headers, outside /api', async () => {
    for (const [path, type] of [
      ['/', 'text/html'],
      ['/agent', 'text/html'],
      ['/demo/sio.js', 'text/javascript'],
      ['/demo/demo.css', 'text/css'],
    ]) {
      const res = await fetch(server.url + path);
      assert.equal(res.status, 200, path);
      assert.ok(res.headers.get('content-type').startsWith(type), `${path}: ${res.headers.get('content-type')}`);
      const etag = res.headers.get('etag');
      assert.ok(etag, `${path}: ETag`);
      const again = await fetch(server.url + path, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, `${path}: revalidation`);
    }
    assert.equal((await fetch(`${server.url}/demo/missing.js`)).status, 404);
  });
});

describe('demo pages outside development mode', { timeout: 90_000 }, () => {
  it('--demo=false: /, /agent and /demo/* are 404, the API is unchanged', async () => {
    const server = await startChatServer({ executors: 1, config: DEV, extraArgs: ['--demo=false'], label: 'livechat(no demo)' });
    try {
      for (const path of ['/', '/agent', '/demo/sio.js']) {
        const res = await fetch(server.url + path);
        assert.equal(res.status, 404, path);
        assert.equal((await res.json()).code, 'not_found', path);
      }
      assert.equal((await fetch(`${server.url}/api/agent/queue`, { headers: { 'X-Agent-Id': 'a' } })).status, 200);
    } finally {
      await server.close();
    }
  });

  it('jwt: off by default; enabled with --demo, the page says it cannot sign in', async () => {
    const jwt = { 'chat.security': { mode: 'jwt' }, 'chat.security.jwt': { secret: 'demo-test-secret-0123456789abcdef' } };
    const off = await startChatServer({ executors: 1, config: jwt, label: 'livechat(jwt)' });
    try {
      assert.equal((await fetch(`${off.url}/`)).status, 404, 'jwt: the demo is off unless asked for');
    } finally {
      await off.close();
    }
    const on = await startChatServer({ executors: 1, config: jwt, extraArgs: ['--demo'], label: 'livechat(jwt, demo)' });
    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext()).newPage();
      page.setDefaultTimeout(WAIT.timeout);
      await page.goto(`${on.url}/`);
      await page.getByLabel('Your name').fill('Bob');
      await page.getByRole('button', { name: 'Start chat' }).click();
      await page.locator('#notice', { hasText: 'chat.security.mode = "jwt"' }).waitFor(WAIT);
    } finally {
      await browser.close();
      await on.close();
    }
  });
});
