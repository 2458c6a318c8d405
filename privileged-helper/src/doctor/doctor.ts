/**
 * `ai-sandbox doctor`: every kernel feature and install piece a sandbox needs, each found by trying it
 * (the launcher's --probe runs the real clone3/mount/seccomp/Landlock calls in a throw-away child), with
 * what to do when it is missing. Required checks decide the exit status; optional ones say what they
 * would enable.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { detectCgroupDriver } from '../cgroup/detect.js';
import path from 'node:path';
import { daemonConfig, type HelperConfig } from '../config.js';
import { parseRange, slotAddresses } from '../network/addressing.js';
import { decodeNetReplies, defaultNetBinary, encodeNetRequest, NetOp } from '../network/native-net.js';
import { deleteTable, tableRuleset } from '../network/rules.js';
import { forwardingAdvice, uplinks } from '../network/uplink.js';
import { groupId } from '../server/server.js';
import { defaultTracerBinary } from '../trace/service.js';
import { defaultUnotifyBinary } from '../approvals/service.js';

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string | undefined;
}

interface Probe {
  clone3: boolean;
  namespaces: Record<string, boolean>;
  overlay: boolean;
  tmpfs: boolean;
  seccomp: boolean;
  seccompUserNotif: boolean;
  landlockAbi: number;
  pidfd: boolean;
  errors?: Record<string, string>;
}

function runProbe(launcher: string): Probe | string {
  try {
    return JSON.parse(execFileSync(launcher, ['--probe'], { encoding: 'utf8', timeout: 10_000 })) as Probe;
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? 'probe failed';
  }
}

export function findCriu(): string | null {
  for (const p of ['/opt/ai-sandbox/criu/sbin/criu', '/usr/local/sbin/criu', '/usr/sbin/criu']) if (fs.existsSync(p)) return p;
  return null;
}

export function criuVersion(criu: string): string | null {
  try {
    return /Version:\s*([\d.]+)/.exec(execFileSync(criu, ['--version'], { encoding: 'utf8' }))?.[1] ?? null;
  } catch {
    return null;
  }
}

function criuCheck(criu: string): string {
  try {
    return execFileSync(criu, ['check'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }).trim().split('\n').pop() ?? '';
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return (e.stderr ?? e.message).trim().split('\n').pop() ?? 'failed';
  }
}

function versionAtLeast(v: string, min: [number, number]): boolean {
  const [a = 0, b = 0] = v.split('.').map(Number);
  return a > min[0] || (a === min[0] && b >= min[1]);
}

export function runDoctor(): Check[] {
  const cfg = daemonConfig();
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const root = process.getuid?.() === 0;
  add({ name: 'root', ok: root, required: true, detail: root ? 'running as root' : `running as uid ${process.getuid?.()}`, fix: 'run `sudo ai-sandbox doctor`: the helper and these probes need root' });
  const [major = 0, minor = 0] = os.release().split('.').map(Number);
  add({ name: 'kernel', ok: major > 5 || (major === 5 && minor >= 14), required: true, detail: os.release(), fix: 'Linux 5.14 or newer is needed (clone3 with CLONE_INTO_CGROUP, cgroup.kill, Landlock)' });

  const launcherBuilt = fs.existsSync(cfg.launcherBinary);
  add({ name: 'launcher', ok: launcherBuilt, required: true, detail: launcherBuilt ? cfg.launcherBinary : 'not built', fix: 'run `npm run setup` (builds privileged-helper/native with make; needs libseccomp-dev)' });
  const probe = launcherBuilt && root ? runProbe(cfg.launcherBinary) : 'needs the launcher and root';
  const p = typeof probe === 'string' ? null : probe;
  const why = (k: string) => p?.errors?.[k] ?? (typeof probe === 'string' ? probe : 'not available');
  const ns = ['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup'];
  const missingNs = p ? ns.filter((n) => !p.namespaces[n]) : ns;
  add({ name: 'namespaces', ok: !!p && missingNs.length === 0, required: true, detail: p ? (missingNs.length ? `missing: ${missingNs.join(' ')} (${why('namespaces')})` : ns.join(' ')) : why('namespaces'), fix: 'a kernel with CONFIG_PID_NS, MNT, UTS, IPC, NET and CGROUP namespaces; inside a container, run with --privileged or on the host' });
  add({ name: 'clone3', ok: !!p?.clone3, required: true, detail: p?.clone3 ? 'clone3 with CLONE_INTO_CGROUP' : why('clone3'), fix: 'Linux 5.7+; a seccomp profile around this process (e.g. a container runtime) may block clone3' });
  add({ name: 'overlayfs', ok: !!p?.overlay, required: true, detail: p?.overlay ? 'overlay mounts over tmpfs work' : why('overlay'), fix: 'load the overlay module: `modprobe overlay`' });
  add({ name: 'seccomp', ok: !!p?.seccomp, required: true, detail: p?.seccomp ? `filters work${p.seccompUserNotif ? ', user notification available' : ''}` : why('seccomp'), fix: 'a kernel with CONFIG_SECCOMP_FILTER' });
  add({ name: 'landlock', ok: (p?.landlockAbi ?? 0) > 0, required: false, detail: p && p.landlockAbi > 0 ? `ABI ${p.landlockAbi}` : why('landlock'), fix: 'boot with lsm=...,landlock for an extra file/port restriction layer (sandboxes work without it)' });

  try {
    const driver = detectCgroupDriver({ parent: cfg.cgroupParent });
    add({ name: 'cgroups', ok: true, required: true, detail: driver.mode === 'v2' ? 'cgroup v2 (memory, cpu, pids)' : 'hybrid: v1 memory, cpu, pids + cgroup2 for identity' });
  } catch (err) {
    add({ name: 'cgroups', ok: false, required: true, detail: (err as Error).message, fix: 'mount cgroup2 at /sys/fs/cgroup with the memory, cpu and pids controllers enabled' });
  }

  const btf = fs.existsSync('/sys/kernel/btf/vmlinux');
  add({ name: 'btf', ok: btf, required: false, detail: btf ? '/sys/kernel/btf/vmlinux' : 'no kernel BTF', fix: 'a kernel built with CONFIG_DEBUG_INFO_BTF, for syscall tracing (ai-sandbox trace)' });
  add(tracingCheck(cfg.tracerBinary ?? defaultTracerBinary(cfg.launcherBinary), root, btf));
  const unotify = defaultUnotifyBinary(cfg.launcherBinary);
  const notifOk = !!p?.seccompUserNotif;
  add({
    name: 'approvals',
    ok: notifOk && fs.existsSync(unotify),
    required: false,
    detail: !notifOk ? `unsupported: no seccomp user notification (${why('seccomp')})` : fs.existsSync(unotify) ? `seccomp user notification; supervisor ${unotify}` : `the supervisor is not built (${unotify})`,
    fix: notifOk ? 'run `npm run setup` (builds ai-sandbox-unotify)' : 'a kernel with SECCOMP_RET_USER_NOTIF (5.0+) for approvals (ask policies)',
  });
  const criu = findCriu();
  const cv = criu ? criuVersion(criu) : null;
  const criuOk = !!cv && versionAtLeast(cv, [4, 2]) && root;
  const check = criuOk ? criuCheck(criu!) : null;
  add({
    name: 'criu',
    ok: criuOk && check === 'Looks good.',
    required: false,
    detail: criu ? `${criu} ${cv ?? '(version unknown)'}${check ? `, criu check: ${check}` : ''}` : 'not installed',
    fix: cv && !versionAtLeast(cv, [4, 2]) ? `CRIU ${cv} is too old (3.17 fails on kernels >= 6.x with a vDSO error): \`npm run setup\` builds 4.2 from Debian source` : 'CRIU 4.2 or newer is needed for checkpoint/restore/fork: `npm run setup` builds it from Debian source',
  });
  if (root) add(networkCheck(cfg.net));
  const up = uplinks();
  const off = up.filter((u) => !u.forwarding);
  add({
    name: 'egress',
    ok: up.length > 0 && off.length === 0,
    required: false,
    detail: up.length === 0 ? 'no IPv4 default route: --allow-port reaches only host.ai-sandbox.internal' : off.length ? `forwarding off on ${off.map((u) => u.dev).join(', ')}` : `forwarding on ${up.map((u) => u.dev).join(', ')}`,
    fix: off.length ? forwardingAdvice(off) : 'a default route, for sandboxes with --allow-port to reach the outside',
  });
  const gid = groupId(cfg.socketGroup);
  add({ name: 'group', ok: gid !== undefined, required: false, detail: gid !== undefined ? `${cfg.socketGroup} (gid ${gid})` : `no ${cfg.socketGroup} group yet`, fix: 'the helper creates it on first start; add users with `usermod -aG ai-sandbox USER`' });
  return checks;
}

/** Requests to ai-sandbox-net, synchronously (doctor is a one-shot command): status and text per request. */
function netRequests(binary: string, reqs: Array<{ op: number; payload: string }>): Array<{ status: number; text: string }> {
  const out = execFileSync(binary, [], { input: Buffer.concat(reqs.map((r) => encodeNetRequest(r.op, r.payload))), timeout: 10_000 });
  return decodeNetReplies(out).replies;
}

