// Raw Engine.IO mode (`conformance --engine-io`): /engine.io/ echoes every
// message, text and binary, with no Socket.IO layer on top. Checked over a
// raw `ws` WebSocket (binary as binary frames) and over HTTP long-polling
// (binary as base64 `b...` packets).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { openPolling, openRawWebSocket } from '../lib/raw.mjs';

for (const executors of EXECUTOR_COUNTS) {
  describe(`raw Engine.IO echo (--engine-io, --executors ${executors})`, () => {
    const server = useServer('conformance', { executors, extraArgs: ['--engine-io'] });
    const raws = [];
    afterEach(() => {
      for (const r of raws.splice(0)) r.ws.terminate();
    });
    const openWs = async () => {
      const raw = await openRawWebSocket(server.url, '/engine.io/');
      raws.push(raw);
      raw.answerPings();
      return raw;
    };

    it('websocket open packet', async () => {
      const raw = await openWs();
      assert.equal(typeof raw.open.sid, 'string');
      assert.deepEqual(raw.open.upgrades, []);
      assert.equal(raw.open.pingInterval, 300);
      assert.equal(raw.open.pingTimeout, 200);
      assert.equal(raw.open.maxPayload, 1_000_000);
    });

    it('websocket: text messages are echoed', async () => {
      const raw = await openWs();
      for (const text of ['hello', 'ünïcödé ✓ 😀', '{"json":"stays text"}', '', '42["not socket.io"]']) {
        raw.ws.send(`4${text}`);
        await raw.waitText(`4${text}`);
      }
    });

    it('websocket: binary messages are echoed as binary frames', async () => {
      const raw = await openWs();
      const payloads = [Buffer.from([0, 1, 2, 3, 255]), Buffer.from('binary text'), randomBytes(64 * 1024)];
      for (const [i, payload] of payloads.entries()) {
        raw.ws.send(payload, { binary: true });
        await raw.frames.waitFor(() => raw.frames.calls.filter(([, bin]) => bin).length >= i + 1, {
          description: `binary echo #${i + 1}`,
        });
      }
      const echoed = raw.frames.calls.filter(([, bin]) => bin).map(([d]) => Buffer.from(d));
      assert.deepEqual(echoed, payloads);
    });

    it('websocket: many messages are echoed in order', async () => {
      const raw = await openWs();
      const sent = Array.from({ length: 50 }, (_, i) => `4msg ${i}`);
      for (const m of sent) raw.ws.send(m);
      await raw.waitText('4msg 49');
      assert.deepEqual(
        raw.texts().filter((t) => t.startsWith('4')),
        sent,
      );
    });

    it('polling: text and binary messages are echoed', async () => {
      const session = await openPolling(server.url, '/engine.io/');
      assert.deepEqual(session.open.upgrades, ['websocket']);
      assert.equal(await session.send('4hello polling ✓'), 'ok');
      assert.equal(await session.receiveUntil((p) => p.startsWith('4')), '4hello polling ✓');
      const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
      assert.equal(await session.send(`b${bin.toString('base64')}`), 'ok');
      const echoed = await session.receiveUntil((p) => p.startsWith('b'));
      assert.deepEqual(Buffer.from(echoed.slice(1), 'base64'), bin);
    });

    it('polling: several packets in one POST are all echoed', async () => {
      const session = await openPolling(server.url, '/engine.io/');
      const three = `b${Buffer.from('three').toString('base64')}`;
      assert.equal(await session.send('4one', '4two', three), 'ok');
      const isMessage = (p) => p.startsWith('4') || p.startsWith('b');
      assert.deepEqual(await session.collect(3, isMessage), ['4one', '4two', three]);
    });
  });
}
