/** `ai-sandbox workflow …`: validate a file, run it with live progress, list, show and cancel runs. */
import fs from 'node:fs';
import path from 'node:path';
import type { RunState, StepState } from '../../workflow/run-state.js';
import { connectDaemon, connectOrEmbed, withSession, type Session } from '../connect.js';
import { byPosition, formatError } from '../../workflow/errors.js';
import { loadWorkflow } from '../../workflow/load.js';
import type { WorkflowPlan } from '../../workflow/plan.js';
import { parseArgs, UsageError } from '../args.js';

export const WORKFLOW_HELP = `usage: ai-sandbox workflow validate FILE [--json]
       ai-sandbox workflow run FILE [--json]
       ai-sandbox workflow list [--json]
       ai-sandbox workflow show RUN [--json]
       ai-sandbox workflow replay RUN --from STEP [--set KEY=VALUE]...
       ai-sandbox workflow cancel RUN

validate checks a workflow file without running it (no helper needed): prints "ok: N steps, M levels"
and what would run at each level, or every problem as FILE:LINE:COL: message, and exits 2.
run starts it and prints a line per step as its status changes (with --json, one JSON event per
line); it exits 0 when every step succeeded, 1 otherwise. replay re-runs a finished run from STEP: the
steps before it are restored with their outputs, not executed; --set gives STEP edited environment
variables; a new run, linked to the old one. With no helper running, run starts an
embedded one (root only). The file format: docs/workflow.md; editor completion: docs/workflow.schema.json.`;

function size(bytes: number): string {
  return bytes % 1024 ** 3 === 0 ? `${bytes / 1024 ** 3}G` : `${Math.round(bytes / 1024 ** 2)}M`;
}

export function planSummary(plan: WorkflowPlan): string {
  const lines = [`ok: ${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'}, ${plan.levels.length} level${plan.levels.length === 1 ? '' : 's'}`];
  const pool = [`at most ${plan.pool.maxParallel} at once`];
  if (plan.pool.cpus !== null) pool.push(`${plan.pool.cpus} cpus`);
  if (plan.pool.memoryBytes !== null) pool.push(`${size(plan.pool.memoryBytes)} memory`);
  lines.push(`${plan.name}: mode ${plan.mode}, on failure ${plan.onFailure}; pool: ${pool.join(', ')}`);
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  plan.levels.forEach((ids, n) => {
    const shown = ids.map((id) => {
      const s = byId.get(id)!;
      const marks = [s.priority !== 'normal' && s.priority, s.snapshot !== 'none' && `snapshot ${s.snapshot}`, s.retries > 0 && `retries ${s.retries}`, s.stdinFrom && `stdin ← ${s.stdinFrom}`].filter(Boolean);
      return marks.length ? `${id} (${marks.join(', ')})` : id;
    });
    lines.push(`  level ${n}: ${shown.join(', ')}`);
  });
  return lines.join('\n');
}

async function validateCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--json': { value: false } });
  if (p.positionals.length !== 1) throw new UsageError('usage: ai-sandbox workflow validate FILE [--json]');
  const result = await loadWorkflow(p.positionals[0]!);
  const problems = [...(result.ok ? [] : result.errors), ...result.warnings].sort(byPosition);
  for (const e of problems) process.stderr.write(`${formatError(e)}\n`);
  if (!result.ok) return 2;
  process.stdout.write(p.flags.has('--json') ? `${JSON.stringify(result.plan, null, 2)}\n` : `${planSummary(result.plan)}\n`);
  return 0;
}

const MARK: Record<StepState['status'], string> = { queued: '·', running: '▶', retrying: '↻', succeeded: '✓', failed: '✗', skipped: '-', cancelled: '■', restored: '↺', waiting: '·', interrupted: '!' };

function stepLine(s: StepState): string {
  const secs = s.durationMs !== null ? ` ${(s.durationMs / 1000).toFixed(2)}s` : '';
  const why = s.reason ? ` — ${s.reason}` : '';
  const attempt = s.attempts > 1 ? ` (attempt ${s.attempts})` : '';
  return `${MARK[s.status]} ${s.id} ${s.status}${attempt}${secs}${why}`;
}