/**
 * Networked sandboxes need nftables (an inet table with nat chains) and veth pairs into a new namespace:
 * both tried for real, with a throw-away table and the last slot of the configured range.
 */
function networkCheck(net: HelperConfig['net']): Check {
  const fix = 'networked sandboxes (--allow-port, --allow-domain) need nftables with nat (CONFIG_NF_TABLES, NFT_NAT, NFT_REDIR, NFT_MASQ), veth (CONFIG_VETH) and `npm run setup` (builds ai-sandbox-net with libnftables-dev); sandboxes without network work regardless';
  const binary = defaultNetBinary();
  if (!fs.existsSync(binary)) return { name: 'network', ok: false, required: false, detail: `${binary} is not built`, fix };
  try {
    const range = parseRange(net.range);
    const slot = slotAddresses(range, `${net.prefix}doc`, range.slots - 1);
    const table = 'ai_sandbox_doctor';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-sandbox-doctor-'));
    const ns = path.join(dir, 'ns');
    try {
      const [nft, made] = netRequests(binary, [
        { op: NetOp.NFT, payload: `${tableRuleset(table, range)}\n${deleteTable(table).join('\n')}` },
        { op: NetOp.SLOT_NEW, payload: `${slot.ifname}\0${slot.address}\0${slot.gateway}\0${ns}\0` },
        { op: NetOp.SLOT_DEL, payload: `${slot.ifname}\0${ns}\0` },
      ]);
      if (!nft || nft.status !== 0) return { name: 'network', ok: false, required: false, detail: `nftables refused our rules: ${nft?.text.trim().split('\n')[0] ?? 'no answer'}`, fix };
      if (!made || made.status !== 0) return { name: 'network', ok: false, required: false, detail: `cannot make a veth pair into a new namespace: ${made?.text ?? 'no answer'}`, fix };
      return { name: 'network', ok: true, required: false, detail: `nftables (inet, nat, redirect) and veth work; range ${net.range}, interfaces ${net.prefix}N, table ${net.table}` };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } catch (err) {
    return { name: 'network', ok: false, required: false, detail: (err as Error).message, fix };
  }
}

/** Tracing works when the tracer's tp_btf programs load and attach here (tried, then detached at once). */
function tracingCheck(tracer: string, root: boolean, btf: boolean): Check {
  const name = 'tracing';
  const fix = 'syscall traces (--trace, ai-sandbox trace) need kernel BTF, tp_btf support and the tracer: `npm run setup` (clang, bpftool, libbpf-dev)';
  if (!btf) return { name, ok: false, required: false, detail: 'unsupported: no kernel BTF (/sys/kernel/btf/vmlinux)', fix };
  if (!fs.existsSync(tracer)) return { name, ok: false, required: false, detail: `the tracer is not built (${tracer})`, fix };
  if (!root) return { name, ok: false, required: false, detail: 'needs root to try', fix: 'run `sudo ai-sandbox doctor`' };
  try {
    const p = JSON.parse(execFileSync(tracer, ['--probe'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] })) as { tpBtf: boolean; attachMs?: number; loadMs?: number; error?: string };
    if (p.tpBtf) return { name, ok: true, required: false, detail: `tp_btf sys_enter/sys_exit attach (load ${p.loadMs?.toFixed(1)} ms, attach ${p.attachMs?.toFixed(2)} ms)` };
    return { name, ok: false, required: false, detail: `unsupported: ${p.error ?? 'the kernel refused the programs'}`, fix };
  } catch (err) {
    return { name, ok: false, required: false, detail: `the tracer probe failed: ${(err as Error).message.split('\n')[0]}`, fix };
  }
}

export function formatChecks(checks: Check[]): string {
  const w = Math.max(...checks.map((c) => c.name.length));
  return checks
    .map((c) => {
      const status = c.ok ? 'ok      ' : c.required ? 'MISSING ' : 'optional';
      const line = `${status} ${c.name.padEnd(w)}  ${c.detail}`;
      return c.ok || !c.fix ? line : `${line}\n${' '.repeat(w + 11)}→ ${c.fix}`;
    })
    .join('\n');
}
