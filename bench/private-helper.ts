/** A private helper daemon for a benchmark, started and destroyed like the integration tests do. */
import type { HelperClient } from '../privileged-helper/src/protocol/client.js';
import { TestHelper } from '../privileged-helper/test/integration/harness.js';
import type { BenchContext } from './harness.js';

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export interface PrivateHelper {
  helper: TestHelper;
  client: HelperClient;
  /** what the helper holds on the host with no sandbox (its own tmpfs mounts, cgroup parents) */
  idleCensus: Census;
  cleanup: () => Promise<void>;
}

export type Census = ReturnType<TestHelper['census']>;

export async function startPrivateHelper(ctx: BenchContext): Promise<PrivateHelper> {
  const helper = new TestHelper(`bench-${process.pid}`);
  let done: Promise<void> | null = null;
  let client: HelperClient | null = null;
  const cleanup = (): Promise<void> => {
    done ??= (async () => {
      client?.close();
      await helper.destroy();
    })();
    return done;
  };
  const unregister = ctx.onCleanup(cleanup);
  try {
    await helper.startProcess();
    client = await withTimeout(helper.client(), 10_000, 'hello');
  } catch (err) {
    await cleanup();
    unregister();
    throw new Error(`${(err as Error).message}\n${tail(helper.stderr)}`);
  }
  return {
    helper,
    client,
    idleCensus: helper.census(),
    cleanup: async () => {
      await cleanup();
      unregister();
    },
  };
}

