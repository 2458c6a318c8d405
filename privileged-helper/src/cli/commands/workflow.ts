/** `ai-sandbox workflow …`: validate now; run, list, show, replay and cancel arrive with the engine. */
import { byPosition, formatError } from '../../workflow/errors.js';
import { loadWorkflow } from '../../workflow/load.js';
import type { WorkflowPlan } from '../../workflow/plan.js';
import { parseArgs, UsageError } from '../args.js';

export const WORKFLOW_HELP = `usage: ai-sandbox workflow validate FILE [--json]

Check a workflow file without running it (no helper needed): prints "ok: N steps, M levels" and what would
run at each level, or every problem as FILE:LINE:COL: message, and exits 2. --json prints the plan.
The file format: docs/workflow.md; editor completion: docs/workflow.schema.json.`;

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

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { validate: validateCommand };

export async function workflowCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run) {
    throw new UsageError(sub === undefined ? 'usage: ai-sandbox workflow validate FILE [--json]' : `unknown workflow command "${sub}": this ai-sandbox has: ${Object.keys(SUBCOMMANDS).join(', ')}`);
  }
  return run(rest);
}
