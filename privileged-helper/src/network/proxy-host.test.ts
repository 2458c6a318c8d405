import { describe, expect, it } from 'vitest';
import type { AuditEvent } from './audit.js';
import { ProxyHost, type FromWorker, type ProxySpec, type ToWorker, type WorkerLike } from './proxy-host.js';

/** a worker that answers what the test tells it to, and can die */
class FakeWorker implements WorkerLike {
  readonly got: ToWorker[] = [];
  terminated = false;
  private readonly fns: Record<string, Array<(x: never) => void>> = { message: [], error: [], exit: [] };
  constructor(private readonly answer: (m: ToWorker) => string | null | 'silent' = () => null) {}
  postMessage(m: ToWorker): void {
    this.got.push(m);
    const a = this.answer(m);
    if (a !== 'silent') queueMicrotask(() => this.emit('message', { kind: 'reply', id: m.id, error: a }));
  }
  on(event: string, fn: (x: never) => void): this {
    this.fns[event]!.push(fn);
    return this;
  }
  emit(event: 'message', m: FromWorker): void;
  emit(event: 'exit', code: number): void;
  emit(event: 'error', err: Error): void;
  emit(event: string, x: unknown): void {
    for (const fn of this.fns[event]!) fn(x as never);
  }
  terminate(): Promise<number> {
    this.terminated = true;
    this.emit('exit', 1);
    return Promise.resolve(1);
  }
  unref(): void {}
}

const spec = (sandbox: string): ProxySpec => ({ sandbox, gateway: '10.231.0.1', policy: { allow: ['a.test'], deny: [] }, pins: [], range: { cidr: '10.231.0.0/16', base: 0, prefixLen: 16 } as ProxySpec['range'] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ProxyHost (the proxies worker thread, faked)', () => {
  it('starts a proxy in the worker, forwards its audit events, and closes it there', async () => {
    const events: AuditEvent[] = [];
    const w = new FakeWorker();
    const host = new ProxyHost({ append: (e) => events.push(e) }, () => w, () => {});
    const h = await host.start(spec('sb1'));
    expect(w.got).toEqual([{ op: 'start', id: 1, spec: spec('sb1') }]);
    const ev = { sandbox: 'sb1', time: 't', via: 'proxy', method: 'GET', host: 'a.test', port: 80, path: '/', decision: 'allow', rule: 'allow a.test', status: 200, bytesUp: 0, bytesDown: 3 } as const;
    w.emit('message', { kind: 'audit', event: ev });
    expect(events).toEqual([ev]);
    await h.close();
    expect(w.got[1]).toEqual({ op: 'close', id: 1 });
    await host.close();
    expect(w.terminated).toBe(true);
    await expect(host.start(spec('sb2'))).rejects.toThrow(/shut down/);
  });

  it('a start the worker refuses rejects with its reason and is not started again later', async () => {
    const workers: FakeWorker[] = [];
    const host = new ProxyHost({ append: () => {} }, () => {
      const w = new FakeWorker((m) => (m.op === 'start' && m.spec.sandbox === 'bad' ? 'listen EADDRINUSE 10.231.0.1:3128' : null));
      workers.push(w);
      return w;
    }, () => {});
    await expect(host.start(spec('bad'))).rejects.toThrow('EADDRINUSE');
    await host.start(spec('good'));
    workers[0]!.emit('exit', 1);
    await sleep(10);
    expect(workers[1]!.got.map((m) => m.op === 'start' && m.spec.sandbox)).toEqual(['good']);
    await host.close();
  });

  it('when the worker dies: what waited on it fails, the live proxies start again in a new worker, and it says so', async () => {
    const workers: FakeWorker[] = [];
    const warnings: string[] = [];
    let silent = false;
    const host = new ProxyHost({ append: () => {} }, () => {
      const w = new FakeWorker(() => (silent ? 'silent' : null));
      workers.push(w);
      return w;
    }, (m) => warnings.push(m));
    await host.start(spec('sb1'));
    const h2 = await host.start(spec('sb2'));
    silent = true;
    const waiting = host.start(spec('sb3'));
    workers[0]!.emit('error', new Error('boom in the proxy'));
    workers[0]!.emit('exit', 1);
    await expect(waiting).rejects.toThrow(/proxy worker ended/);
    silent = false;
    await sleep(10);
    expect(workers).toHaveLength(2);
    expect(workers[1]!.got.map((m) => m.op === 'start' && m.spec.sandbox)).toEqual(['sb1', 'sb2']);
    expect(warnings.join('\n')).toMatch(/boom in the proxy.*live proxies start again/s);
    await h2.close();
    expect(workers[1]!.got.at(-1)).toEqual({ op: 'close', id: 2 });
    await host.close();
  });

  it('a worker that keeps dying is started again at most once a second', async () => {
    const workers: FakeWorker[] = [];
    const host = new ProxyHost({ append: () => {} }, () => {
      const w = new FakeWorker();
      workers.push(w);
      return w;
    }, () => {});
    await host.start(spec('sb1'));
    workers[0]!.emit('exit', 1);
    await sleep(10);
    workers[1]!.emit('exit', 1);
    await sleep(100);
    expect(workers).toHaveLength(2); // the third waits for the spacing
    await host.close(); // and a closed host starts none
    await sleep(1000);
    expect(workers).toHaveLength(2);
  });
});
