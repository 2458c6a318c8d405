import { describe, expect, it } from 'vitest';
import type { StreamFrame } from '../protocol/schema.js';
import type { HelperStatus, UiServerMessage } from './contract.js';
import type { HelperLink } from './helper-link.js';
import { UiSession } from './session.js';

/** A helper link that answers from a table and lets the test push stream frames. */
function fakeLink() {
  const status: HelperStatus = { state: 'connected', message: 'ok', startCommand: 'sudo ai-sandbox helper', helperVersion: '0.1.0' };
  const calls: Array<[string, unknown]> = [];
  const streams = new Map<string, (f: StreamFrame) => Promise<void> | void>();
  const link = {
    status,
    onStatus: () => () => {},
    call: async (op: string, params: unknown) => {
      calls.push([op, params]);
      if (op === 'sandbox.logs') return { stream: 's1' };
      if (op === 'sandbox.list') return { sandboxes: [] };
      throw Object.assign(new Error('nope'), { code: 'NOT_FOUND' });
    },
    onStream: (id: string, fn: (f: StreamFrame) => Promise<void> | void) => streams.set(id, fn),
  };
  return { link: link as unknown as HelperLink, calls, streams };
}

function session() {
  const f = fakeLink();
  const sent: UiServerMessage[] = [];
  const s = new UiSession(f.link, { mode: 'web', initialFile: null }, (m) => sent.push(m));
  const results = () => sent.filter((m): m is Extract<UiServerMessage, { type: 'result' }> => m.type === 'result');
  return { ...f, s, sent, results };
}

describe('UiSession', () => {
  it('says the helper status first', () => {
    const { sent } = session();
    expect(sent[0]).toMatchObject({ type: 'status', status: { state: 'connected' } });
  });

  it('checks every message against the contract before doing anything', async () => {
    const { s, calls, results } = session();
    await s.handle('not an object');
    await s.handle({ type: 'call', id: 1, method: 'sandbox.create', params: { spec: { command: ['sh'] } } });
    await s.handle({ type: 'call', id: 2, method: 'sandbox.logs', params: { name: '../etc' } });
    await s.handle({ type: 'call', id: 3, method: 'sandbox.list', params: { extra: 1 } });
    await s.handle({ type: 'call', id: 4, method: 'file.open', params: { path: '/etc/shadow' } });
    await s.handle({ type: 'call', id: 5, method: 'sandbox.list', params: {}, more: true });
    expect(calls).toEqual([]);
    expect(results().map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['BAD_REQUEST', 'BAD_REQUEST', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'BAD_REQUEST']);
    expect(JSON.stringify(results()[1])).toContain('unknown method \\"sandbox.create\\"');
  });

  it('forwards helper calls with defaults applied, and helper errors in words', async () => {
    const { s, calls, results } = session();
    await s.handle({ type: 'call', id: 7, method: 'sandbox.logs', params: { name: 'demo' } });
    await s.handle({ type: 'call', id: 8, method: 'sandbox.inspect', params: { name: 'gone' } });
    expect(calls[0]).toEqual(['sandbox.logs', { name: 'demo', follow: false }]);
    expect(results()[0]).toMatchObject({ id: 7, ok: true, result: { stream: 's1' } });
    expect(results()[1]).toMatchObject({ id: 8, ok: false, error: { message: 'nope' } });
  });

  it('acknowledges output to the helper only once the app acknowledged it', async () => {
    const { s, streams, sent } = session();
    await s.handle({ type: 'call', id: 1, method: 'sandbox.logs', params: { name: 'demo', follow: true } });
    const deliver = streams.get('s1')!;
    const acked: number[] = [];
    for (const seq of [0, 1, 2]) void (deliver({ type: 'stream', stream: 's1', seq, kind: 'stdout', data: 'aGk=' }) as Promise<void>).then(() => acked.push(seq));
    expect(deliver({ type: 'stream', stream: 's1', seq: 3, kind: 'event', event: { type: 'dropped', frames: 1, bytes: 2 } })).toBeUndefined();
    await Promise.resolve();
    expect(acked).toEqual([]);
    expect(sent.filter((m) => m.type === 'stream')).toHaveLength(4);
    await s.handle({ type: 'ack', stream: 's1', seq: 1 });
    await new Promise((r) => setTimeout(r, 0));
    expect(acked).toEqual([0, 1]);
    deliver({ type: 'stream', stream: 's1', seq: 4, kind: 'event', event: { type: 'end' } });
    await new Promise((r) => setTimeout(r, 0));
    expect(acked).toEqual([0, 1, 2]);
  });
});
