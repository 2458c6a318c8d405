/** `ai-sandbox trace`: a sandbox's syscalls (live or recorded), exports, the list of stored traces. */
import fs from 'node:fs';
import type { HelperClient } from '../../protocol/client.js';
import type { StreamEvent } from '../../protocol/schema.js';
import { formatEvent } from '../../trace/records.js';
import { one, parseArgs, UsageError } from '../args.js';
import { withDaemon } from '../connect.js';

export const TRACE_HELP = `usage: ai-sandbox trace NAME [--json] [--syscalls LIST] [-f]
       ai-sandbox trace export RUN|SANDBOX --perfetto FILE
       ai-sandbox trace ls [--run RUN] [--json]
       ai-sandbox trace status [--json]

Show the syscalls of a sandbox started with --trace (or a workflow step with trace: true): what was
recorded so far, and with -f what follows until it ends. Traces stay after the sandbox is gone.
  --json            one JSON object per syscall (sandbox, tsUs, durNs, pid, tid, syscall, ret, errno,
                    path, addr, fd, flags)
  --syscalls LIST   only these: names (openat,connect) or families (open, stat, exec, net, file, process)
  -f, --follow      keep following until the sandbox ends
Nothing is dropped silently: the last line (stderr) counts what was delivered and what was dropped in
the kernel (ring buffer full), by the sandbox's rate limit (counted per syscall), or on the way.

export writes the Chrome Trace Event Format (opens in https://ui.perfetto.dev and chrome://tracing):
one process per sandbox, one slice per syscall. RUN exports every traced step of a workflow run.`;

function summary(name: string, c: Extract<StreamEvent, { type: 'trace-counters' }>['counters']): string {
  const agg = Object.entries(c.aggregated)
    .map(([k, v]) => `${k}×${v}`)
    .join(', ');
  return `ai-sandbox trace ${name}: ${c.delivered} events shown; recorded ${c.emitted}; dropped: ${c.kernelDropped} in the kernel (ring buffer full), ${c.rateLimited} over the rate limit${agg ? ` (${agg})` : ''}, ${c.storeDropped} by the store, ${c.streamDropped} on the way here\n`;
}

function write(data: string): Promise<void> | void {
  if (process.stdout.write(data)) return;
  return new Promise((r) => process.stdout.once('drain', () => r()));
}

async function show(client: HelperClient, name: string, json: boolean, follow: boolean, syscalls: string[] | undefined): Promise<number> {
  const { stream } = await client.call('trace.subscribe', { sandbox: name, follow, format: 'events', ...(syscalls && { syscalls }) });
  return new Promise((resolve) => {
    let last: Extract<StreamEvent, { type: 'trace-counters' }>['counters'] | null = null;
    client.onStream(stream, (f) => {
      if (f.kind === 'trace' && f.trace?.events) {
        return write(f.trace.events.map((e) => (json ? JSON.stringify(e) : formatEvent(e))).join('\n') + '\n');
      }
      const ev = f.event;
      if (ev?.type === 'trace-counters') last = ev.counters;
      else if (ev?.type === 'dropped') process.stderr.write(`ai-sandbox: ${ev.frames} trace batches were dropped: this terminal fell behind\n`);
      else if (ev?.type === 'end') {
        if (last) process.stderr.write(summary(name, last));
        resolve(0);
      }
      return undefined;
    });
  });
}

async function exportTrace(client: HelperClient, target: string, file: string): Promise<number> {
  const { stream, sandboxes } = await client.call('trace.export', { target, format: 'chrome' });
  const fd = fs.openSync(file, 'w');
  let failed = '';
  await new Promise<void>((resolve) => {
    client.onStream(stream, (f) => {
      if (f.kind === 'stdout') fs.writeSync(fd, Buffer.from(f.data ?? '', 'base64'));
      else if (f.kind === 'stderr') failed += Buffer.from(f.data ?? '', 'base64').toString();
      else if (f.event?.type === 'dropped') failed += 'part of the export was dropped\n';
      else if (f.event?.type === 'end') resolve();
    });
  });
  fs.closeSync(fd);
  if (failed) {
    process.stderr.write(`ai-sandbox trace export: ${failed}`);
    return 1;
  }
  process.stderr.write(`ai-sandbox trace export: ${sandboxes.join(', ')} → ${file} (Chrome Trace Event Format: open it in https://ui.perfetto.dev)\n`);
  return 0;
}

export async function traceCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    '--json': { value: false },
    '--syscalls': { value: true },
    '--follow': { value: false, alias: '-f' },
    '--perfetto': { value: true },
    '--run': { value: true },
  });
  const [first, second, ...more] = p.positionals;
  if (first === undefined) throw new UsageError('usage: ai-sandbox trace NAME [--json] [--syscalls LIST] [-f] (see --help)');
  if (first === 'export') {
    const file = one(p, '--perfetto');
    if (second === undefined || more.length > 0 || !file) throw new UsageError('usage: ai-sandbox trace export RUN|SANDBOX --perfetto FILE');
    return withDaemon((s) => exportTrace(s.client, second, file));
  }
  if (first === 'ls') {
    const { traces } = await withDaemon((s) => s.client.call('trace.list', { ...(one(p, '--run') && { run: one(p, '--run')! }) }));
    if (p.flags.has('--json')) process.stdout.write(`${JSON.stringify(traces, null, 2)}\n`);
    else for (const t of traces) {
      const c = t.counters;
      const drops = c ? ` dropped ${c.kernelDropped + c.rateLimited + c.storeDropped}` : '';
      process.stdout.write(`${t.sandbox.padEnd(24)} ${t.live ? 'live ' : 'ended'} ${t.startedAt.replace('T', ' ').slice(0, 19)} ${String(t.records).padStart(9)} events${drops}\n`);
    }
    return 0;
  }
  if (first === 'status') {
    const st = await withDaemon((s) => s.client.call('trace.status', {}));
    if (p.flags.has('--json')) process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
    else process.stdout.write(st.supported ? `tracing: supported; ${st.attached ? 'attached' : 'not attached'}; traced now: ${st.traced.join(', ') || 'none'}\n` : `tracing: unsupported: ${st.reason}\n`);
    return 0;
  }
  if (second !== undefined) throw new UsageError('usage: ai-sandbox trace NAME [--json] [--syscalls LIST] [-f]');
  const syscalls = one(p, '--syscalls')?.split(',').filter((x) => x.length > 0);
  return withDaemon((s) => show(s.client, first, p.flags.has('--json'), p.flags.has('--follow'), syscalls));
}
