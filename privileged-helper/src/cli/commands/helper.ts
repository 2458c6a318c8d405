import { daemonConfig } from '../../config.js';
import { Helper } from '../../helper/helper.js';
import { parseArgs, UsageError } from '../args.js';

export const HELPER_HELP = `usage: ai-sandbox helper

Run the privileged helper in the foreground (as root): the socket ${daemonConfig().socketPath}
(0660 root:ai-sandbox), the sandbox launcher, and crash recovery of what a previous helper left.
Stops every sandbox on SIGINT/SIGTERM.`;

export async function helperCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {});
  if (p.positionals.length) throw new UsageError('usage: ai-sandbox helper');
  const helper = await Helper.start(daemonConfig());
  const r = helper.reconciled;
  if (r.instances.length) process.stderr.write(`ai-sandbox helper: cleaned up after ${r.instances.join(', ')}: ${r.sandboxes} sandboxes, ${r.mounts} mounts\n`);
  process.stderr.write(`ai-sandbox helper: listening on ${helper.config.socketPath}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await helper.stop();
  return 0;
}
