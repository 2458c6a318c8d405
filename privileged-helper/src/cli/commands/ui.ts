/**
 * `ai-sandbox ui`: web mode of the desktop app. Serves the built renderer on 127.0.0.1 and bridges the
 * app's API (ui/contract.ts) over a WebSocket on the same port. A random token in the printed URL is
 * required for the page and for the socket (and the socket's Origin must be this server), so another
 * local user or a web page in the user's browser cannot drive the helper through it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { daemonConfig } from '../../config.js';
import { HelperLink } from '../../ui/helper-link.js';
import { UiSession } from '../../ui/session.js';
import { parseArgs, parseNumber, UsageError } from '../args.js';

export const UI_HELP = `usage: ai-sandbox ui [--port N] [--open FILE]

Web mode of the desktop app: serve the app on http://127.0.0.1:PORT and bridge it to the helper
(${daemonConfig().socketPath}) over a WebSocket. Prints the URL with a random access token: open it in a
browser on this machine. Ctrl-C stops it.

  --port N      port to listen on (default: a free one)
  --open FILE   the workflow file the app opens first (default: none, the app offers the examples)
  --dist DIR    the built renderer (default: renderer/dist of this checkout; build it with npm run build:ui)

Environment: AI_SANDBOX_SOCKET (the helper's socket), AI_SANDBOX_UI_TOKEN (a fixed token, for tests).`;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export function defaultDist(): string {
  return fileURLToPath(new URL('../../../../renderer/dist/', import.meta.url));
}

export interface UiServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

export async function startUiServer(opts: { port: number; dist: string; initialFile: string | null; socketPath: string; token?: string }): Promise<UiServer> {
  const token = opts.token ?? crypto.randomBytes(18).toString('base64url');
  const dist = path.resolve(opts.dist);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // the page itself carries the token in its URL; assets are public (they are the same for everyone)
    let rel = decodeURIComponent(url.pathname);
    if (rel === '/' || rel === '/index.html') {
      if (url.searchParams.get('token') !== token) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('ai-sandbox ui: open the URL printed by `ai-sandbox ui` (it carries the access token)\n');
        return;
      }
      rel = '/index.html';
    }
    const file = path.join(dist, path.normalize(rel));
    if (!file.startsWith(dist + path.sep) && file !== dist) {
      res.writeHead(404).end();
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(rel === '/index.html' ? `ai-sandbox ui: no built app in ${dist}: run npm run build:ui\n` : 'not found\n');
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(body);
    });
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * 1024 * 1024 });
  const sockets = new Set<WebSocket>();
  server.on('upgrade', (req, sock, head) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const origin = req.headers.origin;
    const host = req.headers.host ?? '';
    const sameOrigin = origin === undefined || origin === `http://${host}`;
    if (url.pathname !== '/api' || url.searchParams.get('token') !== token || !sameOrigin) {
      sock.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, sock, head, (ws) => {
      sockets.add(ws);
      const link = new HelperLink(opts.socketPath, 'ai-sandbox-ui');
      const session = new UiSession(link, { mode: 'web', initialFile: opts.initialFile }, (msg) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
      });
      void link.start();
      ws.on('message', (data) => {
        let raw: unknown;
        try {
          raw = JSON.parse(String(data));
        } catch {
          raw = null;
        }
        void session.handle(raw);
      });
      ws.on('close', () => {
        sockets.delete(ws);
        session.close();
        link.close();
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function uiCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--port': { value: true }, '--open': { value: true }, '--dist': { value: true } });
  if (p.positionals.length) throw new UsageError('usage: ai-sandbox ui [--port N] [--open FILE] [--dist DIR]');
  const port = p.flags.has('--port') ? parseNumber('--port', p.flags.get('--port')!.at(-1)!, { int: true, min: 0, max: 65535 }) : 0;
  const open = p.flags.get('--open')?.at(-1);
  const dist = p.flags.get('--dist')?.at(-1) ?? defaultDist();
  if (!fs.existsSync(path.join(dist, 'index.html'))) throw new UsageError(`no built app in ${dist}: run npm run build:ui first`);
  const ui = await startUiServer({
    port,
    dist,
    initialFile: open ? path.resolve(open) : null,
    socketPath: daemonConfig().socketPath!,
    ...(process.env.AI_SANDBOX_UI_TOKEN ? { token: process.env.AI_SANDBOX_UI_TOKEN } : {}),
  });
  process.stdout.write(`ai-sandbox ui: open ${ui.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await ui.close();
  return 0;
}
