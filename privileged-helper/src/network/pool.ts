/**
 * Network slots made ahead of time, so a networked sandbox starts nearly as fast as one without
 * network. A used slot is never handed out again: it is destroyed (its namespace, veth pair and nft
 * elements go) and a fresh one is made in the background, so no socket, conntrack entry or neighbour
 * of one sandbox can meet the next.
 */
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import { slotAddresses, type NetRange, type SlotAddresses } from './addressing.js';
import type { Nft, SlotOps } from './native-net.js';
import { addInterface, removeInterface } from './rules.js';

export interface NetSlot {
  addr: SlotAddresses;
  nsPath: string;
}

export interface PoolOptions {
  range: NetRange;
  prefix: string;
  table: string;
  /** where the namespace files go */
  dir: string;
  size: number;
  /** run on a new slot before it is ready (files it will need), and on its way out */
  prepare?: (s: NetSlot) => void;
  dispose?: (s: NetSlot) => void;
}

/** how long after a take the pool starts replacing the slot (the start it serves is done by then) */
const REFILL_DELAY_MS = 10;

export class NetPool {
  private readonly ready: NetSlot[] = [];
  private readonly inUse = new Set<number>();
  private filling = 0;
  private next = 0;
  private closed = false;
  private refill: NodeJS.Timeout | null = null;
  private readonly background = new Set<Promise<unknown>>();

  constructor(
    private readonly ops: SlotOps,
    private readonly nft: Nft,
    private readonly opts: PoolOptions,
  ) {}

  get readyCount(): number {
    return this.ready.length;
  }

  /** Keep `size` slots ready (background, never throws). */
  fill(): void {
    while (!this.closed && this.ready.length + this.filling < this.opts.size) {
      this.filling++;
      this.track(
        this.make()
          .then((s) => {
            if (this.closed) return this.destroy(s);
            this.ready.push(s);
          })
          .catch((err: unknown) => {
            process.stderr.write(`ai-sandbox helper: network pool: ${AppError.from(err).message}\n`);
          })
          .finally(() => this.filling--),
      );
    }
  }

  /**
   * A ready slot, or one made now when the pool is empty. The replacement is made a little later, off
   * the sandbox's start: asking ai-sandbox-net for a slot wakes it, and on this 2-core host it took
   * the helper's CPU for ~1.6 ms (making the namespace) before the helper could send the spawn.
   */
  async take(): Promise<NetSlot> {
    const s = this.ready.shift() ?? (await this.make());
    if (!this.refill && !this.closed) {
      this.refill = setTimeout(() => {
        this.refill = null;
        this.fill();
      }, REFILL_DELAY_MS);
      this.refill.unref();
    }
    return s;
  }

  /** A slot back from a stopped sandbox: destroyed in the background, and replaced. */
  release(s: NetSlot): Promise<void> {
    const p = this.destroy(s).then(() => this.fill());
    this.track(p);
    return p;
  }

  /** Destroy the ready slots and wait for everything in flight. */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.refill) clearTimeout(this.refill);
    this.refill = null;
    while (this.background.size) await Promise.allSettled([...this.background]);
    await Promise.allSettled(this.ready.splice(0).map((s) => this.destroy(s)));
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private async make(): Promise<NetSlot> {
    for (let attempt = 0; attempt < 256; attempt++) {
      const index = this.next;
      this.next = (this.next + 1) % this.opts.range.slots;
      if (this.inUse.has(index)) continue;
      const addr = slotAddresses(this.opts.range, this.opts.prefix, index);
      const nsPath = path.join(this.opts.dir, addr.ifname);
      this.inUse.add(index);
      try {
        await this.ops.create(addr, nsPath);
      } catch (err) {
        this.inUse.delete(index);
        if (AppError.from(err).code === 'ALREADY_EXISTS') continue; // another instance holds it
        throw err;
      }
      try {
        await this.nft.run(addInterface(this.opts.table, addr.ifname));
      } catch (err) {
        await this.ops.destroy(addr.ifname, nsPath);
        this.inUse.delete(index);
        throw err;
      }
      const slot = { addr, nsPath };
      try {
        this.opts.prepare?.(slot);
      } catch (err) {
        await this.destroy(slot);
        throw err;
      }
      return slot;
    }
    throw new AppError('RESOURCE_EXHAUSTED', `no free network slot in ${this.opts.range.cidr}: too many networked sandboxes`, { retryable: true });
  }

  private async destroy(s: NetSlot): Promise<void> {
    await this.nft.run(removeInterface(this.opts.table, s.addr.ifname)).catch(() => undefined);
    await this.ops.destroy(s.addr.ifname, s.nsPath);
    this.opts.dispose?.(s);
    this.inUse.delete(s.addr.index);
  }
}
