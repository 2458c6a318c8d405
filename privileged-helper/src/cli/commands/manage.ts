/** ps, logs, exec, stop, rm: the commands that act on sandboxes of a running helper. */
import { needName, parseArgs, parseDuration, one, UsageError } from '../args.js';
import { attachOutput, forwardStdin, terminalSize } from '../attach.js';
import { withDaemon } from '../connect.js';
import type { SandboxInfo } from '../../protocol/schema.js';

export const PS_HELP = 'usage: ai-sandbox ps [--json]\n\nList the sandboxes of the running helper.';

export async function psCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--json': { value: false } });
  if (p.positionals.length > 0) throw new UsageError('usage: ai-sandbox ps [--json]');
  const { sandboxes } = await withDaemon((s) => s.client.call('sandbox.list', {}));
  if (p.flags.has('--json')) {
    process.stdout.write(`${JSON.stringify(sandboxes, null, 2)}\n`);
    return 0;
  }
  const rows = [['NAME', 'STATUS', 'PID', 'CREATED', 'COMMAND'], ...sandboxes.map(row)];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
  return 0;
}

function row(s: SandboxInfo): string[] {
  const status = s.exit ? `${s.status} (${s.exit.reason}${s.exit.reason === 'exited' ? ` ${s.exit.exitCode}` : s.exit.signal ? ` ${s.exit.signal}` : ''})` : s.status;
  return [s.name, status, s.pid === null ? '-' : String(s.pid), s.createdAt.replace('T', ' ').slice(0, 19), s.command.join(' ').slice(0, 60)];
}

export const LOGS_HELP = 'usage: ai-sandbox logs NAME [-f]\n\nPrint what a sandbox wrote; with -f, keep following its output.';

export async function logsCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--follow': { value: false, alias: '-f' } });
  const name = needName(p, 'ai-sandbox logs NAME [-f]');
  return withDaemon(async (s) => {
    const { stream } = await s.client.call('sandbox.logs', { name, follow: p.flags.has('--follow') });
    await attachOutput(s.client, stream);
    return 0;
  });
}

export const EXEC_HELP = `usage: ai-sandbox exec NAME [-i] [-t] [-e KEY=VALUE] [-w DIR] [-u UID[:GID]] -- COMMAND [ARG...]

Run another command inside a running sandbox (same namespaces, cgroups and restrictions).
  -i  attach stdin     -t  give it a terminal`;

export async function execCommand(argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    {
      '-i': { value: false, alias: '--interactive' },
      '-t': { value: false, alias: '--tty' },
      '--env': { value: true, alias: '-e', repeat: true },
      '--workdir': { value: true, alias: '-w' },
      '--user': { value: true, alias: '-u' },
    },
  );
  const name = needName(p, 'ai-sandbox exec NAME [-it] -- COMMAND');
  if (p.command.length === 0) throw new UsageError('missing command: write it after --, e.g. ai-sandbox exec box -- ls /');
  const tty = p.flags.has('-t');
  const env = Object.fromEntries(
    (p.flags.get('--env') ?? []).map((e) => {
      const i = e.indexOf('=');
      if (i <= 0) throw new UsageError(`--env: "${e}" should be KEY=VALUE`);
      return [e.slice(0, i), e.slice(i + 1)];
    }),
  );
  const user = one(p, '--user');
  return withDaemon(async (s) => {
    const res = await s.client.call('sandbox.exec', {
      name,
      command: p.command,
      env,
      workdir: one(p, '--workdir'),
      user: user ? { uid: Number(user.split(':')[0]), gid: Number(user.split(':')[1] ?? user.split(':')[0]) } : undefined,
      tty: tty ? terminalSize() : undefined,
      stdin: p.flags.has('-i'),
    });
    const stop = p.flags.has('-i') ? forwardStdin(s.client, { exec: res.exec }, tty) : () => {};
    if (!p.flags.has('-i')) await s.client.call('io.write', { target: { exec: res.exec }, eof: true }).catch(() => undefined);
    const report = await attachOutput(s.client, res.stream);
    stop();
    return report?.exitCode ?? 1;
  });
}

export const STOP_HELP = 'usage: ai-sandbox stop NAME [--time DURATION]\n\nSend SIGTERM, then SIGKILL after --time (default 5s).';

export async function stopCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--time': { value: true } });
  const name = needName(p, 'ai-sandbox stop NAME [--time 5s]');
  const t = one(p, '--time');
  const info = await withDaemon((s) => s.client.call('sandbox.stop', { name, graceMs: t ? parseDuration('--time', t) : 5000 }));
  process.stdout.write(`${info.name}: ${info.exit?.reason ?? info.status}\n`);
  return 0;
}

export const RM_HELP = 'usage: ai-sandbox rm NAME [-f]\n\nRemove a stopped sandbox (its files and record); -f stops it first.';

export async function rmCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--force': { value: false, alias: '-f' } });
  const name = needName(p, 'ai-sandbox rm NAME [-f]');
  await withDaemon((s) => s.client.call('sandbox.remove', { name, force: p.flags.has('--force') }));
  process.stdout.write(`${name}\n`);
  return 0;
}
