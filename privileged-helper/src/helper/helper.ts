/**
 * One helper instance: reconciles what dead instances left, starts the launcher, builds the default
 * root's skeleton, and serves the socket (the daemon) or an in-process client (embedded `run`).
 */
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { detectCgroupDriver } from '../cgroup/detect.js';
import { instanceDir, type HelperConfig } from '../config.js';
import { AppError } from '../errors/app-error.js';
import { Launcher } from '../launcher/launcher.js';
import { PROTOCOL_VERSION } from '../protocol/schema.js';
import type { Services } from '../rpc/context.js';
import { SandboxManager } from '../sandbox/manager.js';
import { defaultTracerBinary, TraceService } from '../trace/service.js';
import { ApprovalService, defaultUnotifyBinary } from '../approvals/service.js';
import { ObserveService } from '../observe/service.js';
import { SnapshotService } from '../snapshot/service.js';
import { SnapshotStore } from '../snapshot/store.js';
import { databaseFile } from '../store/db.js';
import { RunStore } from '../store/runs.js';
import { WorkflowEngine } from '../workflow/engine.js';
import { buildHostSkeleton } from '../sandbox/rootfs.js';
import { listen } from '../server/server.js';
import { AuditLog } from '../network/audit.js';
import { AuditStore } from '../store/audit.js';
import { NetworkService } from '../network/network.js';
import { identityOf, mountsUnder } from '../util/proc.js';
import { VERSION } from '../version.js';
import { reconcile, type ReconcileReport, type InstanceRecord } from './reconcile.js';

export const CAPABILITIES = ['sandbox', 'exec', 'logs', 'stats', 'trace', 'approvals', 'observe'];

export class Helper {
  private server: net.Server | null = null;

  private constructor(
    readonly config: HelperConfig,
    readonly services: Services,
    readonly launcher: Launcher,
    readonly reconciled: ReconcileReport,
  ) {}

  get info() {
    return { version: VERSION, instance: this.config.instance, capabilities: CAPABILITIES, protocol: PROTOCOL_VERSION };
  }

  static async start(config: HelperConfig): Promise<Helper> {
    if (process.getuid?.() !== 0) {
      throw new AppError('PERMISSION_DENIED', 'the helper needs root: run it with sudo, or start the daemon once (`sudo ai-sandbox helper`) and join the ai-sandbox group');
    }
    if (!fs.existsSync(config.launcherBinary)) {
      throw new AppError('KERNEL_FEATURE_MISSING', `the sandbox launcher is not built (${config.launcherBinary}): run \`npm run setup\``);
    }
    const dir = instanceDir(config);
    const reconciled = await reconcile(config);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const cgroups = detectCgroupDriver({ parent: config.cgroupParent });
    cgroups.init();
    const launcher = Launcher.start(config.launcherBinary, dir);
    try {
      await waitForMount(path.join(dir, 'base'), launcher);
      const record: InstanceRecord = {
        instance: config.instance,
        helper: identityOf(process.pid),
        launcher: launcher.pid ? identityOf(launcher.pid) : null,
        cgroupParent: config.cgroupParent,
        netTable: config.net.table,
        createdAt: new Date().toISOString(),
      };
      fs.writeFileSync(path.join(dir, 'instance.json'), JSON.stringify(record, null, 2));
      // Only the daemon keeps run history: an embedded helper must not mark the daemon's runs interrupted.
      const store = config.instance === 'daemon' ? RunStore.open(databaseFile(config.stateRoot)) : null;
      const skeleton = path.join(dir, 'base', 'host');
      await buildHostSkeleton(skeleton, launcher);
      const auditStore = store ? new AuditStore(store.db) : null;
      const audit = new AuditLog(auditStore ? (e) => auditStore.append(e) : null);
      const network = new NetworkService(config.net, dir, audit);
      if (config.net.poolSize > 0) network.ready().catch((err: unknown) => process.stderr.write(`ai-sandbox helper: ${AppError.from(err).message}\n`));
      const manager = new SandboxManager(launcher, cgroups, {
        instance: dir,
        skeleton,
        logs: path.join(config.stateRoot, 'logs', config.instance),
      }, { warmSlots: config.warmSlots, network });
      const snapshots = new SnapshotService(manager, new SnapshotStore(path.join(config.stateRoot, 'snapshots')), launcher, path.join(config.stateRoot, 'logs', config.instance));
      const workflows = new WorkflowEngine(manager, path.join(config.stateRoot, 'runs', config.instance), store);
      const interrupted = workflows.markInterrupted();
      if (interrupted.length) process.stderr.write(`ai-sandbox helper: runs interrupted by the previous helper's end: ${interrupted.join(', ')} (resume with \`ai-sandbox workflow replay RUN --from STEP\`)\n`);
      const traces = new TraceService(config.tracerBinary ?? defaultTracerBinary(config.launcherBinary), path.join(config.stateRoot, 'traces'));
      const approvals = new ApprovalService(defaultUnotifyBinary(config.launcherBinary), dir);
      const observe = new ObserveService(manager);
      manager.observers.push(traces.observer, approvals.observer, observe.observer);
      traces.listeners.push((sandbox, buf) => observe.onRecords(sandbox, buf));
      approvals.onDenied.push((a) => observe.onApprovalDenied(a.sandbox, a.syscall, a.by ?? 'user'));
      audit.listeners.push((e) => observe.onAudit(e));
      observe.start();
      const services: Services = { manager, snapshots, workflows, network, audit, auditStore, traces, approvals, observe };
      const helper = new Helper(config, services, launcher, reconciled);
      launcher.onFatal = (err) => {
        process.stderr.write(`ai-sandbox helper: ${err.message}\n`);
        process.exitCode = 1;
        void helper.stop();
      };
      if (config.socketPath) {
        helper.server = await listen(config.socketPath, config.socketGroup, services, { version: VERSION, instance: config.instance, capabilities: CAPABILITIES });
      }
      return helper;
    } catch (err) {
      await launcher.stop();
      throw err;
    }
  }

  /**
   * Stop every sandbox, the launcher, and the socket; remove this instance's files. Every step runs
   * even when an earlier one fails (a stop that gave up halfway would leave the
   * launcher and its sandboxes running, and the process alive); the first failure is thrown at the end.
   */
  async stop(): Promise<void> {
    const failures: unknown[] = [];
    const step = async (what: () => unknown): Promise<void> => {
      try {
        await what();
      } catch (err) {
        failures.push(err);
      }
    };
    this.server?.close();
    if (this.config.socketPath) fs.rmSync(this.config.socketPath, { force: true });
    this.services.observe.stop();
    await step(() => this.services.workflows.shutdown());
    await step(() => this.services.manager.shutdown());
    await step(() => this.services.network.shutdown());
    await step(() => this.services.traces.shutdown());
    await step(() => this.services.approvals.shutdown());
    await step(() => this.launcher.stop());
    // The launcher unmounted the sandboxes; its own base/sb tmpfs (and any network slot the network
    // service could not remove) go through the same path a dead instance's do, so an orderly stop and a
    // crash leave the same (nothing).
    await step(() => reconcile(this.config, { includeSelf: true }));
    if (failures.length) throw failures[0];
  }
}

async function waitForMount(dir: string, launcher: Launcher): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!mountsUnder(dir).includes(dir)) {
    if (Date.now() > deadline || launcher.pid === undefined) {
      throw new AppError('LAUNCHER_FAILED', `the launcher did not mount ${dir}: run with AI_SANDBOX_DEBUG=1 to see its log`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}
