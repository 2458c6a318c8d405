/**
 * The history of workflow runs: workflows (their plans), runs, steps, attempts and events, in SQLite.
 * Synchronous on purpose: better-sqlite3 is, and the engine calls it between awaits, so a status change
 * and its event are on disk before anyone is told about them. Whatever changes several rows at once runs
 * in one transaction, so a crash never leaves a run half-created or half-interrupted.
 *
 * Threat model: callers are the helper's own engine and RPC handlers; ids arriving from the socket are
 * already schema-checked, and every value reaches SQL as a bound parameter. Column names in the update
 * statements come from fixed tables below, never from the caller's keys.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { AppError } from '../errors/app-error.js';
import type { ExitReport } from '../protocol/schema.js';
import type { WorkflowPlan } from '../workflow/plan.js';
import { openDatabase, type Db, type OpenOptions } from './db.js';

import { RUN_STATUSES, STEP_STATUSES, type RunStatus, type StepStatus } from '../workflow/run-state.js';

export { RUN_STATUSES, STEP_STATUSES, type RunStatus, type StepStatus };

/** A run that is not finished: what markInterrupted looks for at helper start. */
const ACTIVE_RUN: readonly RunStatus[] = ['queued', 'running'];
/** A step with a sandbox that died with the helper. */
const ACTIVE_STEP: readonly StepStatus[] = ['running', 'retrying'];

export type SnapshotKind = 'light' | 'full';

export interface WorkflowRow {
  id: string;
  name: string;
  /** absolute path of the workflow file, or null when it came as text */
  source: string | null;
  plan: WorkflowPlan;
  createdAt: string;
}

export interface RunRow {
  id: string;
  workflowId: string;
  /** the workflow's name, joined in: what lists show and filter on */
  workflowName: string;
  status: RunStatus;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** for a replay: the run it replays, and the first step it re-executes */
  parentRunId: string | null;
  replayFromStep: string | null;
  /** edits a replay applies (env, args, input files); the engine defines and validates their shape */
  overrides: Record<string, unknown> | null;
  error: string | null;
}

export interface StepRow {
  runId: string;
  stepId: string;
  /** index in the plan's order: how steps are listed */
  position: number;
  status: StepStatus;
  attempts: number;
  /** the sandbox of the current (or last) attempt */
  sandbox: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  exit: ExitReport | null;
  /** host directory holding the step's outputs */
  outputsDir: string | null;
  snapshotId: string | null;
  snapshotKind: SnapshotKind | null;
  /** why it was skipped, cancelled, failed or interrupted, in words */
  reason: string | null;
}

export interface AttemptRow {
  runId: string;
  stepId: string;
  /** 1 for the first attempt */
  n: number;
  sandbox: string | null;
  startedAt: string;
  finishedAt: string | null;
  exit: ExitReport | null;
  /** what went wrong outside the sandbox's own exit (failed to start, snapshot failed, helper stopped) */
  error: string | null;
}

export interface EventRow {
  /** increasing over the whole database, so `afterSeq` pages without gaps or repeats */
  seq: number;
  runId: string;
  stepId: string | null;
  time: string;
  kind: string;
  payload: unknown;
}

export interface RunDetail {
  run: RunRow;
  /** in plan order */
  steps: StepRow[];
  /** by step (plan order), then attempt number */
  attempts: AttemptRow[];
}

export interface NewRun {
  workflowId: string;
  plan: WorkflowPlan;
  parentRunId?: string | null;
  replayFromStep?: string | null;
  overrides?: object | null;
}

export type RunUpdate = Partial<Pick<RunRow, 'status' | 'startedAt' | 'finishedAt' | 'error'>>;
export type StepUpdate = Partial<Omit<StepRow, 'runId' | 'stepId' | 'position'>>;
export type AttemptStart = { sandbox?: string | null; startedAt?: string };
export type AttemptFinish = { finishedAt?: string; exit?: ExitReport | null; error?: string | null };

export const DEFAULT_LIST_LIMIT = 50;
export const DEFAULT_EVENTS_LIMIT = 500;
/** one page of events never holds more than this, whatever is asked: a page is held in memory whole */
export const MAX_PAGE = 10_000;

export interface RunStoreOptions {
  /** tests pin the clock; timestamps are ISO 8601 strings in UTC */
  now?: () => Date;
}

/** How a column is written: its SQL name, and the value as SQLite stores it. */
type Column = { name: string; encode?: (v: unknown) => unknown };
const json: Column['encode'] = (v) => (v === null ? null : JSON.stringify(v));

