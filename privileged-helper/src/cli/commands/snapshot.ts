/** checkpoint, snapshots, restore, fork, snapshot rm|diff: time travel from the command line. */
import type { SnapshotDiffResult, SnapshotInfo } from '../../protocol/schema.js';
import { one, parseArgs, parseNumber, UsageError } from '../args.js';
import { withDaemon } from '../connect.js';

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export const CHECKPOINT_HELP = `usage: ai-sandbox checkpoint NAME [--leave-running] [--label TEXT]

Snapshot a running sandbox: its processes (memory, open files, sockets) and its files. Prints the
snapshot id. Without --leave-running the sandbox stops once the snapshot is taken.`;

export async function checkpointCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--leave-running': { value: false }, '--label': { value: true } });
  if (p.positionals.length !== 1) throw new UsageError('usage: ai-sandbox checkpoint NAME [--leave-running] [--label TEXT]');
  const info = await withDaemon((s) => s.client.call('snapshot.checkpoint', { name: p.positionals[0]!, leaveRunning: p.flags.has('--leave-running'), label: one(p, '--label') }));
  process.stdout.write(`${info.id}\n`);
  return 0;
}

export const SNAPSHOTS_HELP = 'usage: ai-sandbox snapshots [NAME] [--json]\n\nList snapshots (of one sandbox), oldest first, with their parent.';

export async function snapshotsCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--json': { value: false } });
  if (p.positionals.length > 1) throw new UsageError('usage: ai-sandbox snapshots [NAME] [--json]');
  const { snapshots } = await withDaemon((s) => s.client.call('snapshot.list', { sandbox: p.positionals[0] }));
  if (p.flags.has('--json')) {
    process.stdout.write(`${JSON.stringify(snapshots, null, 2)}\n`);
    return 0;
  }
  const rows = [['ID', 'SANDBOX', 'PARENT', 'CREATED', 'SIZE', 'MEMORY', 'LABEL'], ...snapshots.map((s: SnapshotInfo) => [s.id, s.sandbox, s.parent ?? '-', s.createdAt.replace('T', ' ').slice(0, 19), mb(s.sizeBytes), mb(s.memoryBytes), s.label ?? ''])];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()}\n`);
  return 0;
}

export const RESTORE_HELP = 'usage: ai-sandbox restore SNAPSHOT [--name NEW]\n\nContinue a snapshot as a new running sandbox, exactly where it was. Prints its name.';

export async function restoreCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--name': { value: true } });
  if (p.positionals.length !== 1) throw new UsageError('usage: ai-sandbox restore SNAPSHOT [--name NEW]');
  const r = await withDaemon((s) => s.client.call('snapshot.restore', { snapshot: p.positionals[0]!, name: one(p, '--name') }));
  process.stdout.write(`${r.name}\n`);
  return 0;
}

export const FORK_HELP = 'usage: ai-sandbox fork SNAPSHOT --count N [--prefix P]\n\nStart N independent copies of a snapshot at once (names P-1 … P-N). Prints their names.';

export async function forkCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--count': { value: true }, '--prefix': { value: true } });
  if (p.positionals.length !== 1 || !p.flags.has('--count')) throw new UsageError('usage: ai-sandbox fork SNAPSHOT --count N [--prefix P]');
  const count = parseNumber('--count', one(p, '--count')!, { int: true, min: 1, max: 64 });
  const r = await withDaemon((s) => s.client.call('snapshot.fork', { snapshot: p.positionals[0]!, count, prefix: one(p, '--prefix') }));
  process.stdout.write(`${r.names.join('\n')}\n`);
  return 0;
}

export const SNAPSHOT_HELP = `usage: ai-sandbox snapshot rm SNAPSHOT
       ai-sandbox snapshot diff A B [--json]

rm removes a snapshot (its children stay restorable). diff shows what changed from A to B: files of the
sandbox's writable layer added, changed or removed, processes started or ended, and memory.`;

export async function snapshotCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'rm') {
    const p = parseArgs(rest, {});
    if (p.positionals.length !== 1) throw new UsageError('usage: ai-sandbox snapshot rm SNAPSHOT');
    await withDaemon((s) => s.client.call('snapshot.remove', { snapshot: p.positionals[0]! }));
    process.stdout.write(`${p.positionals[0]}\n`);
    return 0;
  }
  if (sub === 'diff') {
    const p = parseArgs(rest, { '--json': { value: false } });
    if (p.positionals.length !== 2) throw new UsageError('usage: ai-sandbox snapshot diff A B [--json]');
    const d = await withDaemon((s) => s.client.call('snapshot.diff', { from: p.positionals[0]!, to: p.positionals[1]! }));
    process.stdout.write(p.flags.has('--json') ? `${JSON.stringify(d, null, 2)}\n` : formatDiff(d));
    return 0;
  }
  throw new UsageError(sub === undefined ? 'usage: ai-sandbox snapshot rm|diff …' : `unknown snapshot command "${sub}": use rm or diff`);
}

export function formatDiff(d: SnapshotDiffResult): string {
  const lines = [`${d.from} → ${d.to}`, '', `files (${d.files.length} changed):`];
  const mark = { added: '+', changed: '~', removed: '-' } as const;
  for (const f of d.files) lines.push(`  ${mark[f.kind]} ${f.path}${f.what ? ` (${f.what.join(', ')})` : ''}`);
  lines.push('', 'processes:');
  for (const p of d.processes.started) lines.push(`  + ${p.pid} ${p.cmdline || p.comm}`);
  for (const p of d.processes.ended) lines.push(`  - ${p.pid} ${p.cmdline || p.comm}`);
  if (!d.processes.started.length && !d.processes.ended.length) lines.push('  (same)');
  const sign = d.memory.deltaBytes >= 0 ? '+' : '-';
  lines.push('', `memory: ${mb(d.memory.beforeBytes)} → ${mb(d.memory.afterBytes)} (${sign}${mb(Math.abs(d.memory.deltaBytes))})`, '');
  return lines.join('\n');
}
