/**
 * The worker thread the auditing proxies run in (see proxy-host.ts for why, and for the messages).
 * Each proxy's audit events go to the helper's main thread, which stores and streams them.
 */
import { parentPort } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './proxy-host.js';
import { SandboxProxy } from './proxy.js';

const port = parentPort;
if (!port) throw new Error('proxy-worker.ts runs as a worker thread of the helper');
/** by the host's id, with its start (a close that arrives while it listens waits for it) */
const proxies = new Map<number, { proxy: SandboxProxy; started: Promise<void> }>();
const send = (m: FromWorker): void => port.postMessage(m);

port.on('message', (m: ToWorker) => {
  void handle(m).then(
    () => send({ kind: 'reply', id: m.id, error: null }),
    (err: unknown) => send({ kind: 'reply', id: m.id, error: err instanceof Error ? err.message : String(err) }),
  );
});

async function handle(m: ToWorker): Promise<void> {
  if (m.op === 'close') {
    const p = proxies.get(m.id);
    proxies.delete(m.id);
    await p?.started.catch(() => undefined);
    await p?.proxy.close();
    return;
  }
  const { spec } = m;
  const p = new SandboxProxy({
    sandbox: spec.sandbox,
    gateway: spec.gateway,
    policy: spec.policy,
    pins: new Map(spec.pins),
    range: spec.range,
    audit: { append: (event) => send({ kind: 'audit', event }) },
  });
  const started = p.start();
  proxies.set(m.id, { proxy: p, started });
  try {
    await started;
  } catch (err) {
    if (proxies.get(m.id)?.proxy === p) proxies.delete(m.id);
    throw err;
  }
}
