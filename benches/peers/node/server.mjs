// The fan-out peer on the official Node `socket.io` 4.x server, behaving like livechat's
// gateway/examples/fanout.rs: a socket joins the room named by its handshake query parameter
// `room`; an incoming `pub` event is broadcast as `msg` (same arguments) to everyone in that
// room, the sender included. Default server settings (polling + websocket).
//
//   node server.mjs --port 3000 [--host 127.0.0.1]     (env: PORT, HOST)

import { createServer } from "node:http";
import { Server } from "socket.io";

function flag(name, env, dflt) {
  const i = process.argv.indexOf(name);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[env] ?? dflt;
}

const port = Number(flag("--port", "PORT", "3000"));
const host = flag("--host", "HOST", "127.0.0.1");

const httpServer = createServer();
const io = new Server(httpServer);

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
    process.exit(0);
  });
}
