/**
 * Making and unmaking one network slot: a network namespace held by a bind mount of ours, a veth pair
 * (eth0 inside with the sandbox's address and a default route, <prefix><i> on the host with the
 * gateway address), IPv6 off on both ends, forwarding on for the host end only. iproute2 does the work;
 * the pool runs this ahead of time, off any sandbox's start path.
 *
 * Threat model: runs as root on the host; every name and address comes from addressing.ts (our prefix,
 * our range), never from a client. The namespace file lives under the instance's run directory, which
 * reconcile unmounts if the helper dies.
 */
import { execFile as execFileCb, spawn } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { AppError } from '../errors/app-error.js';
import type { SlotAddresses } from './addressing.js';

const execFile = promisify(execFileCb);

export interface SlotOps {
  /** throws ALREADY_EXISTS when the interface name is taken (another instance holds the slot) */
  create(a: SlotAddresses, nsPath: string): Promise<void>;
  destroy(a: SlotAddresses, nsPath: string): Promise<void>;
}

function runWithInput(cmd: string, args: string[], input: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stderr }));
    p.stdin.end(input);
  });
}

function writeSysctl(path: string, value: string): void {
  try {
    fs.writeFileSync(path, value);
  } catch {
    // IPv6 compiled out, or the knob missing on this kernel: nothing to switch off
  }
}

export const realSlotOps: SlotOps = {
  async create(a, nsPath) {
    fs.writeFileSync(nsPath, '', { mode: 0o600 });
    const inside = [
      `link add eth0 type veth peer name ${a.ifname} netns ${process.pid}`,
      'link set lo up',
      `addr add ${a.address}/30 dev eth0`,
      'link set eth0 up',
      `route add default via ${a.gateway} dev eth0 onlink`,
      '',
    ].join('\n');
    // In the new namespace: IPv6 off (nothing of ours routes it), then the batch above.
    const script = 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null; exec ip -batch -';
    const r = await runWithInput('unshare', [`--net=${nsPath}`, '/bin/sh', '-c', script], inside);
    if (r.code !== 0) {
      await unbind(nsPath);
      if (/File exists/.test(r.stderr)) throw new AppError('ALREADY_EXISTS', `network interface ${a.ifname} exists`);
      throw new AppError('INTERNAL', `cannot make network slot ${a.ifname}: ${r.stderr.trim()}`);
    }
    writeSysctl(`/proc/sys/net/ipv6/conf/${a.ifname}/disable_ipv6`, '1');
    writeSysctl(`/proc/sys/net/ipv4/conf/${a.ifname}/forwarding`, '1');
    const host = await runWithInput('ip', ['-batch', '-'], `addr add ${a.gateway}/30 dev ${a.ifname}\nlink set ${a.ifname} up\n`);
    if (host.code !== 0) {
      await this.destroy(a, nsPath);
      throw new AppError('INTERNAL', `cannot configure ${a.ifname}: ${host.stderr.trim()}`);
    }
  },

  async destroy(a, nsPath) {
    // Deleting the host end takes the pair at once (a namespace's own teardown is deferred by the kernel).
    await execFile('ip', ['link', 'del', a.ifname]).catch(() => undefined);
    await unbind(nsPath);
  },
};

async function unbind(nsPath: string): Promise<void> {
  await execFile('umount', [nsPath]).catch(() => undefined);
  fs.rmSync(nsPath, { force: true });
}
