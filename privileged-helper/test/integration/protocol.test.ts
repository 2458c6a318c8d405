/** The socket as an attacker or a buggy client meets it: every bad message gets a typed error. */
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../../src/protocol/frames.js';
import { TestHelper } from './harness.js';

function rawConnection(socket: string) {
  const sock = net.connect(socket);
  const decoder = new FrameDecoder();
  const queue: unknown[] = [];
  let waiter: (() => void) | null = null;
  sock.on('data', (d: Buffer) => {
    for (const f of decoder.push(d)) queue.push('value' in f ? f.value : f);
    waiter?.();
  });
  return {
    sock,
    send: (b: Buffer) => sock.write(b),
    async next(n = 1): Promise<unknown[]> {
      while (queue.length < n) await new Promise<void>((r) => (waiter = r));
      return queue.splice(0, n);
    },
  };
}

function rawFrame(text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

describe('helper socket protocol', () => {
  let helper: TestHelper;
  beforeAll(async () => {
    helper = await TestHelper.start();
  });
  afterAll(async () => helper?.destroy());

  it('is 0660 root:ai-sandbox', () => {
    const st = fs.statSync(helper.socket);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.uid).toBe(0);
    const group = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('ai-sandbox:'));
    expect(st.gid).toBe(Number(group!.split(':')[2]));
  });

  it('answers malformed, unknown, unauthenticated and invalid requests with typed errors', async () => {
    const c = rawConnection(helper.socket);
    c.send(rawFrame('{not json'));
    c.send(encodeFrame({ type: 'request', id: 1, op: 'sandbox.list', params: {} }));
    c.send(encodeFrame({ type: 'request', id: 2, op: 'hello', params: { protocol: [1, 1], client: 't' } }));
    c.send(encodeFrame({ type: 'request', id: 3, op: 'run.as.root', params: {} }));
    c.send(encodeFrame({ type: 'request', id: 4, op: 'sandbox.create', params: { spec: { command: ['true'], evil: 1 } } }));
    c.send(encodeFrame({ type: 'request', id: 5, op: 'sandbox.inspect', params: { name: '../../etc' } }));
    c.send(encodeFrame({ hello: 'world' }));
    const got = (await c.next(7)) as Array<{ id: number | null; ok: boolean; error?: { code: string; message: string } }>;
    expect(got.map((r) => [r.id, r.ok, r.error?.code])).toEqual([
      [null, false, 'BAD_REQUEST'],
      [1, false, 'UNSUPPORTED_PROTOCOL'],
      [2, true, undefined],
      [3, false, 'UNKNOWN_OPERATION'],
      [4, false, 'BAD_REQUEST'],
      [5, false, 'BAD_REQUEST'],
      [null, false, 'BAD_REQUEST'],
    ]);
    expect(got[4]!.error!.message).toMatch(/evil/);
    c.sock.destroy();
  });

  it('survives 10,000 malformed frames and stays responsive', async () => {
    const c = rawConnection(helper.socket);
    const junk: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      junk.push(i % 3 === 0 ? rawFrame(`garbage ${i}`) : i % 3 === 1 ? encodeFrame({ type: 'request', id: i, op: 'nope' }) : encodeFrame([i]));
    }
    c.send(Buffer.concat(junk));
    const answers = (await c.next(10_000)) as Array<{ ok: boolean }>;
    expect(answers.every((a) => a.ok === false)).toBe(true);
    const client = await helper.client();
    expect((await client.call('sandbox.list', {})).sandboxes).toEqual([]);
    client.close();
    c.sock.destroy();
  });

  it('closes a connection that announces an impossible frame, and keeps serving others', async () => {
    const c = rawConnection(helper.socket);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(0xffffffff);
    c.send(head);
    const [err] = (await c.next(1)) as Array<{ error: { code: string } }>;
    expect(err!.error.code).toBe('BAD_REQUEST');
    await new Promise((r) => c.sock.once('close', r));
    const client = await helper.client();
    expect(client.helloResult?.protocol).toBe(1);
    client.close();
  });
});
