import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { parseRange, type SlotAddresses } from './addressing.js';
import type { Nft, SlotOps } from './native-net.js';
import { NetPool } from './pool.js';

/** Records what a real NativeNet would be asked; `taken` interface names answer EEXIST. */
class FakeNet implements Nft, SlotOps {
  readonly log: string[] = [];
  constructor(private readonly taken = new Set<string>()) {}
  run(commands: string): Promise<string> {
    this.log.push(commands);
    return Promise.resolve('');
  }
  json(): Promise<unknown> {
    return Promise.resolve({});
  }
  close(): void {}
  create(a: SlotAddresses): Promise<void> {
    if (this.taken.has(a.ifname)) return Promise.reject(new AppError('ALREADY_EXISTS', `${a.ifname} exists`));
    this.log.push(`create ${a.ifname} ${a.address} via ${a.gateway}`);
    return Promise.resolve();
  }
  destroy(ifname: string): Promise<void> {
    this.log.push(`destroy ${ifname}`);
    return Promise.resolve();
  }
}

const opts = { range: parseRange('10.9.0.0/24'), prefix: 'tp', table: 't', dir: '/nonexistent', size: 2 };

describe('NetPool', () => {
  it('keeps slots ready, hands each out once, and replaces a released one with a fresh one', async () => {
    const net = new FakeNet();
    const pool = new NetPool(net, net, opts);
    pool.fill();
    await new Promise((r) => setTimeout(r, 10));
    expect(pool.readyCount).toBe(2);
    const a = await pool.take();
    const b = await pool.take();
    expect([a.addr.ifname, b.addr.ifname]).toEqual(['tp0', 'tp1']);
    expect(a.addr).toMatchObject({ address: '10.9.0.2', gateway: '10.9.0.1' });
    await pool.release(a);
    await pool.shutdown();
    expect(net.log.filter((l) => l.startsWith('create')).length).toBeGreaterThanOrEqual(3);
    expect(net.log).toContain('destroy tp0');
    expect(net.log).toContain('add element inet t ifaces { "tp0" }');
    expect(net.log).toContain('delete element inet t ifaces { "tp0" }');
    expect(pool.readyCount).toBe(0);
  });

  it('replaces a taken slot only after the start it serves, not during take()', async () => {
    const net = new FakeNet();
    const pool = new NetPool(net, net, opts);
    pool.fill();
    await new Promise((r) => setTimeout(r, 10));
    const made = () => net.log.filter((l) => l.startsWith('create')).length;
    expect(made()).toBe(2);
    await pool.take();
    await pool.take();
    expect(made()).toBe(2); // nothing asked of ai-sandbox-net on the start path
    await new Promise((r) => setTimeout(r, 40));
    expect(made()).toBe(4);
    expect(pool.readyCount).toBe(2);
    await pool.take();
    await pool.shutdown(); // a refill that has not started yet never starts
    await new Promise((r) => setTimeout(r, 40));
    expect(made()).toBe(4);
  });

  it('skips slots another instance holds (EEXIST) and says when the range is full', async () => {
    const net = new FakeNet(new Set(['tp0', 'tp1']));
    const pool = new NetPool(net, net, { ...opts, size: 0 });
    expect((await pool.take()).addr.ifname).toBe('tp2');
    const tiny = new NetPool(new FakeNet(new Set(['tp0'])), new FakeNet(), { ...opts, range: parseRange('10.9.0.0/28'), size: 0 });
    await Promise.all([tiny.take(), tiny.take(), tiny.take()]);
    await expect(tiny.take()).rejects.toThrow(/no free network slot in 10.9.0.0\/28/);
  });
});
