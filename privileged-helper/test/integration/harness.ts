/**
 * A real helper for integration tests: a child process running `ai-sandbox helper` with its own run root,
 * socket and cgroup parent (so it never touches a user's daemon), plus the leak census the tests assert
 * on: mounts, cgroups and processes that belong to it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HelperClient } from '../../src/protocol/client.js';
import { mountsUnder } from '../../src/util/proc.js';
import { NativeNet } from '../../src/network/native-net.js';

export const CLI = fileURLToPath(new URL('../../bin/ai-sandbox.js', import.meta.url));
const CGROUP_ROOTS = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/pids', '/sys/fs/cgroup'];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let seq = 0;

export const TEST_NET_RANGE = '10.232.0.0/16';
export const TEST_NET_PREFIX = 'aist';

export class TestHelper {
  proc: ChildProcess | null = null;
  readonly env: Record<string, string>;
  readonly runRoot: string;
  readonly cgroupParent: string;
  readonly socket: string;
  stderr = '';
  /** set while a test stops or kills the helper on purpose */
  private ending = false;

  constructor(readonly tag = `t${process.pid}-${seq++}`) {
    this.runRoot = `/run/ai-sandbox-test-${tag}`;
    this.socket = `${this.runRoot}/helper.sock`;
    this.cgroupParent = `ai-sandbox-test-${tag}`;
    this.env = {
      ...(process.env as Record<string, string>),
      AI_SANDBOX_RUN_ROOT: this.runRoot,
      AI_SANDBOX_STATE_ROOT: `/tmp/ai-sandbox-test-state-${tag}`,
      AI_SANDBOX_SOCKET: this.socket,
      AI_SANDBOX_CGROUP_PARENT: this.cgroupParent,
      // networked sandboxes of tests: their own range, interface prefix and nftables table
      AI_SANDBOX_NET_RANGE: TEST_NET_RANGE,
      AI_SANDBOX_NET_PREFIX: TEST_NET_PREFIX,
      AI_SANDBOX_NET_TABLE: this.netTable,
    };
  }

  get netTable(): string {
    return `ai_sandbox_test_${this.tag.replace(/[^A-Za-z0-9_]/g, '_')}`;
  }

  /** What this helper holds of the network: host-side veths (by the test prefix) and its nft table. */
  async netCensus(): Promise<{ veths: string[]; table: boolean; elements: number }> {
    const veths = fs.readdirSync('/sys/class/net').filter((n) => n.startsWith(TEST_NET_PREFIX));
    const nft = NativeNet.start();
    try {
      const out = (await nft.json(`list table inet ${this.netTable}`).catch(() => null)) as { nftables: Array<{ set?: { elem?: unknown[] } }> } | null;
      const elements = (out?.nftables ?? []).reduce((n, item) => n + (item.set?.elem?.length ?? 0), 0);
      return { veths, table: out !== null, elements };
    } finally {
      nft.close();
    }
  }

  /** The census of the network once background teardown (veths go with their namespaces) has settled. */
  async settledNetCensus(): Promise<{ veths: string[]; table: boolean; elements: number }> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = await this.netCensus();
      if ((c.veths.length === 0 && c.elements === 0) || Date.now() > deadline) return c;
      await sleep(100);
    }
  }

  static async start(): Promise<TestHelper> {
    const h = new TestHelper();
    await h.startProcess();
    return h;
  }

  /** `ownGroup`: in a process group of its own, as in a terminal of its own (see interruptGroup) */
  async startProcess(opts: { ownGroup?: boolean } = {}): Promise<void> {
    this.proc = spawn(process.execPath, [...(process.env.AI_SANDBOX_HELPER_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.AI_SANDBOX_HELPER_CPU_PROF}`] : []), CLI, 'helper'], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'], detached: !!opts.ownGroup });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // a helper that dies under a test says so, with its last words (the test itself only sees a closed socket)
    this.ending = false;
    const proc = this.proc;
    proc.once('exit', (code, signal) => {
      if (this.ending || this.proc !== proc) return;
      process.stderr.write(`\n[TestHelper ${this.tag}] the helper exited unexpectedly (${signal ?? `code ${code}`}); its stderr ends:\n${this.stderr.split('\n').slice(-30).join('\n')}\n`);
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`helper exited ${this.proc.exitCode}: ${this.stderr}`);
      if (await canConnect(this.socket)) return;
      if (Date.now() > deadline) throw new Error(`helper did not listen on ${this.socket}: ${this.stderr}`);
      await sleep(20);
    }
  }

  client(): Promise<HelperClient> {
    return HelperClient.connect(this.socket, 'integration-test');
  }

  cli(args: string[], opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
    return runCli(args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  /** A Ctrl-C at the helper's terminal: SIGINT to its whole process group (startProcess({ ownGroup })). */
  async interruptGroup(timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null } | 'still running'> {
    const p = this.proc!;
    this.ending = true;
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => p.once('exit', (code, signal) => r({ code, signal })));
    process.kill(-p.pid!, 'SIGINT');
    return Promise.race([exited, sleep(timeoutMs).then(() => 'still running' as const)]);
  }

  /** SIGKILL the helper process alone (its launcher notices and cleans up, or the next helper does). */
  async kill9(): Promise<void> {
    const p = this.proc!;
    this.ending = true;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.ending = true;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    this.proc = null;
  }

  /**
   * What this helper's instances hold on the host right now. Idle warm slots (cgroups `sb-w<N>`, one init
   * each, see sandbox/warm-pool.ts) are counted apart: a helper keeps a few ready by design.
   */
  census(): { mounts: string[]; cgroups: string[]; processes: number[]; warm: number } {
    const cgroups: string[] = [];
    for (const root of CGROUP_ROOTS) {
      const dir = path.join(root, this.cgroupParent);
      if (!fs.existsSync(dir)) continue;
      const walk = (d: string) => {
        let entries: fs.Dirent[];
        try {
          entries = fs.readdirSync(d, { withFileTypes: true });
        } catch {
          return; // removed while we looked: a teardown in progress (settledCensus looks again)
        }
        for (const e of entries) {
          if (e.isDirectory()) {
            cgroups.push(path.join(d, e.name));
            walk(path.join(d, e.name));
          }
        }
      };
      walk(dir);
    }
    const processes: number[] = [];
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${this.cgroupParent}/`)) processes.push(Number(pid));
      } catch {
        // exited meanwhile
      }
    }
    // an idle slot's cgroup holds exactly its init; a taken one also holds the sandbox's program
    const idle = new Map<string, number[]>();
    for (const c of cgroups.filter((c) => /\/sb-w\d+$/.test(c) && c.startsWith('/sys/fs/cgroup/unified/'))) {
      try {
        const pids = fs.readFileSync(path.join(c, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
        if (pids.length <= 1) idle.set(path.basename(c), pids);
      } catch {
        // removed meanwhile
      }
    }
    const idlePids = new Set([...idle.values()].flat());
    return {
      mounts: mountsUnder(this.runRoot).filter((m) => !idle.has(`sb-${path.basename(m)}`)),
      cgroups: cgroups.filter((c) => !idle.has(path.basename(c))),
      processes: processes.filter((p) => !idlePids.has(p)),
      warm: idle.size,
    };
  }

  /**
   * The census once teardown (which runs after the exit is reported) has settled, or after 10 s. A taken
   * warm slot whose program is gone but whose init is still dying looks idle (one process in its
   * cgroup), so more idle-looking slots than the pool keeps means teardown has not settled yet either.
   */
  async settledCensus(): Promise<ReturnType<TestHelper['census']>> {
    const deadline = Date.now() + 10_000;
    const warmSlots = Number(this.env.AI_SANDBOX_WARM_SLOTS ?? 4);
    for (;;) {
      const c = this.census();
      const clean = c.processes.length === 0 && c.cgroups.length === 0 && !c.mounts.some((m) => m.includes('/sb/')) && c.warm <= warmSlots;
      if (clean || Date.now() > deadline) return c;
      await sleep(50);
    }
  }

  /** Remove everything, even after a failed test: stop, then clean up as a later helper would. */
  async destroy(): Promise<void> {
    await this.stop();
    for (const m of mountsUnder(this.runRoot)) await new Promise((r) => execFile('umount', ['-l', m], r));
    for (const root of CGROUP_ROOTS) {
      const dir = path.join(root, this.cgroupParent);
      if (!fs.existsSync(dir)) continue;
      const dirs: string[] = [];
      const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
        dirs.push(d);
      };
      walk(dir);
      for (const d of dirs) {
        try {
          for (const pid of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      await sleep(50);
      for (const d of dirs) {
        try {
          fs.rmdirSync(d);
        } catch {
          // already removed
        }
      }
    }
    for (const v of fs.readdirSync('/sys/class/net').filter((n) => n.startsWith(TEST_NET_PREFIX))) {
      await new Promise((r) => execFile('ip', ['link', 'del', v], r));
    }
    const nft = NativeNet.start();
    await nft.run(`add table inet ${this.netTable}\ndelete table inet ${this.netTable}`).catch(() => undefined);
    nft.close();
    fs.rmSync(this.runRoot, { recursive: true, force: true });
    fs.rmSync(this.env.AI_SANDBOX_STATE_ROOT!, { recursive: true, force: true });
  }
}

export function runCli(args: string[], opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: opts.env ?? (process.env as Record<string, string>), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
