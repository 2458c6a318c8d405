/**
 * The proxy's decisions: every request is one audit event, kept per sandbox (the newest 10,000 in
 * memory, all of them in the daemon's SQLite store), and sent to whoever follows that sandbox.
 */
import type { AuditEvent } from './audit-event.js';

export type { AuditEvent };

export interface AuditSink {
  append(e: AuditEvent): void;
}

const KEEP = 10_000;

export class AuditLog implements AuditSink {
  private readonly bySandbox = new Map<string, AuditEvent[]>();
  private readonly followers = new Map<string, Set<(e: AuditEvent) => void>>();

  /** told of every event (the anomaly rules listen here) */
  readonly listeners: Array<(e: AuditEvent) => void> = [];

  constructor(private readonly persist: ((e: AuditEvent) => void) | null = null) {}

  append(e: AuditEvent): void {
    let list = this.bySandbox.get(e.sandbox);
    if (!list) this.bySandbox.set(e.sandbox, (list = []));
    list.push(e);
    if (list.length > KEEP) list.splice(0, list.length - KEEP);
    try {
      this.persist?.(e);
    } catch (err) {
      process.stderr.write(`ai-sandbox helper: cannot store an audit event: ${(err as Error).message}\n`);
    }
    for (const f of this.followers.get(e.sandbox) ?? []) f(e);
    for (const f of this.listeners) f(e);
  }

  events(sandbox: string): AuditEvent[] {
    return [...(this.bySandbox.get(sandbox) ?? [])];
  }

  follow(sandbox: string, fn: (e: AuditEvent) => void): () => void {
    let set = this.followers.get(sandbox);
    if (!set) this.followers.set(sandbox, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** a removed sandbox's in-memory events go (the store keeps them) */
  forget(sandbox: string): void {
    this.bySandbox.delete(sandbox);
  }
}