const RUN_COLUMNS: Record<keyof RunUpdate, Column> = {
  status: { name: 'status' },
  startedAt: { name: 'started_at' },
  finishedAt: { name: 'finished_at' },
  error: { name: 'error' },
};

const STEP_COLUMNS: Record<keyof StepUpdate, Column> = {
  status: { name: 'status' },
  attempts: { name: 'attempts' },
  sandbox: { name: 'sandbox' },
  startedAt: { name: 'started_at' },
  finishedAt: { name: 'finished_at' },
  durationMs: { name: 'duration_ms' },
  exit: { name: 'exit_json', encode: json },
  outputsDir: { name: 'outputs_dir' },
  snapshotId: { name: 'snapshot_id' },
  snapshotKind: { name: 'snapshot_kind' },
  reason: { name: 'reason' },
};

interface WorkflowRecord {
  id: string;
  name: string;
  source: string | null;
  plan_json: string;
  created_at: string;
}
interface RunRecord {
  id: string;
  workflow_id: string;
  workflow_name: string;
  status: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  parent_run_id: string | null;
  replay_from_step: string | null;
  overrides_json: string | null;
  error: string | null;
}
interface StepRecord {
  run_id: string;
  step_id: string;
  position: number;
  status: string;
  attempts: number;
  sandbox: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  exit_json: string | null;
  outputs_dir: string | null;
  snapshot_id: string | null;
  snapshot_kind: string | null;
  reason: string | null;
}
interface AttemptRecord {
  run_id: string;
  step_id: string;
  n: number;
  sandbox: string | null;
  started_at: string;
  finished_at: string | null;
  exit_json: string | null;
  error: string | null;
}
interface EventRecord {
  seq: number;
  run_id: string;
  step_id: string | null;
  time: string;
  kind: string;
  payload_json: string;
}

/** A JSON column that does not parse is damage, not a bug in the caller: say where it is. */
function parse<T>(text: string | null, where: string): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new AppError('DATA_CORRUPT', `the stored ${where} is not valid JSON; the database may be damaged`, { details: { where }, cause: err });
  }
}

const toWorkflow = (r: WorkflowRecord): WorkflowRow => ({
  id: r.id,
  name: r.name,
  source: r.source,
  plan: parse<WorkflowPlan>(r.plan_json, `plan of workflow ${r.id}`)!,
  createdAt: r.created_at,
});

const toRun = (r: RunRecord): RunRow => ({
  id: r.id,
  workflowId: r.workflow_id,
  workflowName: r.workflow_name,
  // Statuses are written only through the typed API; a value from a newer build passes through as is.
  status: r.status as RunStatus,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  parentRunId: r.parent_run_id,
  replayFromStep: r.replay_from_step,
  overrides: parse<Record<string, unknown>>(r.overrides_json, `overrides of run ${r.id}`),
  error: r.error,
});

const toStep = (r: StepRecord): StepRow => ({
  runId: r.run_id,
  stepId: r.step_id,
  position: r.position,
  status: r.status as StepStatus,
  attempts: r.attempts,
  sandbox: r.sandbox,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  durationMs: r.duration_ms,
  exit: parse<ExitReport>(r.exit_json, `exit report of step ${r.step_id} in run ${r.run_id}`),
  outputsDir: r.outputs_dir,
  snapshotId: r.snapshot_id,
  snapshotKind: r.snapshot_kind as SnapshotKind | null,
  reason: r.reason,
});

const toAttempt = (r: AttemptRecord): AttemptRow => ({
  runId: r.run_id,
  stepId: r.step_id,
  n: r.n,
  sandbox: r.sandbox,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  exit: parse<ExitReport>(r.exit_json, `exit report of attempt ${r.n} of step ${r.step_id} in run ${r.run_id}`),
  error: r.error,
});

const toEvent = (r: EventRecord): EventRow => ({
  seq: r.seq,
  runId: r.run_id,
  stepId: r.step_id,
  time: r.time,
  kind: r.kind,
  payload: parse<unknown>(r.payload_json, `payload of event ${r.seq}`),
});

function isForeignKeyError(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

function clampLimit(limit: number | undefined, fallback: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1) throw new AppError('INVALID_ARGUMENT', `a page limit is a whole number from 1 to ${MAX_PAGE}, not ${limit}`);
  return Math.min(limit, MAX_PAGE);
}

const RUN_SELECT = `SELECT r.*, w.name AS workflow_name FROM runs r JOIN workflows w ON w.id = r.workflow_id`;
const placeholders = (xs: readonly unknown[]) => xs.map(() => '?').join(', ');

