/**
 * The workflow engine: runs a plan's steps as sandboxes. A step starts when every step it needs has
 * succeeded; ready steps start critical first, then normal, then background, at most `maxParallel` at
 * once, all inside the run's pool cgroup (whose cpu and memory limits bound their sum). Data passes as
 * files (a step's workdir is a host directory; the steps that need it see it read-only under /in/<step>)
 * and as streams (a step's stdout becomes another's stdin). A failed attempt is retried alone: the steps
 * before it are never re-run, their outputs stay on disk.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { ExitReport } from '../protocol/schema.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { RunDetail, RunStore, StepUpdate } from '../store/runs.js';
import { SANDBOX_GID, SANDBOX_UID } from '../sandbox/rootfs.js';
import type { RunEvent, RunState, StepState } from './run-state.js';
import { DEFAULT_WORKDIR, type PlannedStep, type WorkflowPlan } from './plan.js';
import { PRIORITY_RANK } from './schema.js';

type Listener = (e: RunEvent) => void;

const done = (status: StepState['status']): boolean => status === 'succeeded' || status === 'restored';

/** A step id (which may hold brackets and `=` after matrix expansion) as a name part: lowercase, safe. */
export function stepSlug(stepId: string): string {
  return stepId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'step';
}

/** A sandbox name for a step attempt, unique within the run. */
export function sandboxName(runId: string, stepId: string, attempt: number): string {
  return `${runId}-${stepSlug(stepId)}-${attempt}`;
}

class Run {
  readonly state: RunState;
  readonly byId: Map<string, StepState>;
  private readonly order: Map<string, number>;
  private running = 0;
  /** why the run is stopping early, and whether that makes it a failure (a failed step, the timeout) */
  private stop: { why: string; failed: boolean } | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private timer: NodeJS.Timeout | null = null;
  /** told when an attempt starts and ends (the store records attempts) */
  onAttempt: (stepId: string, n: number, change: { sandbox: string } | { exit: ExitReport }) => void = () => {};