async function runCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--json': { value: false } });
  if (p.positionals.length !== 1) throw new UsageError('usage: ai-sandbox workflow run FILE [--json]');
  const file = path.resolve(p.positionals[0]!);
  const checked = await loadWorkflow(file);
  if (!checked.ok) {
    for (const e of [...checked.errors, ...checked.warnings].sort(byPosition)) process.stderr.write(`${formatError(e)}\n`);
    return 2;
  }
  const json = p.flags.has('--json');
  return withSession(connectOrEmbed, async (s) => follow(s, await s.client.call('workflow.start', { text: fs.readFileSync(file, 'utf8'), file }), json));
}

/** Print a run's progress until it ends; exit status 0 when it succeeded. */
async function follow(s: Session, run: RunState, json: boolean): Promise<number> {
  if (!json) process.stdout.write(`run ${run.id}: ${run.workflow}, ${run.steps.length} steps${run.replayOf ? ` (replay of ${run.replayOf.run} from ${run.replayOf.from})` : ''}\n`);
  const { stream } = await s.client.call('workflow.watch', { run: run.id });
  const seen = new Map<string, string>();
  const final = await new Promise<RunState['status']>((resolve) => {
    s.client.onStream(stream, (f) => {
      const e = f.event;
      if (e?.type !== 'workflow') return;
      if (json) process.stdout.write(`${JSON.stringify(e.event)}\n`);
      if (e.event.type === 'step') {
        const line = stepLine(e.event.step);
        if (!json && seen.get(e.event.step.id) !== line && e.event.step.status !== 'queued') process.stdout.write(`${line}\n`);
        seen.set(e.event.step.id, line);
      } else {
        if (!json) process.stdout.write(`run ${run.id} ${e.event.status}${e.event.error ? `: ${e.event.error}` : ''}\n`);
        resolve(e.event.status);
      }
    });
  });
  return final === 'succeeded' ? 0 : 1;
}

async function replayCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--from': { value: true }, '--set': { value: true, repeat: true }, '--json': { value: false } });
  if (p.positionals.length !== 1 || !p.flags.has('--from')) throw new UsageError('usage: ai-sandbox workflow replay RUN --from STEP [--set KEY=VALUE]...');
  const env: Record<string, string> = {};
  for (const kv of p.flags.get('--set') ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set: "${kv}" should be KEY=VALUE (an environment variable of the step)`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return withSession(connectDaemon, async (s) => follow(s, await s.client.call('workflow.replay', { run: p.positionals[0]!, from: p.flags.get('--from')![0]!, env }), p.flags.has('--json')));
}

async function listCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--json': { value: false } });
  const { runs } = await withSession(connectDaemon, (s) => s.client.call('workflow.list', {}));
  if (p.flags.has('--json')) process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
  else for (const r of runs) process.stdout.write(`${r.id}  ${r.status.padEnd(9)}  ${r.createdAt.replace('T', ' ').slice(0, 19)}  ${r.workflow}  ${r.steps.filter((x) => x.status === 'succeeded').length}/${r.steps.length} steps\n`);
  return 0;
}

async function showCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--json': { value: false } });
  if (p.positionals.length !== 1) throw new UsageError('usage: ai-sandbox workflow show RUN [--json]');
  const r = await withSession(connectDaemon, (s) => s.client.call('workflow.get', { run: p.positionals[0]! }));
  if (p.flags.has('--json')) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else process.stdout.write(`run ${r.id}: ${r.workflow} ${r.status}${r.error ? ` (${r.error})` : ''}\n${r.steps.map((x) => `  ${stepLine(x)}`).join('\n')}\n`);
  return 0;
}

async function cancelCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {});
  if (p.positionals.length !== 1) throw new UsageError('usage: ai-sandbox workflow cancel RUN');
  await withSession(connectDaemon, (s) => s.client.call('workflow.cancel', { run: p.positionals[0]! }));
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { validate: validateCommand, run: runCommand, list: listCommand, show: showCommand, replay: replayCommand, cancel: cancelCommand };

export async function workflowCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run) {
    throw new UsageError(sub === undefined ? 'usage: ai-sandbox workflow validate FILE [--json]' : `unknown workflow command "${sub}": this ai-sandbox has: ${Object.keys(SUBCOMMANDS).join(', ')}`);
  }
  return run(rest);
}