/** Prepared once per store: appendEvent and updateStep are on the engine's per-step path. */
function prepareStatements(db: Db) {
  return {
    findWorkflow: db.prepare<[string, string], { id: string }>('SELECT id FROM workflows WHERE name = ? AND plan_json = ? ORDER BY created_at LIMIT 1'),
    getWorkflow: db.prepare<[string], WorkflowRecord>('SELECT * FROM workflows WHERE id = ?'),
    insertWorkflow: db.prepare('INSERT INTO workflows (id, name, source, plan_json, created_at) VALUES (?, ?, ?, ?, ?)'),
    workflowExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM workflows WHERE id = ?'),
    runExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM runs WHERE id = ?'),
    insertRun: db.prepare(
      `INSERT INTO runs (id, workflow_id, status, created_at, parent_run_id, replay_from_step, overrides_json)
       VALUES (?, ?, 'queued', ?, ?, ?, ?)`,
    ),
    insertStep: db.prepare(`INSERT INTO steps (run_id, step_id, position, status) VALUES (?, ?, ?, 'queued')`),
    getRun: db.prepare<[string], RunRecord>(`${RUN_SELECT} WHERE r.id = ?`),
    stepsOf: db.prepare<[string], StepRecord>('SELECT * FROM steps WHERE run_id = ? ORDER BY position'),
    attemptsOf: db.prepare<[string], AttemptRecord>(
      `SELECT a.* FROM attempts a JOIN steps s ON s.run_id = a.run_id AND s.step_id = a.step_id
       WHERE a.run_id = ? ORDER BY s.position, a.n`,
    ),
    nextAttempt: db.prepare<[string, string], { n: number }>('SELECT COALESCE(MAX(n), 0) + 1 AS n FROM attempts WHERE run_id = ? AND step_id = ?'),
    insertAttempt: db.prepare('INSERT INTO attempts (run_id, step_id, n, sandbox, started_at) VALUES (?, ?, ?, ?, ?)'),
    countAttempt: db.prepare('UPDATE steps SET attempts = ?, sandbox = ? WHERE run_id = ? AND step_id = ?'),
    finishAttempt: db.prepare(
      `UPDATE attempts SET finished_at = ?, exit_json = COALESCE(?, exit_json), error = COALESCE(?, error)
       WHERE run_id = ? AND step_id = ? AND n = ?`,
    ),
    insertEvent: db.prepare('INSERT INTO events (run_id, step_id, time, kind, payload_json) VALUES (?, ?, ?, ?, ?)'),
    events: db.prepare<[string, number, number], EventRecord>('SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
    listRuns: db.prepare<[number], RunRecord>(`${RUN_SELECT} ORDER BY r.created_at DESC, r.rowid DESC LIMIT ?`),
    listRunsOf: db.prepare<[string, number], RunRecord>(`${RUN_SELECT} WHERE w.name = ? ORDER BY r.created_at DESC, r.rowid DESC LIMIT ?`),
    activeRuns: db.prepare<string[], { id: string }>(`SELECT id FROM runs WHERE status IN (${placeholders(ACTIVE_RUN)}) ORDER BY created_at, rowid`),
  };
}

export class RunStore {
  private readonly now: () => string;
  private readonly updates = new Map<string, Database.Statement>();
  private readonly stmt: ReturnType<typeof prepareStatements>;

  constructor(
    readonly db: Db,
    opts: RunStoreOptions = {},
  ) {
    const clock = opts.now ?? (() => new Date());
    this.now = () => clock().toISOString();
    this.stmt = prepareStatements(db);
  }

  /** Open (creating and migrating) the database file and a store over it; close() closes the file. */
  static open(file: string, opts: RunStoreOptions & OpenOptions = {}): RunStore {
    return new RunStore(openDatabase(file, opts), opts);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Record a workflow's plan. The same plan recorded again (same name, identical JSON) gives back the
   * existing row, so running one file a hundred times keeps one workflow with a hundred runs.
   */
  createWorkflow(plan: WorkflowPlan): WorkflowRow {
    return this.db.transaction((): WorkflowRow => {
      const planJson = JSON.stringify(plan);
      const found = this.stmt.findWorkflow.get(plan.name, planJson);
      if (found) return this.getWorkflow(found.id)!;
      const id = this.freshId('w-', 4, (c) => this.stmt.workflowExists.get(c) !== undefined);
      const createdAt = this.now();
      this.stmt.insertWorkflow.run(id, plan.name, plan.source, planJson, createdAt);
      return { id, name: plan.name, source: plan.source, plan, createdAt };
    })();
  }

  getWorkflow(id: string): WorkflowRow | null {
    const r = this.stmt.getWorkflow.get(id);
    return r ? toWorkflow(r) : null;
  }

  /** A new run, status queued, with every step of `plan` queued in plan order. */
  createRun(req: NewRun): RunDetail {
    const parentRunId = req.parentRunId ?? null;
    const replayFromStep = req.replayFromStep ?? null;
    if (replayFromStep !== null) {
      if (parentRunId === null) throw new AppError('INVALID_ARGUMENT', `a replay from step "${replayFromStep}" needs the run it replays (parentRunId)`);
      if (!req.plan.steps.some((s) => s.id === replayFromStep)) {
        throw new AppError('INVALID_ARGUMENT', `workflow "${req.plan.name}" has no step "${replayFromStep}"; its steps are: ${req.plan.order.join(', ')}`, {
          details: { step: replayFromStep, steps: req.plan.order },
        });
      }
    }
    return this.db.transaction((): RunDetail => {
      if (!this.stmt.workflowExists.get(req.workflowId)) throw new AppError('NOT_FOUND', `no workflow ${req.workflowId}: record it with createWorkflow first`);
      if (parentRunId !== null && !this.stmt.runExists.get(parentRunId)) {
        throw new AppError('NOT_FOUND', `no run ${parentRunId} to replay (see \`ai-sandbox workflow list\`)`);
      }
      const id = this.freshId('r-', 4, (c) => this.stmt.runExists.get(c) !== undefined);
      const overrides = req.overrides === undefined || req.overrides === null ? null : JSON.stringify(req.overrides);
      this.stmt.insertRun.run(id, req.workflowId, this.now(), parentRunId, replayFromStep, overrides);
      req.plan.steps.forEach((s, i) => this.stmt.insertStep.run(id, s.id, i));
      return this.getRun(id)!;
    })();
  }

  updateRun(id: string, fields: RunUpdate): void {
    const { changes } = this.update('runs', RUN_COLUMNS, fields, 'id = ?', [id]);
    if (changes === 0) throw new AppError('NOT_FOUND', `no run ${id}`);
  }

  updateStep(runId: string, stepId: string, fields: StepUpdate): void {
    const { changes } = this.update('steps', STEP_COLUMNS, fields, 'run_id = ? AND step_id = ?', [runId, stepId]);
    if (changes === 0) throw new AppError('NOT_FOUND', `run ${runId} has no step "${stepId}"`);
  }

  /** Start attempt n+1 of a step; the step's `attempts` and `sandbox` follow in the same transaction. */
  addAttempt(runId: string, stepId: string, start: AttemptStart = {}): AttemptRow {
    return this.db.transaction((): AttemptRow => {
      const { n } = this.stmt.nextAttempt.get(runId, stepId)!;
      const sandbox = start.sandbox ?? null;
      const startedAt = start.startedAt ?? this.now();
      const { changes } = this.stmt.countAttempt.run(n, sandbox, runId, stepId);
      if (changes === 0) throw new AppError('NOT_FOUND', `run ${runId} has no step "${stepId}"`);
      this.stmt.insertAttempt.run(runId, stepId, n, sandbox, startedAt);
      return { runId, stepId, n, sandbox, startedAt, finishedAt: null, exit: null, error: null };
    })();
  }

  finishAttempt(runId: string, stepId: string, n: number, end: AttemptFinish = {}): void {
    const exit = end.exit === undefined || end.exit === null ? null : JSON.stringify(end.exit);
    const { changes } = this.stmt.finishAttempt.run(end.finishedAt ?? this.now(), exit, end.error ?? null, runId, stepId, n);
    if (changes === 0) throw new AppError('NOT_FOUND', `run ${runId} has no attempt ${n} of step "${stepId}"`);
  }

  /** Append to a run's event history; returns the event's seq. */
  appendEvent(runId: string, stepId: string | null, kind: string, payload: unknown): number {
    try {
      const r = this.stmt.insertEvent.run(runId, stepId, this.now(), kind, JSON.stringify(payload) ?? 'null');
      return Number(r.lastInsertRowid);
    } catch (err) {
      if (isForeignKeyError(err)) {
        throw new AppError('NOT_FOUND', stepId === null ? `no run ${runId}` : `run ${runId} has no step "${stepId}"`, { cause: err });
      }
      throw err;
    }
  }

  /** A page of a run's events, oldest first: pass the last seq seen as `afterSeq` for the next page. */
  events(runId: string, page: { afterSeq?: number; limit?: number } = {}): EventRow[] {
    return this.stmt.events.all(runId, page.afterSeq ?? 0, clampLimit(page.limit, DEFAULT_EVENTS_LIMIT)).map(toEvent);
  }

  /** Runs, newest first. */
  listRuns(query: { limit?: number; workflowName?: string } = {}): RunRow[] {
    const limit = clampLimit(query.limit, DEFAULT_LIST_LIMIT);
    const rows = query.workflowName === undefined ? this.stmt.listRuns.all(limit) : this.stmt.listRunsOf.all(query.workflowName, limit);
    return rows.map(toRun);
  }

  getRun(id: string): RunDetail | null {
    // One read transaction: the engine may write between statements otherwise, and a run would be shown
    // with steps from a later moment than its status.
    return this.db.transaction((): RunDetail | null => {
      const r = this.stmt.getRun.get(id);
      if (!r) return null;
      return { run: toRun(r), steps: this.stmt.stepsOf.all(id).map(toStep), attempts: this.stmt.attemptsOf.all(id).map(toAttempt) };
    })();
  }

  /**
   * At helper start, before the engine runs anything: every run still queued or running belonged to a
   * helper that is gone, and so are its sandboxes. Such runs and their running steps become `interrupted`,
   * their open attempts are closed, steps waiting for a slot go back to `queued` (nothing holds a slot any
   * more), and each run gets an `interrupted` event. Finished steps keep their results and snapshots, which
   * is what a resume starts from. Times are when this was noticed: when the helper died is not known.
   * Returns the ids of the runs it changed, oldest first.
   */
  markInterrupted(): string[] {
    return this.db.transaction((): string[] => {
      const ids = this.stmt.activeRuns.all(...ACTIVE_RUN).map((r) => r.id);
      if (ids.length === 0) return [];
      const now = this.now();
      const reason = 'the helper stopped while this was running';
      const inRuns = `run_id IN (${placeholders(ids)})`;
      this.db
        .prepare(`UPDATE steps SET status = 'interrupted', finished_at = ?, reason = COALESCE(reason, ?) WHERE ${inRuns} AND status IN (${placeholders(ACTIVE_STEP)})`)
        .run(now, reason, ...ids, ...ACTIVE_STEP);
      this.db.prepare(`UPDATE steps SET status = 'queued' WHERE ${inRuns} AND status = 'waiting'`).run(...ids);
      this.db.prepare(`UPDATE attempts SET finished_at = ?, error = COALESCE(error, ?) WHERE ${inRuns} AND finished_at IS NULL`).run(now, reason, ...ids);
      this.db
        .prepare(`UPDATE runs SET status = 'interrupted', finished_at = ?, error = COALESCE(error, ?) WHERE id IN (${placeholders(ids)})`)
        .run(now, `${reason}; resume it or replay it from a step`, ...ids);
      for (const id of ids) this.stmt.insertEvent.run(id, null, now, 'interrupted', JSON.stringify({ reason }));
      return ids;
    })();
  }

  private update(table: string, columns: Record<string, Column>, fields: object, where: string, key: unknown[]): Database.RunResult {
    const set = Object.entries(fields).filter(([k, v]) => v !== undefined && Object.prototype.hasOwnProperty.call(columns, k));
    if (set.length === 0) {
      // Nothing to write, but a missing row is still the caller's mistake worth hearing about.
      return this.db.prepare(`SELECT 1 FROM ${table} WHERE ${where}`).all(...key).length === 0 ? { changes: 0, lastInsertRowid: 0 } : { changes: 1, lastInsertRowid: 0 };
    }
    const cols = set.map(([k]) => columns[k]!);
    const sql = `UPDATE ${table} SET ${cols.map((c) => `${c.name} = ?`).join(', ')} WHERE ${where}`;
    let stmt = this.updates.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.updates.set(sql, stmt);
    }
    return stmt.run(...set.map(([, v], i) => (cols[i]!.encode ? cols[i]!.encode(v) : v)), ...key);
  }

  /** `prefix` + random hex; run ids match the protocol's runIdSchema (r- and 8 hex digits). */
  private freshId(prefix: string, bytes: number, taken: (id: string) => boolean): string {
    for (;;) {
      const id = prefix + randomBytes(bytes).toString('hex');
      if (!taken(id)) return id;
    }
  }
}
