import type { AuditEvent } from '../../network/audit.js';
import { needName, parseArgs } from '../args.js';
import { withDaemon } from '../connect.js';

export const AUDIT_HELP = `usage: ai-sandbox audit NAME [--json] [-f]

Show the auditing proxy's decisions for a sandbox started with --allow-domain: one line per request
(time, decision, rule, method, host:port, path for plain HTTP, bytes up/down), and the number of
packets its network policy dropped. The daemon keeps them after the sandbox is removed.
  --json      one JSON object per event
  -f          follow: print new decisions until the sandbox stops`;

function line(e: AuditEvent): string {
  const what = `${e.method} ${e.host}:${e.port}${e.path ?? ''}`;
  const status = e.status === null ? '' : ` ${e.status}`;
  const err = e.error ? ` (${e.error})` : '';
  return `${e.time}  ${e.decision.padEnd(5)} ${what}${status}  ↑${e.bytesUp} ↓${e.bytesDown}  [${e.rule}] via ${e.via}${err}`;
}

export async function auditCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--json': { value: false }, '--follow': { value: false, alias: '-f' } });
  const name = needName(p, 'ai-sandbox audit NAME [--json] [-f]');
  const json = p.flags.has('--json');
  const print = (e: AuditEvent) => process.stdout.write(`${json ? JSON.stringify(e) : line(e)}\n`);
  return withDaemon(async (s) => {
    const res = await s.client.call('audit.list', { sandbox: name, follow: p.flags.has('--follow') });
    for (const e of res.events) print(e);
    if (!json && res.droppedPackets !== null) process.stdout.write(`dropped packets: ${res.droppedPackets}\n`);
    if (res.stream) {
      await new Promise<void>((resolve) => {
        s.client.onStream(res.stream!, (f) => {
          if (f.event?.type === 'audit') print(f.event.event);
          if (f.event?.type === 'end') resolve();
        });
      });
    }
    return 0;
  });
}
