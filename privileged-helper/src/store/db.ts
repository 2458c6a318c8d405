/**
 * The helper's SQLite database: opening it, checking that it is ours, and bringing its schema up to date.
 *
 * Threat model: only root writes the state directory, so the file's contents are trusted as far as intent
 * goes, but not as far as shape: it may be left over from another program, truncated by a full disk, or
 * written by a newer ai-sandbox. Each of those is refused with the file's path and what to do, before
 * anything in it is changed; the helper never "repairs" a file it did not create.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AppError } from '../errors/app-error.js';

export type Db = Database.Database;

export const DB_FILE_NAME = 'ai-sandbox.db';

/** Written into the file header so a foreign SQLite file is told apart from ours without guessing by tables. */
export const APPLICATION_ID = 0x41495342; // "AISB"

/** How long a writer waits for another process's lock (the daemon and an embedded CLI share the file). */
export const BUSY_TIMEOUT_MS = 5000;

export interface Migration {
  /** 1, 2, 3, ... in order, never renumbered */
  version: number;
  /** stored with the version, so a file whose history diverged from ours is noticed */
  name: string;
  /** SQL run once, inside the same transaction as its record in schema_migrations */
  up: string;
}

/**
 * Every schema change is a new entry at the end; an applied entry is never edited, because files in the
 * field already carry it. Status columns have no CHECK constraints on purpose: SQLite cannot alter a CHECK
 * without rebuilding the table, and a new status should be an additive change. The TypeScript types in
 * runs.ts are the check.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'workflow runs',
    up: `
      CREATE TABLE workflows (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        source      TEXT,
        plan_json   TEXT NOT NULL,
        created_at  TEXT NOT NULL
      );
      CREATE INDEX workflows_by_name ON workflows (name);

      CREATE TABLE runs (
        id                TEXT PRIMARY KEY,
        workflow_id       TEXT NOT NULL REFERENCES workflows (id),
        status            TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        started_at        TEXT,
        finished_at       TEXT,
        parent_run_id     TEXT REFERENCES runs (id),
        replay_from_step  TEXT,
        overrides_json    TEXT,
        error             TEXT
      );
      CREATE INDEX runs_by_created ON runs (created_at);
      CREATE INDEX runs_by_workflow ON runs (workflow_id, created_at);
      CREATE INDEX runs_by_status ON runs (status);

      CREATE TABLE steps (
        run_id         TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step_id        TEXT NOT NULL,
        position       INTEGER NOT NULL,
        status         TEXT NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        sandbox        TEXT,
        started_at     TEXT,
        finished_at    TEXT,
        duration_ms    REAL,
        exit_json      TEXT,
        outputs_dir    TEXT,
        snapshot_id    TEXT,
        snapshot_kind  TEXT,
        reason         TEXT,
        PRIMARY KEY (run_id, step_id)
      ) WITHOUT ROWID;

      CREATE TABLE attempts (
        run_id       TEXT NOT NULL,
        step_id      TEXT NOT NULL,
        n            INTEGER NOT NULL,
        sandbox      TEXT,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        exit_json    TEXT,
        error        TEXT,
        PRIMARY KEY (run_id, step_id, n),
        FOREIGN KEY (run_id, step_id) REFERENCES steps (run_id, step_id) ON DELETE CASCADE
      ) WITHOUT ROWID;

      CREATE TABLE events (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step_id       TEXT,
        time          TEXT NOT NULL,
        kind          TEXT NOT NULL,
        payload_json  TEXT NOT NULL,
        FOREIGN KEY (run_id, step_id) REFERENCES steps (run_id, step_id) ON DELETE CASCADE
      );
      CREATE INDEX events_by_run ON events (run_id, seq);
    `,
  },
  {
    version: 2,
    name: 'proxy audit events',
    up: `
      CREATE TABLE audit_events (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        sandbox       TEXT NOT NULL,
        time          TEXT NOT NULL,
        host          TEXT NOT NULL,
        decision      TEXT NOT NULL,
        event_json    TEXT NOT NULL
      );
      CREATE INDEX audit_by_sandbox ON audit_events (sandbox, seq);
    `,
  },
];

export function databaseFile(stateRoot: string): string {
  return path.join(stateRoot, DB_FILE_NAME);
}

export interface OpenOptions {
  /** tests pass a shorter or longer list to prove upgrades; the helper uses MIGRATIONS */
  migrations?: readonly Migration[];
}

