/**
 * `ai-sandbox`: a thin client of the helper's API. Exit status: the program's for run/exec; 2 for a
 * usage mistake; 1 for any other error, printed as one line that says what to do.
 */
import { AppError } from '../errors/app-error.js';
import { VERSION } from '../version.js';
import { InputError } from '../util/units.js';
import { AUDIT_HELP, auditCommand } from './commands/audit.js';
import { DOCTOR_HELP, doctorCommand } from './commands/doctor.js';
import { HELPER_HELP, helperCommand } from './commands/helper.js';
import { EXEC_HELP, execCommand, LOGS_HELP, logsCommand, PS_HELP, psCommand, RM_HELP, rmCommand, STOP_HELP, stopCommand } from './commands/manage.js';
import { RUN_HELP, runCommand, START_HELP, startCommand } from './commands/run.js';
import { CHECKPOINT_HELP, checkpointCommand, FORK_HELP, forkCommand, RESTORE_HELP, restoreCommand, SNAPSHOT_HELP, snapshotCommand, SNAPSHOTS_HELP, snapshotsCommand } from './commands/snapshot.js';
import { UI_HELP, uiCommand } from './commands/ui.js';
import { WORKFLOW_HELP, workflowCommand } from './commands/workflow.js';
import { TRACE_HELP, traceCommand } from './commands/trace.js';
import { OBSERVE_HELP, observeCommand } from './commands/observe.js';
import { APPROVALS_HELP, approvalsCommand, APPROVE_HELP, approveCommand, DENY_HELP, denyCommand } from './commands/approvals.js';

const COMMANDS: Record<string, { help: string; run: (argv: string[]) => Promise<number> | number }> = {
  run: { help: RUN_HELP, run: runCommand },
  start: { help: START_HELP, run: startCommand },
  ps: { help: PS_HELP, run: psCommand },
  logs: { help: LOGS_HELP, run: logsCommand },
  exec: { help: EXEC_HELP, run: execCommand },
  stop: { help: STOP_HELP, run: stopCommand },
  rm: { help: RM_HELP, run: rmCommand },
  checkpoint: { help: CHECKPOINT_HELP, run: checkpointCommand },
  snapshots: { help: SNAPSHOTS_HELP, run: snapshotsCommand },
  restore: { help: RESTORE_HELP, run: restoreCommand },
  fork: { help: FORK_HELP, run: forkCommand },
  snapshot: { help: SNAPSHOT_HELP, run: snapshotCommand },
  workflow: { help: WORKFLOW_HELP, run: workflowCommand },
  audit: { help: AUDIT_HELP, run: auditCommand },
  trace: { help: TRACE_HELP, run: traceCommand },
  approvals: { help: APPROVALS_HELP, run: approvalsCommand },
  observe: { help: OBSERVE_HELP, run: observeCommand },
  approve: { help: APPROVE_HELP, run: approveCommand },
  deny: { help: DENY_HELP, run: denyCommand },
  doctor: { help: DOCTOR_HELP, run: doctorCommand },
  helper: { help: HELPER_HELP, run: helperCommand },
  ui: { help: UI_HELP, run: uiCommand },
};

export const MAIN_HELP = `ai-sandbox ${VERSION}: run AI-agent programs in lightweight Linux sandboxes

usage: ai-sandbox COMMAND [options]

  run [opts] -- CMD...     run a command in a new sandbox, attached; exit with its status
  start --name N -- CMD... start a sandbox in the background
  ps [--json]              list sandboxes
  logs NAME [-f]           show (and follow) a sandbox's output
  exec NAME [-it] -- CMD   run a command inside a running sandbox
  stop NAME                stop a sandbox (SIGTERM, then SIGKILL)
  rm NAME [-f]             remove a stopped sandbox
  audit NAME [-f]          the network proxy's decisions for a sandbox (--json)
  checkpoint NAME          snapshot a running sandbox (--leave-running, --label)
  snapshots [NAME]         list snapshots
  restore SNAPSHOT         continue a snapshot as a new sandbox (--name)
  fork SNAPSHOT --count N  start N copies of a snapshot at once (--prefix)
  snapshot rm|diff         remove a snapshot, or compare two
  workflow validate FILE   check a workflow file and show its plan (no helper needed)
  workflow run FILE        run a workflow with live progress (also: list, show, replay, cancel)
  trace NAME [-f]          a traced sandbox's syscalls (also: trace export, ls, status)
  approvals [-f]           syscalls waiting for approval; approve ID / deny ID [--always]
  observe [NAME] [-f]      anomaly events (rule-named) and, with -f, resource samples
  doctor [--json]          check the kernel features sandboxes need
  helper                   run the privileged helper (root) in the foreground
  ui [--open FILE]         the app in a browser: serve it on 127.0.0.1 and print its URL

Run \`ai-sandbox COMMAND --help\` for a command's options.`;

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${MAIN_HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`ai-sandbox: unknown command "${name}": see ai-sandbox --help\n`);
    return 2;
  }
  const dashdash = rest.indexOf('--');
  const own = dashdash < 0 ? rest : rest.slice(0, dashdash);
  if (own.includes('--help') || own.includes('-h')) {
    process.stdout.write(`${cmd.help}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof InputError) {
      process.stderr.write(`ai-sandbox ${name}: ${err.message}\n`);
      return 2;
    }
    const e = AppError.from(err);
    process.stderr.write(`ai-sandbox ${name}: ${e.message}\n`);
    if (e.code === 'INTERNAL' && process.env.AI_SANDBOX_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return e.code === 'INVALID_ARGUMENT' || e.code === 'BAD_REQUEST' ? 2 : 1;
  }
}
