import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { APPLICATION_ID, BUSY_TIMEOUT_MS, MIGRATIONS, databaseFile, openDatabase, type Db, type Migration } from './db.js';

const dirs: string[] = [];
const open: Db[] = [];
afterEach(() => {
  open.splice(0).forEach((d) => d.open && d.close());
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

function tempFile(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'store-db-'));
  dirs.push(d);
  return databaseFile(path.join(d, 'state'));
}

function track(db: Db): Db {
  open.push(db);
  return db;
}

const applied = (db: Db) => db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as Array<{ version: number; name: string; applied_at: string }>;
const tables = (db: Db) => (db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>).map((r) => r.name);

function openError(file: string, opts?: Parameters<typeof openDatabase>[1]): AppError {
  try {
    track(openDatabase(file, opts));
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected openDatabase to fail');
}

describe('openDatabase', () => {
  it('creates the file, private, in WAL mode with foreign keys and a busy timeout, fully migrated', () => {
    const file = tempFile();
    const db = track(openDatabase(file));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(BUSY_TIMEOUT_MS);
    expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(applied(db).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(tables(db)).toEqual(['attempts', 'audit_events', 'events', 'runs', 'schema_migrations', 'steps', 'workflows']);
  });

  it('is idempotent: opening again (also while another handle is open) applies nothing twice', () => {
    const file = tempFile();
    const first = track(openDatabase(file));
    const before = applied(first);
    const second = track(openDatabase(file));
    expect(applied(second)).toEqual(before);
    first.close();
    second.close();
    const third = track(openDatabase(file));
    expect(applied(third)).toEqual(before);
    expect(tables(third)).toContain('runs');
  });

  it('upgrades a file from migration N to N+1, keeping its rows', () => {
    const file = tempFile();
    const v1 = track(openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) }));
    v1.prepare(`INSERT INTO workflows (id, name, source, plan_json, created_at) VALUES ('w-1', 'demo', NULL, '{}', 'now')`).run();
    v1.close();

    const next: Migration = { version: MIGRATIONS.length + 1, name: 'test: workflow labels', up: `ALTER TABLE workflows ADD COLUMN label TEXT NOT NULL DEFAULT 'none'` };
    const v2 = track(openDatabase(file, { migrations: [...MIGRATIONS, next] }));
    expect(applied(v2).map((m) => m.version)).toEqual([...MIGRATIONS.map((m) => m.version), next.version]);
    expect(v2.prepare('SELECT id, name, label FROM workflows').all()).toEqual([{ id: 'w-1', name: 'demo', label: 'none' }]);
  });

  it('rolls back a migration that fails, leaving the file at its old version', () => {
    const file = tempFile();
    track(openDatabase(file)).close();
    const broken: Migration = { version: MIGRATIONS.length + 1, name: 'test: broken', up: `CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);` };
    const err = openError(file, { migrations: [...MIGRATIONS, broken] });
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/migration \d+ \("test: broken"\) failed, nothing was changed/);
    const db = track(openDatabase(file));
    expect(applied(db)).toHaveLength(MIGRATIONS.length);
    expect(tables(db)).not.toContain('half');
  });

  it('refuses a file written by a newer ai-sandbox, saying so', () => {
    const file = tempFile();
    const later: Migration = { version: MIGRATIONS.length + 1, name: 'from the future', up: 'CREATE TABLE future (x INTEGER)' };
    track(openDatabase(file, { migrations: [...MIGRATIONS, later] })).close();
    const err = openError(file);
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/newer ai-sandbox.*Upgrade ai-sandbox, or move the file aside/);
  });

  it('refuses a file whose migration history diverged from this build', () => {
    const file = tempFile();
    track(openDatabase(file, { migrations: [{ version: 1, name: 'someone else', up: 'CREATE TABLE other (x INTEGER)' }] })).close();
    const err = openError(file);
    expect(err.code).toBe('DATA_CORRUPT');
    expect(err.message).toContain('"someone else"');
  });

  it('refuses a corrupted file with an error naming it and what to do', () => {
    const file = tempFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const err = openError(file);
    expect(err.code).toBe('DATA_CORRUPT');
    expect(err.message).toContain(`${file} is not a readable ai-sandbox database`);
    expect(err.message).toContain(`mv ${file} ${file}.bad`);
    expect(err.details).toMatchObject({ file, sqlite: 'SQLITE_NOTADB' });
  });

  it('refuses a damaged ai-sandbox file (header intact, pages gone) when it first reads them', () => {
    const file = tempFile();
    track(openDatabase(file)).close();
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(size - 100, 0xff), 0, size - 100, 100); // everything after the 100-byte header
    fs.closeSync(fd);
    const err = openError(file);
    expect(err.code).toBe('DATA_CORRUPT');
    expect(err.message).toContain(file);
  });

  it('refuses another program\'s SQLite file without changing it', () => {
    const file = tempFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const foreign = new Database(file);
    foreign.exec(`CREATE TABLE runs (id INTEGER PRIMARY KEY, what TEXT); INSERT INTO runs (what) VALUES ('theirs')`);
    foreign.close();
    const bytes = fs.readFileSync(file);

    const err = openError(file);
    expect(err.code).toBe('DATA_CORRUPT');
    expect(err.message).toContain(`${file} is a SQLite database, but not one of ai-sandbox's`);
    expect(err.message).toContain('tables: runs');
    expect(err.message).toContain('will not change it');
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
  });

  it('refuses a migration list with gaps (a programming error, caught before touching the file)', () => {
    const file = tempFile();
    expect(() => openDatabase(file, { migrations: [{ version: 2, name: 'skips one', up: '' }] })).toThrow(/expected 1/);
    expect(fs.existsSync(file)).toBe(false);
  });
});
