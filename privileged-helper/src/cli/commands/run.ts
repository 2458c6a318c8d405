import fs from 'node:fs';
import { AppError } from '../../errors/app-error.js';
import type { ExitReport } from '../../protocol/schema.js';
import { one, parseArgs, SANDBOX_FLAGS, specFromArgs } from '../args.js';
import { attachOutput, forwardStdin, terminalSize } from '../attach.js';
import { connectDaemon, connectOrEmbed } from '../connect.js';

export const RUN_HELP = `usage: ai-sandbox run [options] -- COMMAND [ARG...]

Run COMMAND in a new sandbox with stdin, stdout and stderr attached, and exit with its status
(128+N when it was killed by signal N). The sandbox and everything it wrote are gone afterwards.
With no helper running, an embedded one starts in this process (root only).

options:
  --name NAME            sandbox name (default: generated)
  -m, --memory SIZE      memory limit, e.g. 256M (default 1G)
  --cpus N               CPU quota in CPUs, e.g. 0.5
  --cpu-weight N         relative CPU weight 1..10000 (default 100)
  --pids N               process limit (default 1024)
  --timeout DURATION     kill the whole sandbox after e.g. 30s, 5m
  --rootfs DIR           use DIR as the read-only root (default: the host's system dirs)
  -v, --mount SRC:DST[:ro]  bind a host path (repeatable)
  -e, --env KEY=VALUE    set an environment variable (repeatable)
  -w, --workdir DIR      working directory (default /home/sandbox)
  -u, --user UID[:GID]   user to run as (default 65534)
  --allow-listen         allow listening sockets (servers)
  --allow-port PORT[/udp]   network: egress to host.ai-sandbox.internal and the outside
                         on PORT (repeatable; default: no network, loopback only)
  --allow-domain PATTERN HTTP(S) to these names only, through the auditing proxy
                         (example.com or *.example.com; repeatable; sets HTTP_PROXY)
  --deny-domain PATTERN  refuse these names even if an --allow-domain matches
  --resolve NAME=ADDR[:PORT]  pin NAME to ADDR (and PORT) for the proxy, like curl's
  -t, --tty              give the command a terminal
  --tmpfs-size SIZE      size of the in-memory writable layer (default 1G)
  --trace                record its syscalls (eBPF): \`ai-sandbox trace NAME\`, kept after it ends
  --trace-syscalls LIST  record only these (names or families: open,connect,exec,...); implies --trace
  --report FILE          write a JSON exit report: exitCode, signal, reason, cpuMs,
                         memoryPeakBytes, startMs, wallMs`;

export async function runCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { ...SANDBOX_FLAGS, '--report': { value: true } });
  const tty = p.flags.has('--tty');
  const spec = specFromArgs(p, tty ? terminalSize() : undefined);
  const reportFile = one(p, '--report');
  const session = await connectOrEmbed();
  let stopStdin = () => {};
  let report: ExitReport | null = null;
  try {
    const res = await session.client.call('sandbox.create', { spec, attach: true, stdin: true, autoRemove: true });
    stopStdin = forwardStdin(session.client, { sandbox: res.name }, tty);
    const onSignal = () => void session.client.call('sandbox.stop', { name: res.name, graceMs: 2000 }).catch(() => undefined);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    report = await attachOutput(session.client, res.stream!);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  } catch (err) {
    const e = AppError.from(err);
    if (e.code !== 'FAILED_TO_START' || !e.details?.report) throw e;
    report = e.details.report as ExitReport;
    process.stderr.write(`ai-sandbox: ${e.message}\n`);
  } finally {
    stopStdin();
    await session.close();
  }
  if (!report) throw new AppError('INTERNAL', 'the sandbox ended without an exit report');
  if (reportFile) fs.writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  if (report.reason === 'oom-killed') process.stderr.write('ai-sandbox: the sandbox ran out of memory and was killed (raise --memory)\n');
  if (report.reason === 'timed-out') process.stderr.write('ai-sandbox: the sandbox hit its --timeout and was killed\n');
  return report.exitCode;
}

export const START_HELP = `usage: ai-sandbox start --name NAME [options] -- COMMAND [ARG...]

Start COMMAND in a new sandbox in the background (needs a running helper). Options as for run,
without --report. Then: ai-sandbox logs NAME -f, exec, stop, rm.`;

export async function startCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, SANDBOX_FLAGS);
  const tty = p.flags.has('--tty');
  const spec = specFromArgs(p, tty ? terminalSize() : undefined);
  const session = await connectDaemon();
  try {
    const res = await session.client.call('sandbox.create', { spec, attach: false, autoRemove: false });
    process.stdout.write(`${res.name}\n`);
    return 0;
  } finally {
    await session.close();
  }
}
