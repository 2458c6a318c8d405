/**
 * Crash recovery: whatever a dead helper instance left (its launcher, sandbox processes, cgroups,
 * tmpfs and overlay mounts, files) is found and removed before a new instance starts, so a `kill -9`
 * of the helper leaks nothing. Sandboxes are reaped, not re-adopted: their launcher (the only process
 * that could wait for them) died with the helper, and PDEATHSIG already killed their inits.
 *
 * Threat model: only paths under our own run root and cgroups under our own parents are touched; a
 * process is killed only when its pid and start time match what the dead instance recorded.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { detectCgroupDriver } from '../cgroup/detect.js';
import type { HelperConfig } from '../config.js';
import { isAlive, mountsUnder, type ProcessIdentity } from '../util/proc.js';
import { NativeNet } from '../network/native-net.js';
import { deleteTable } from '../network/rules.js';

export interface InstanceRecord {
  instance: string;
  helper: ProcessIdentity | null;
  launcher: ProcessIdentity | null;
  cgroupParent: string;
  /** its nftables table (inet), if it had networking */
  netTable?: string | undefined;
  createdAt: string;
}

export interface ReconcileReport {
  instances: string[];
  sandboxes: number;
  mounts: number;
}

function readRecord(dir: string): InstanceRecord | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'instance.json'), 'utf8')) as InstanceRecord;
  } catch {
    return null;
  }
}

/**
 * Clean up every instance whose helper is dead. With includeSelf, also this config's own instance (an
 * orderly stop, after the launcher exited).
 */
export async function reconcile(config: HelperConfig, opts: { includeSelf?: boolean } = {}): Promise<ReconcileReport> {
  const report: ReconcileReport = { instances: [], sandboxes: 0, mounts: 0 };
  const root = path.join(config.runRoot, 'instances');
  const names = fs.existsSync(root) ? fs.readdirSync(root) : [];
  for (const name of names) {
    const dir = path.join(root, name);
    const rec = readRecord(dir);
    const self = name === config.instance;
    if (self ? !opts.includeSelf && isAlive(rec?.helper) : isAlive(rec?.helper)) continue;
    if (!self && rec === null && !mountsUnder(dir).length && fs.statSync(dir).mtimeMs > Date.now() - 10_000) continue; // being created right now
    report.instances.push(name);
    if (rec?.launcher && isAlive(rec.launcher)) process.kill(rec.launcher.pid, 'SIGKILL');
    const parent = rec?.cgroupParent ?? (self ? config.cgroupParent : undefined);
    if (parent) report.sandboxes += await removeCgroups(parent, parent !== config.cgroupParent || opts.includeSelf === true);
    const table = rec?.netTable ?? (self ? config.net.table : undefined);
    await removeNetwork(dir, table);
    for (const m of mountsUnder(dir)) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
        report.mounts++;
      } catch {
        // already gone (a parent's lazy unmount took it)
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.join(config.stateRoot, 'logs', name), { recursive: true, force: true });
  }
  return report;
}

/**
 * A dead instance's network: its nftables table, and its slots (files named after their host-side
 * interface under net/): each veth pair deleted and its namespace unmounted.
 */
async function removeNetwork(dir: string, table: string | undefined): Promise<void> {
  const netDir = path.join(dir, 'net');
  const slots = fs.existsSync(netDir) ? fs.readdirSync(netDir).filter((f) => /^[a-z0-9]+$/.test(f)) : [];
  if (!table && !slots.length) return;
  let net;
  try {
    net = NativeNet.start();
    if (table) await net.run(deleteTable(table).join('\n'));
    for (const ifname of slots) await net.destroy(ifname, path.join(netDir, ifname));
  } catch {
    // no ai-sandbox-net: it could not have made any either; the unmounts below still run
  } finally {
    net?.close();
  }
}

async function removeCgroups(parent: string, removeParent: boolean): Promise<number> {
  let driver;
  try {
    driver = detectCgroupDriver({ parent });
  } catch {
    return 0;
  }
  const found = driver.list();
  for (const { name, pool } of found) await driver.open(name, pool)?.remove();
  for (const pool of driver.listPools()) await driver.removePool(pool);
  if (removeParent) await driver.destroy();
  return found.length;
}
