/** The proxy's audit events in the daemon's SQLite file: kept after their sandbox is removed. */
import type { AuditEvent } from '../network/audit.js';
import type { Db } from './db.js';

const DEFAULT_LIMIT = 10_000;

export class AuditStore {
  private readonly insert;
  private readonly select;

  constructor(db: Db) {
    this.insert = db.prepare<[string, string, string, string, string]>(
      'INSERT INTO audit_events (sandbox, time, host, decision, event_json) VALUES (?, ?, ?, ?, ?)',
    );
    this.select = db.prepare<[string, number], { event_json: string }>(
      'SELECT event_json FROM (SELECT seq, event_json FROM audit_events WHERE sandbox = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq',
    );
  }

  append(e: AuditEvent): void {
    this.insert.run(e.sandbox, e.time, e.host, e.decision, JSON.stringify(e));
  }

  /** The newest `limit` events of a sandbox, oldest first. */
  list(sandbox: string, limit = DEFAULT_LIMIT): AuditEvent[] {
    return this.select.all(sandbox, limit).map((r) => JSON.parse(r.event_json) as AuditEvent);
  }
}
