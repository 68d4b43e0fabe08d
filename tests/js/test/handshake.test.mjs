// Engine.IO / Socket.IO handshake on the wire, with a raw `ws` client and raw
// HTTP long-polling: the open packet `0{...}` (sid, upgrades, pingInterval,
// pingTimeout, maxPayload), the ping flags, `--transports websocket`, and
// the Socket.IO CONNECT / CONNECT_ERROR packets.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EXECUTOR_COUNTS, useServer } from '../lib/server.mjs';
import { openPolling, openRawWebSocket } from '../lib/raw.mjs';

function assertOpenPacket(open, { upgrades, pingInterval = 300, pingTimeout = 200 }) {
  assert.equal(typeof open.sid, 'string');
  assert.ok(open.sid.length > 0, 'sid is not empty');
  assert.deepEqual(open.upgrades, upgrades);
  assert.equal(open.pingInterval, pingInterval);
  assert.equal(open.pingTimeout, pingTimeout);
  assert.equal(open.maxPayload, 1_000_000);
}

for (const executors of EXECUTOR_COUNTS) {
  describe(`handshake (--executors ${executors})`, () => {
    const server = useServer('conformance', { executors });
    const raws = [];
    afterEach(() => {
      for (const r of raws.splice(0)) r.ws.terminate();
    });
    const openWs = async () => {
      const raw = await openRawWebSocket(server.url);
      raws.push(raw);
      return raw;
    };

    it('websocket open packet: sid, upgrades [], pingInterval 300, pingTimeout 200, maxPayload 1000000', async () => {
      const raw = await openWs();
      assertOpenPacket(raw.open, { upgrades: [] });
    });

    it('every connection gets its own sid', async () => {
      const sids = new Set();
      for (let i = 0; i < 5; i++) sids.add((await openWs()).open.sid);
      assert.equal(sids.size, 5);
    });

    it('polling open packet offers the websocket upgrade', async () => {
      const session = await openPolling(server.url);
      assertOpenPacket(session.open, { upgrades: ['websocket'] });
    });

    it('raw CONNECT to / is answered with 40{"sid"} and the auth event', async () => {
      const raw = await openWs();
      raw.ws.send('40');
      const connect = await raw.waitText((t) => t.startsWith('40'));
      const ack = JSON.parse(connect.slice(2));
      assert.equal(typeof ack.sid, 'string');
      assert.ok(ack.sid.length > 0);
      assert.notEqual(ack.sid, raw.open.sid, 'the Socket.IO id differs from the Engine.IO id');
      await raw.waitText('42["auth",{}]');
    });

    it('raw CONNECT with an auth payload is echoed', async () => {
      const raw = await openWs();
      raw.ws.send('40{"token":"123"}');
      await raw.waitText('42["auth",{"token":"123"}]');
    });

    it('raw CONNECT to /custom and to an unknown namespace', async () => {
      const raw = await openWs();
      raw.ws.send('40/custom,');
      await raw.waitText((t) => t.startsWith('40/custom,{'));
      await raw.waitText('42/custom,["auth",{}]');
      raw.ws.send('40/nope,');
      const error = await raw.waitText((t) => t.startsWith('44/nope,'));
      assert.deepEqual(JSON.parse(error.slice('44/nope,'.length)), { message: 'Invalid namespace' });
    });
  });

  describe(`handshake with --ping-interval-ms 250 --ping-timeout-ms 150 (--executors ${executors})`, () => {
    const server = useServer('conformance', {
      executors,
      extraArgs: ['--ping-interval-ms', '250', '--ping-timeout-ms', '150'],
    });

    it('open packet reports the configured ping values', async () => {
      const raw = await openRawWebSocket(server.url);
      try {
        assertOpenPacket(raw.open, { upgrades: [], pingInterval: 250, pingTimeout: 150 });
      } finally {
        raw.ws.terminate();
      }
    });
  });

  describe(`handshake with --transports websocket (--executors ${executors})`, () => {
    const server = useServer('conformance', { executors, extraArgs: ['--transports', 'websocket'] });

    it('websocket handshake works and offers no upgrades', async () => {
      const raw = await openRawWebSocket(server.url);
      try {
        assertOpenPacket(raw.open, { upgrades: [] });
      } finally {
        raw.ws.terminate();
      }
    });

    it('a polling handshake is refused with HTTP 400', async () => {
      const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      assert.equal(res.status, 400);
    });
  });
}
