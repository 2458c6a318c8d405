import { formatChecks, runDoctor } from '../../doctor/doctor.js';
import { parseArgs, UsageError } from '../args.js';

export const DOCTOR_HELP = 'usage: ai-sandbox doctor [--json]\n\nCheck every kernel feature and install piece sandboxes need; exit 1 when a required one is missing.';

export function doctorCommand(argv: string[]): number {
  const p = parseArgs(argv, { '--json': { value: false } });
  if (p.positionals.length) throw new UsageError(DOCTOR_HELP.split('\n')[0]!);
  const checks = runDoctor();
  process.stdout.write(p.flags.has('--json') ? `${JSON.stringify(checks, null, 2)}\n` : `${formatChecks(checks)}\n`);
  return checks.some((c) => c.required && !c.ok) ? 1 : 0;
}
