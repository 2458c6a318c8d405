/** `ai-sandbox approvals`, `approve ID`, `deny ID`: syscalls waiting for a person (seccomp user notification). */
import type { ApprovalInfo } from '../../protocol/schema.js';
import { formatAddr } from '../../trace/records.js';
import { parseArgs, UsageError } from '../args.js';
import { withDaemon } from '../connect.js';

export const APPROVALS_HELP = `usage: ai-sandbox approvals [-f] [--json]

List the syscalls waiting for approval (sandboxes started with an approvals policy: \`approvals: {ask:
[connect]}\`), and the last ones settled. With -f, keep printing requests and decisions as they happen.
Answer with \`ai-sandbox approve ID\` or \`ai-sandbox deny ID\` (--always: the same answer for that syscall in
that sandbox from now on). Without an answer, the request is denied (EPERM) after the policy's timeout.`;
export const APPROVE_HELP = 'usage: ai-sandbox approve ID [--always]\n\nLet a waiting syscall continue (see `ai-sandbox approvals`).';
export const DENY_HELP = 'usage: ai-sandbox deny ID [--always]\n\nFail a waiting syscall with EPERM (see `ai-sandbox approvals`).';

function line(a: ApprovalInfo): string {
  const what = a.addr ? ` ${formatAddr(a.addr)}` : '';
  const status = a.status === 'pending' ? 'WAITING' : `${a.status}${a.by ? ` (${a.by})` : ''}`;
  return `${a.id.padEnd(6)} ${a.sandbox.padEnd(20)} pid ${String(a.pid).padEnd(7)} ${a.syscall}${what}  ${status}`;
}

export async function approvalsCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--follow': { value: false, alias: '-f' }, '--json': { value: false } });
  if (p.positionals.length > 0) throw new UsageError('usage: ai-sandbox approvals [-f] [--json]');
  const json = p.flags.has('--json');
  return withDaemon(async (s) => {
    if (!p.flags.has('--follow')) {
      const { approvals } = await s.client.call('approvals.list', {});
      process.stdout.write(json ? `${JSON.stringify(approvals, null, 2)}\n` : approvals.map((a) => `${line(a)}\n`).join(''));
      return 0;
    }
    const { stream } = await s.client.call('approvals.watch', {});
    await new Promise<void>((resolve) => {
      s.client.onStream(stream, (f) => {
        if (f.event?.type === 'approval') process.stdout.write(json ? `${JSON.stringify(f.event.approval)}\n` : `${line(f.event.approval)}\n`);
        else if (f.event?.type === 'end') resolve();
      });
      process.once('SIGINT', () => resolve());
    });
    return 0;
  });
}

async function decide(argv: string[], allow: boolean): Promise<number> {
  const p = parseArgs(argv, { '--always': { value: false } });
  if (p.positionals.length !== 1) throw new UsageError(`usage: ai-sandbox ${allow ? 'approve' : 'deny'} ID [--always]`);
  const a = await withDaemon((s) => s.client.call('approvals.decide', { id: p.positionals[0]!, allow, always: p.flags.has('--always') }));
  process.stdout.write(`${line(a)}\n`);
  return 0;
}

export const approveCommand = (argv: string[]) => decide(argv, true);
export const denyCommand = (argv: string[]) => decide(argv, false);
