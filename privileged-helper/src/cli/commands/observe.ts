/** `ai-sandbox observe`: resource samples and anomaly events (each naming its rule). */
import type { Anomaly, ResourceSample } from '../../observe/rules.js';
import { parseArgs, UsageError } from '../args.js';
import { withDaemon } from '../connect.js';

export const OBSERVE_HELP = `usage: ai-sandbox observe [NAME] [-f] [--json]

Anomaly events of a sandbox (or all): memory-near-limit, cpu-throttled, denied-syscall, unexpected-exec,
failed-open-burst, blocked-domain (the proxy refused a request), each naming its rule (rules: \`anomalies:\` in the spec or workflow step; the syscall
rules need the sandbox traced). With -f, keep following, with a resource sample line per second per
running sandbox (CPU, memory against its limit, processes).`;

function sampleLine(s: ResourceSample): string {
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  return `${s.at.slice(11, 19)} ${s.sandbox.padEnd(20)} cpu ${s.cpus.toFixed(2)}  mem ${mb(s.memoryCurrentBytes)}/${mb(s.memoryLimitBytes)} MiB  pids ${s.pidsCurrent}  throttled ${s.throttledPeriods}`;
}

function anomalyLine(a: Anomaly): string {
  return `${a.at.slice(11, 19)} ${a.sandbox.padEnd(20)} ANOMALY ${a.rule}: ${a.message}`;
}

export async function observeCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { '--follow': { value: false, alias: '-f' }, '--json': { value: false } });
  if (p.positionals.length > 1) throw new UsageError('usage: ai-sandbox observe [NAME] [-f] [--json]');
  const sandbox = p.positionals[0];
  const json = p.flags.has('--json');
  return withDaemon(async (s) => {
    if (!p.flags.has('--follow')) {
      const { anomalies } = await s.client.call('observe.anomalies', sandbox === undefined ? {} : { sandbox });
      process.stdout.write(json ? `${JSON.stringify(anomalies, null, 2)}\n` : anomalies.map((a) => `${anomalyLine(a)}\n`).join(''));
      return 0;
    }
    const { stream } = await s.client.call('observe.watch', sandbox === undefined ? {} : { sandbox });
    await new Promise<void>((resolve) => {
      s.client.onStream(stream, (f) => {
        const ev = f.event;
        if (ev?.type === 'resources') process.stdout.write(json ? `${JSON.stringify(ev)}\n` : `${sampleLine(ev.sample)}\n`);
        else if (ev?.type === 'anomaly') process.stdout.write(json ? `${JSON.stringify(ev)}\n` : `${anomalyLine(ev.anomaly)}\n`);
        else if (ev?.type === 'end') resolve();
      });
      process.once('SIGINT', () => resolve());
    });
    return 0;
  });
}
