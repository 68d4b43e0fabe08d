// The fan-out peer on the official Node `socket.io` 4.x server, behaving like livechat's
// gateway/examples/fanout.rs: a socket joins the room named by its handshake query parameter
// `room`; an incoming `pub` event is broadcast as `msg` (same arguments) to everyone in that
// room, the sender included. Default server settings (polling + websocket).
//
//   node server.mjs --port 3000 [--host 127.0.0.1] [--redis-url redis://127.0.0.1:6379]
//                                                  (env: PORT, HOST, REDIS_URL)
//
// `--redis-url URL` makes this process one node of a multi-node deployment: the official
// `@socket.io/redis-adapter` (with the `redis` client, pubClient + pubClient.duplicate())
// carries each room broadcast to the other nodes sharing that Redis, so a room's members may be
// spread over nodes. `listening on …` is printed once both Redis clients are connected. Its
// wire format is its own; it does not interoperate with the socketioxide peer's Redis adapter.
// Without the flag the server is the plain in-memory one (the Redis modules are not loaded).

import { createServer } from "node:http";
import { Server } from "socket.io";

function flag(name, env, dflt) {
  const i = process.argv.indexOf(name);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[env] ?? dflt;
}

const port = Number(flag("--port", "PORT", "3000"));
const host = flag("--host", "HOST", "127.0.0.1");
const redisUrl = flag("--redis-url", "REDIS_URL", "");

const httpServer = createServer();
const io = new Server(httpServer);

const redisClients = [];
if (redisUrl) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  // No reconnection at start-up: an unreachable Redis is a fatal error, not a silent retry loop.
  let connected = false;
  const pubClient = createClient({
    url: redisUrl,
    socket: { reconnectStrategy: (retries, cause) => (connected ? Math.min(retries * 50, 500) : cause) },
  });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) {
    c.on("error", (err) => console.error(`redis: ${err.message ?? err}`));
    redisClients.push(c);
  }
  try {
    await Promise.all([pubClient.connect(), subClient.connect()]);
  } catch (err) {
    console.error(`cannot connect to redis at ${redisUrl}: ${err.message ?? err}`);
    process.exit(1);
  }
  connected = true;
  io.adapter(createAdapter(pubClient, subClient));
}

io.on("connection", (socket) => {
  const room = socket.handshake.query.room;
  if (typeof room === "string") socket.join(room);
  socket.on("pub", (...args) => {
    // An ack callback is not forwarded (the Rust example ignores acks on `pub` too).
    const data = args.filter((a) => typeof a !== "function");
    if (typeof room === "string") io.to(room).emit("msg", ...data);
  });
});

httpServer.listen(port, host, () => {
  console.log(`listening on http://${host}:${httpServer.address().port}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    for (const c of redisClients) c.disconnect().catch(() => {});
    process.exit(0);
  });
}
