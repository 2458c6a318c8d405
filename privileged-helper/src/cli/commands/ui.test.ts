import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startUiServer, type UiServer } from './ui.js';

let ui: UiServer;
let dist: string;

beforeAll(async () => {
  dist = fs.mkdtempSync(path.join(os.tmpdir(), 'ui-test-'));
  fs.writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>app</title>');
  fs.mkdirSync(path.join(dist, 'assets'));
  fs.writeFileSync(path.join(dist, 'assets', 'a.js'), 'console.log(1)');
  ui = await startUiServer({ port: 0, dist, initialFile: null, socketPath: path.join(dist, 'no-helper.sock'), token: 'secret-token' });
});
afterAll(async () => {
  await ui.close();
  fs.rmSync(dist, { recursive: true, force: true });
});

function open(query: string, origin?: string): Promise<{ ws: WebSocket; messages: unknown[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ui.port}/api${query}`, origin ? { origin } : {});
    const messages: unknown[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('error', reject);
  });
}

async function until<T>(fn: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ai-sandbox ui', () => {
  it('listens on 127.0.0.1 and prints a URL with the token', () => {
    expect(ui.url).toBe(`http://127.0.0.1:${ui.port}/?token=secret-token`);
  });

  it('serves the page only with the token, and assets without', async () => {
    expect((await fetch(ui.url)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${ui.port}/`)).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${ui.port}/?token=wrong`)).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${ui.port}/assets/a.js`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${ui.port}/assets/..%2f..%2f..%2fetc%2fpasswd`)).status).toBe(404);
  });

  it('refuses a WebSocket without the token or from another origin', async () => {
    await expect(open('?token=wrong')).rejects.toThrow(/403/);
    await expect(open('')).rejects.toThrow(/403/);
    await expect(open('?token=secret-token', 'http://evil.example')).rejects.toThrow(/403/);
  });

  it('bridges the contract: local operations answer, helper ones say the helper is not running', async () => {
    const { ws, messages } = await open('?token=secret-token', `http://127.0.0.1:${ui.port}`);
    ws.send(JSON.stringify({ type: 'call', id: 1, method: 'examples.list', params: {} }));
    ws.send(JSON.stringify({ type: 'call', id: 2, method: 'sandbox.list', params: {} }));
    ws.send('{ not json');
    const byId = (id: number) => messages.find((m) => (m as { type: string; id?: number }).type === 'result' && (m as { id: number }).id === id) as Record<string, unknown> | undefined;
    const examples = await until(() => byId(1));
    expect(examples).toMatchObject({ ok: true });
    expect((examples.result as { examples: Array<{ name: string }> }).examples.map((e) => e.name)).toContain('agent-pipeline');
    expect(await until(() => byId(2))).toMatchObject({ ok: false, error: { code: 'HELPER_UNAVAILABLE' } });
    expect(await until(() => byId(-1))).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    const status = await until(() => messages.find((m) => (m as { type: string; status?: { state: string } }).type === 'status' && (m as { status: { state: string } }).status.state === 'unavailable'));
    expect(JSON.stringify(status)).toMatch(/ai-sandbox helper/);
    ws.close();
  });
});
