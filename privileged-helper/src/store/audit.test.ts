import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../network/audit.js';
import { AuditStore } from './audit.js';
import { openDatabase } from './db.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function event(sandbox: string, host: string): AuditEvent {
  return { sandbox, time: new Date().toISOString(), via: 'proxy', method: 'GET', host, port: 80, path: '/', decision: 'deny', rule: 'default deny', status: 403, bytesUp: 0, bytesDown: 0 };
}

describe('AuditStore', () => {
  it('keeps events per sandbox in a real SQLite file, across reopening', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-'));
    dirs.push(dir);
    const file = path.join(dir, 'a.db');
    let db = openDatabase(file);
    const s = new AuditStore(db);
    s.append(event('a', 'one.test'));
    s.append(event('b', 'two.test'));
    s.append(event('a', 'three.test'));
    db.close();
    db = openDatabase(file);
    const again = new AuditStore(db);
    expect(again.list('a').map((e) => e.host)).toEqual(['one.test', 'three.test']);
    expect(again.list('a', 1).map((e) => e.host)).toEqual(['three.test']);
    expect(again.list('c')).toEqual([]);
    db.close();
  });
});