const MOVE_ASIDE = (file: string) =>
  `Move it aside (\`mv ${file} ${file}.bad\`) and restart the helper to start with an empty history, ` +
  `or point AI_SANDBOX_STATE_ROOT at another directory.`;

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Turn SQLite's terse failures into errors that name the file and say what to do. */
function explain(file: string, err: unknown): AppError {
  if (err instanceof AppError) return err;
  const code = sqliteCode(err) ?? '';
  const said = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new AppError('DATA_CORRUPT', `${file} is not a readable ai-sandbox database (SQLite says: ${said}). ${MOVE_ASIDE(file)}`, {
      details: { file, sqlite: code },
      cause: err,
    });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM') {
    return new AppError('PERMISSION_DENIED', `cannot open ${file} for writing (SQLite says: ${said}); the helper needs to own ${path.dirname(file)}`, {
      details: { file, sqlite: code },
      cause: err,
    });
  }
  if (code === 'SQLITE_BUSY') {
    return new AppError('INTERNAL', `${file} stayed locked by another process for ${BUSY_TIMEOUT_MS} ms; is another helper stuck?`, {
      details: { file },
      retryable: true,
      cause: err,
    });
  }
  return new AppError('INTERNAL', `${file}: ${said}`, { details: { file, sqlite: code }, cause: err });
}

function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration "${m.name}" has version ${m.version}, expected ${i + 1}: versions run 1, 2, 3, ... without gaps`);
  });
}

/**
 * Refuse a file that is SQLite but not ours before touching it: switching its journal mode or creating our
 * tables in it would change somebody else's data.
 */
function checkOwnership(db: Db, file: string): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  if (appId === APPLICATION_ID) return;
  const tables = (db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>).map((r) => r.name);
  if (appId === 0 && tables.length === 0) return; // a new, empty file: ours to set up
  const what = tables.length > 0 ? `tables: ${tables.slice(0, 8).join(', ')}${tables.length > 8 ? ', ...' : ''}` : 'no tables';
  throw new AppError(
    'DATA_CORRUPT',
    `${file} is a SQLite database, but not one of ai-sandbox's (application_id 0x${appId.toString(16)}, ${what}). ` +
      `The helper will not change it. ${MOVE_ASIDE(file)}`,
    { details: { file, applicationId: appId, tables } },
  );
}

function migrate(db: Db, file: string, migrations: readonly Migration[]): void {
  // IMMEDIATE takes the write lock before reading what is applied, so two processes opening the same
  // fresh file cannot both apply migration 1.
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version     INTEGER PRIMARY KEY,
      name        TEXT NOT NULL,
      applied_at  TEXT NOT NULL
    )`);
    const applied = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as Array<{ version: number; name: string }>;
    const newest = applied.at(-1)?.version ?? 0;
    if (newest > migrations.length) {
      throw new AppError(
        'UNSUPPORTED',
        `${file} has schema version ${newest}, written by a newer ai-sandbox; this one knows up to ${migrations.length}. ` +
          `Upgrade ai-sandbox, or move the file aside (\`mv ${file} ${file}.newer\`) to start with an empty history.`,
        { details: { file, fileVersion: newest, knownVersion: migrations.length } },
      );
    }
    for (const a of applied) {
      const ours = migrations[a.version - 1];
      if (ours?.name !== a.name) {
        throw new AppError(
          'DATA_CORRUPT',
          `${file} records migration ${a.version} as "${a.name}", but this ai-sandbox's migration ${a.version} is "${ours?.name}": ` +
            `the file comes from a different build. ${MOVE_ASIDE(file)}`,
          { details: { file, version: a.version } },
        );
      }
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of migrations.slice(newest)) {
      try {
        db.exec(m.up);
      } catch (err) {
        throw new AppError('INTERNAL', `${file}: migration ${m.version} ("${m.name}") failed, nothing was changed: ${err instanceof Error ? err.message : String(err)}`, {
          details: { file, version: m.version },
          cause: err,
        });
      }
      record.run(m.version, m.name, new Date().toISOString());
    }
  }).immediate();
}

/**
 * Open (or create) the database at `file`, check it is ours, and apply the migrations it lacks.
 * Throws AppError naming the file: DATA_CORRUPT for a damaged or foreign file, UNSUPPORTED for a newer
 * schema, PERMISSION_DENIED when it cannot be written.
 */
export function openDatabase(file: string, opts: OpenOptions = {}): Db {
  const migrations = opts.migrations ?? MIGRATIONS;
  checkMigrationList(migrations);
  // Plans carry commands and environment values, which may hold secrets: root-only directory and file.
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const existed = fs.existsSync(file);
  let db: Db | undefined;
  try {
    db = new Database(file);
    if (!existed) fs.chmodSync(file, 0o600); // SQLite gives the -wal and -shm files the same mode
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    checkOwnership(db, file);
    // WAL: readers (list, show, watch) never block the engine's writes. synchronous=NORMAL in WAL mode
    // survives a helper crash (kill -9) intact; only an OS crash can lose the last few commits.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // No integrity_check here: it reads the whole file, and history only grows, so helper start would
    // slow down with age. Damage in pages we have not read yet surfaces as SQLITE_CORRUPT when read.
    migrate(db, file, migrations);
    return db;
  } catch (err) {
    db?.close();
    throw explain(file, err);
  }
}