  constructor(
    readonly plan: WorkflowPlan,
    private readonly manager: SandboxManager,
    private readonly dir: string,
    id: string,
  ) {
    this.state = {
      id,
      workflow: plan.name,
      status: 'running',
      createdAt: new Date().toISOString(),
      finishedAt: null,
      peakParallel: 0,
      steps: plan.steps.map((s) => ({ id: s.id, status: 'queued', attempts: 0, sandbox: null, startedAt: null, finishedAt: null, durationMs: null, exit: null, reason: null, io: null })),
      error: null,
      replayOf: null,
    };
    this.byId = new Map(this.state.steps.map((s) => [s.id, s]));
    this.order = new Map(plan.order.map((id, i) => [id, i]));
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  private get stopping(): boolean {
    return this.stop !== null;
  }

  get poolName(): string | undefined {
    return this.plan.pool.cpus !== null || this.plan.pool.memoryBytes !== null ? this.state.id : undefined;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  wait(): Promise<void> {
    return this.done;
  }

  private emit(e: RunEvent): void {
    for (const l of this.listeners) l(e);
  }

  private setStep(s: StepState, fields: Partial<StepState>): void {
    Object.assign(s, fields);
    this.emit({ type: 'step', run: this.state.id, step: { ...s } });
  }

  /** A finished run as the store kept it: enough to show it and to replay from it. */
  static fromRecord(plan: WorkflowPlan, manager: SandboxManager, dir: string, detail: RunDetail): Run {
    const run = new Run(plan, manager, dir, detail.run.id);
    Object.assign(run.state, {
      status: detail.run.status,
      createdAt: detail.run.createdAt,
      finishedAt: detail.run.finishedAt,
      error: detail.run.error,
      replayOf: detail.run.parentRunId && detail.run.replayFromStep ? { run: detail.run.parentRunId, from: detail.run.replayFromStep } : null,
    });
    for (const row of detail.steps) {
      const s = run.byId.get(row.stepId);
      if (s) Object.assign(s, { status: row.status, attempts: row.attempts, sandbox: row.sandbox, startedAt: row.startedAt, finishedAt: row.finishedAt, durationMs: row.durationMs, exit: row.exit, reason: row.reason });
    }
    run.resolveDone();
    return run;
  }

  /**
   * Make this run a replay of `prev` from step `from`: every step that is neither `from` nor after it
   * is restored from the earlier run (its outputs and stdout copied, its result kept), not executed.
   */
  restoreFrom(prev: Run, from: string): void {
    const rerun = new Set([from]);
    for (const step of this.plan.steps) if (step.needs.some((n) => rerun.has(n))) rerun.add(step.id);
    this.state.replayOf = { run: prev.state.id, from };
    for (const s of this.state.steps) {
      if (rerun.has(s.id)) continue;
      const old = prev.byId.get(s.id);
      if (old?.status !== 'succeeded') throw new AppError('INVALID_STATE', `cannot replay from ${from}: step ${s.id} before it did not succeed in run ${prev.state.id}`);
      fs.mkdirSync(this.stepDir(s.id), { recursive: true });
      fs.cpSync(prev.stepDir(s.id), this.stepDir(s.id), { recursive: true, preserveTimestamps: true });
      Object.assign(s, { status: 'restored', attempts: 0, sandbox: old.sandbox, startedAt: old.startedAt, finishedAt: old.finishedAt, durationMs: old.durationMs, exit: old.exit, reason: `restored from ${prev.state.id}` });
    }
  }

  start(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const pool = this.poolName;
    if (pool) this.manager.ensurePool(pool, { cpus: this.plan.pool.cpus ?? undefined, memoryBytes: this.plan.pool.memoryBytes ?? undefined });
    if (this.plan.timeoutMs !== null) this.timer = setTimeout(() => void this.cancel(`the workflow hit its timeout of ${this.plan.timeoutMs} ms`, true), this.plan.timeoutMs);
    this.schedule();
  }

  async cancel(why: string, failed = false): Promise<void> {
    if (this.state.status !== 'running') return;
    this.stop ??= { why, failed };
    this.state.error = why;
    for (const s of this.state.steps) if (s.status === 'queued') this.setStep(s, { status: 'cancelled', reason: why });
    await Promise.all(
      this.state.steps.filter((s) => s.status === 'running' && s.sandbox).map((s) => this.manager.stop(s.sandbox!, 2000).catch(() => undefined)),
    );
    this.schedule();
  }

  stepDir(id: string): string {
    return path.join(this.dir, stepSlug(id));
  }

  outputDir(id: string): string {
    return path.join(this.stepDir(id), 'out');
  }

  private schedule(): void {
    if (this.state.status !== 'running') return;
    const failed = (id: string) => ['failed', 'skipped', 'cancelled'].includes(this.byId.get(id)!.status);
    // a step that can never start (something it needs failed) is skipped, and says why
    for (const step of this.plan.steps) {
      const s = this.byId.get(step.id)!;
      const blocker = step.needs.find(failed);
      if (s.status === 'queued' && blocker) this.setStep(s, { status: 'skipped', reason: `${blocker} did not succeed` });
    }
    if (!this.stopping) {
      const ready = this.plan.steps
        .filter((p) => this.byId.get(p.id)!.status === 'queued' && p.needs.every((n) => done(this.byId.get(n)!.status)))
        .sort((a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || this.order.get(a.id)! - this.order.get(b.id)!);
      for (const step of ready) {
        if (this.running >= this.plan.pool.maxParallel) break;
        void this.runStep(step);
      }
    }
    if (this.running === 0 && !this.state.steps.some((s) => s.status === 'queued' && !this.stopping)) this.finish();
  }

  private finish(): void {
    if (this.timer) clearTimeout(this.timer);
    const failed = this.stop?.failed || this.state.steps.some((s) => s.status === 'failed');
    this.state.status = failed ? 'failed' : this.stop ? 'cancelled' : 'succeeded';
    this.state.finishedAt = new Date().toISOString();
    this.emit({ type: 'run', run: this.state.id, status: this.state.status, error: this.state.error });
    const pool = this.poolName;
    void (pool ? this.manager.removePool(pool).catch(() => undefined) : Promise.resolve()).then(() => this.resolveDone());
  }

  private async runStep(step: PlannedStep): Promise<void> {
    const s = this.byId.get(step.id)!;
    this.running++;
    this.state.peakParallel = Math.max(this.state.peakParallel, this.running);
    const started = Date.now();
    this.setStep(s, { status: 'running', startedAt: new Date(started).toISOString() });
    let report: ExitReport | null = null;
    for (;;) {
      s.attempts++;
      report = await this.attempt(step, s.attempts);
      if (report.exitCode === 0 || this.stopping || s.attempts > step.retries) break;
      this.setStep(s, { status: 'retrying', exit: report, reason: `attempt ${s.attempts} ended ${describe(report)}; retrying` });
      this.setStep(s, { status: 'running' });
    }
    this.running--;
    const ok = report.exitCode === 0 && !this.stopping;
    this.setStep(s, {
      status: ok ? 'succeeded' : this.stopping && report.exitCode !== 0 ? 'cancelled' : 'failed',
      finishedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
      exit: report,
      reason: ok ? null : this.stopping ? this.state.error : `${describe(report)}${step.retries ? ` after ${s.attempts} attempts` : ''}`,
    });
    if (!ok && !this.stopping && this.plan.onFailure === 'stop') void this.cancel(`step ${step.id} failed: ${describe(report)}`, true);
    else this.schedule();
  }

  /** One attempt of a step: a fresh sandbox with its files wired in; resolves with its exit report. */
  private async attempt(step: PlannedStep, n: number): Promise<ExitReport> {
    const s = this.byId.get(step.id)!;
    const name = sandboxName(this.state.id, step.id, n);
    const out = this.outputDir(step.id);
    fs.mkdirSync(out, { recursive: true, mode: 0o755 });
    fs.chownSync(out, SANDBOX_UID, SANDBOX_GID);
    const stdoutFile = path.join(this.stepDir(step.id), 'stdout');
    fs.writeFileSync(stdoutFile, '');
    const internalMounts = [
      { source: out, target: step.spec.workdir ?? DEFAULT_WORKDIR, readOnly: false },
      ...step.inputs.map((i) => ({ source: this.outputDir(i.from), target: i.mountAt, readOnly: true })),
    ];
    // `full` keeps the step's whole writable layer: the sandbox stays until it is archived
    const full = step.snapshot === 'full';
    let resolveExit!: (r: ExitReport) => void;
    const exited = new Promise<ExitReport>((r) => (resolveExit = r));
    const log = fs.openSync(stdoutFile, 'a');
    const input = step.stdinFrom ? fs.readFileSync(path.join(this.stepDir(step.stdinFrom), 'stdout')) : Buffer.alloc(0);
    let report: ExitReport;
    try {
      this.setStep(s, { sandbox: name });
      this.onAttempt(step.id, n, { sandbox: name });
      await this.manager.create(
        {
          ...step.spec,
          name,
          pool: this.poolName,
          allowListen: false,
          mounts: step.spec.mounts ?? [],
          env: step.spec.env ?? {},
          limits: step.spec.limits ?? {},
          ...(step.network.mode === 'allow' && { network: step.network.policy }),
        },
        {
          autoRemove: !full,
          internalMounts,
          sink: {
            output: (fd, data) => {
              if (fd === 1) fs.writeSync(log, data);
            },
            event: (e) => {
              if (e.type === 'exit') resolveExit(e.report);
            },
            end: () => {},
          },
        },
      );
      try {
        this.manager.write({ sandbox: name }, input, true);
      } catch {
        // it already ended (a step that reads no input can be that quick)
      }
      report = await exited;
    } catch (err) {
      const e = AppError.from(err);
      report = (e.details?.report as ExitReport | undefined) ?? { exitCode: 125, signal: null, reason: 'failed-to-start', cpuMs: 0, memoryPeakBytes: 0, startMs: 0, wallMs: 0, message: e.message };
    } finally {
      fs.closeSync(log);
    }
    this.onAttempt(step.id, n, { exit: report });
    let snapshotBytes: number | null = null;
    if (full && this.manager.has(name)) {
      const archive = path.join(this.stepDir(step.id), 'upper.tar');
      await archiveDir(path.join(this.manager.get(name).sandboxDir, 'upper'), archive).catch(() => undefined);
      snapshotBytes = fs.existsSync(archive) ? fs.statSync(archive).size : null;
      await this.manager.remove(name, true).catch(() => undefined);
    }
    this.setStep(s, { io: { stdinBytes: input.length, stdoutBytes: fs.statSync(stdoutFile).size, outputBytes: dirBytes(out), snapshotBytes } });
    return report;
  }
}

/** Bytes of the regular files below `dir`. */
function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

function archiveDir(dir: string, file: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', dir, '-cf', file, '.'], (err) => (err ? reject(err) : resolve())),
  );
}

function stepFields(s: StepState): StepUpdate {
  return { status: s.status, attempts: s.attempts, sandbox: s.sandbox, startedAt: s.startedAt, finishedAt: s.finishedAt, durationMs: s.durationMs, exit: s.exit, reason: s.reason };
}

function describe(r: ExitReport): string {
  if (r.reason === 'exited') return `with exit code ${r.exitCode}`;
  if (r.reason === 'failed-to-start') return `without starting: ${r.message ?? ''}`;
  return r.reason === 'signaled' ? `by ${r.signal}` : r.reason;
}

export class WorkflowEngine {
  private readonly runs = new Map<string, Run>();

  /** With a store, every run, step change and event is kept, so history outlives the helper. */
  constructor(
    private readonly manager: SandboxManager,
    private readonly runsRoot: string,
    private readonly store: RunStore | null = null,
  ) {}

  /** Runs a dead helper left unfinished become `interrupted` (then replay resumes them). */
  markInterrupted(): string[] {
    return this.store?.markInterrupted() ?? [];
  }

  start(plan: WorkflowPlan): RunState {
    return this.launch(plan, null);
  }

  /**
   * Re-run a finished run from step `from`: earlier steps are restored (their outputs as they were), not
   * executed; `from` may get edited input (environment variables); a new run linked to the old one.
   */
  replay(runId: string, from: string, env: Record<string, string>): RunState {
    const prev = this.run(runId);
    if (prev.state.status === 'running') throw new AppError('INVALID_STATE', `run ${runId} is still running: wait for it or cancel it first`);
    const step = prev.plan.steps.find((s) => s.id === from);
    if (!step) throw new AppError('NOT_FOUND', `run ${runId} has no step ${from}: its steps are ${prev.plan.order.join(', ')}`);
    const plan: WorkflowPlan = { ...prev.plan, steps: prev.plan.steps.map((s) => (s.id === from ? { ...s, spec: { ...s.spec, env: { ...s.spec.env, ...env } } } : s)) };
    return this.launch(plan, { prev, from, env });
  }

  private launch(plan: WorkflowPlan, replay: { prev: Run; from: string; env: Record<string, string> } | null): RunState {
    for (const s of plan.steps) {
      // plans stored by an older ai-sandbox carry an allow list it refused to run, without a policy
      if (s.network.mode === 'allow' && !('policy' in s.network)) throw new AppError('UNSUPPORTED', `step ${s.id} comes from a run whose network rules this ai-sandbox cannot read: run the workflow file again`);
    }
    const id = this.store
      ? this.store.createRun({ workflowId: this.store.createWorkflow(plan).id, plan, parentRunId: replay?.prev.state.id, replayFromStep: replay?.from, overrides: replay ? { env: replay.env } : null }).run.id
      : `r-${randomBytes(4).toString('hex')}`;
    const run = new Run(plan, this.manager, path.join(this.runsRoot, id), id);
    if (replay) run.restoreFrom(replay.prev, replay.from);
    this.runs.set(id, run);
    if (this.store) this.persist(run, this.store);
    run.start();
    return run.state;
  }

  private persist(run: Run, store: RunStore): void {
    const id = run.state.id;
    run.onAttempt = (stepId, n, change) => {
      if ('sandbox' in change) store.addAttempt(id, stepId, { sandbox: change.sandbox });
      else store.finishAttempt(id, stepId, n, { exit: change.exit });
    };
    store.updateRun(id, { status: 'running', startedAt: run.state.createdAt });
    for (const s of run.state.steps) if (s.status === 'restored') store.updateStep(id, s.id, stepFields(s));
    run.subscribe((e) => {
      if (e.type === 'step') store.updateStep(id, e.step.id, stepFields(e.step));
      else store.updateRun(id, { status: e.status, finishedAt: run.state.finishedAt, error: e.error });
      store.appendEvent(id, e.type === 'step' ? e.step.id : null, e.type, e.type === 'step' ? e.step : { status: e.status, error: e.error });
    });
  }

  private run(id: string): Run {
    const r = this.runs.get(id) ?? this.fromStore(id);
    if (!r) throw new AppError('NOT_FOUND', `no workflow run ${id}: \`ai-sandbox workflow list\` shows them`);
    return r;
  }

  private fromStore(id: string): Run | undefined {
    const detail = this.store?.getRun(id);
    const wf = detail ? this.store!.getWorkflow(detail.run.workflowId) : null;
    if (!detail || !wf) return undefined;
    const run = Run.fromRecord(wf.plan, this.manager, path.join(this.runsRoot, id), detail);
    this.runs.set(id, run);
    return run;
  }

  get(id: string): RunState {
    return this.run(id).state;
  }

  /** Newest first; with a store, the history too. */
  list(limit = 50): RunState[] {
    const ids = this.store ? this.store.listRuns({ limit }).map((r) => r.id) : [...this.runs.keys()].reverse();
    return ids.map((id) => this.run(id).state);
  }

  wait(id: string): Promise<RunState> {
    const r = this.run(id);
    return r.wait().then(() => r.state);
  }

  cancel(id: string): Promise<void> {
    return this.run(id).cancel('cancelled by the user');
  }

  subscribe(id: string, listener: Listener): () => void {
    return this.run(id).subscribe(listener);
  }

  /** Stop every run (helper shutdown) and close the store. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.runs.values()].map((r) => r.cancel('the helper stopped')));
    await Promise.all([...this.runs.values()].map((r) => r.wait()));
    this.store?.close();
  }
}
