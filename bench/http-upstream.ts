/**
 * The network benchmark's upstream: a keep-alive HTTP server in a process of its own (a real upstream
 * is not in the client's process, whose event loop would otherwise carry both ends of every download).
 * Forked by bench/network.ts; tells its port over IPC; serves /big (argv[2] bytes) and anything else as
 * a 3-byte body; exits when the benchmark disconnects.
 */
import http from 'node:http';
import type net from 'node:net';

const big = Buffer.alloc(Number(process.argv[2]), 7);
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.url === '/big') res.end(big);
  else res.end('ok\n');
});
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port }));
process.on('disconnect', () => process.exit(0));
