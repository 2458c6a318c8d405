/**
 * The helper's Unix socket: 0660 root:ai-sandbox, so only root and members of the group can reach the
 * closed set of operations behind it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { RpcContext, Services } from '../rpc/context.js';
import { Connection } from './connection.js';

export function groupId(group: string): number | undefined {
  const line = fs
    .readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${group}:`));
  const gid = line?.split(':')[2];
  return gid === undefined ? undefined : Number(gid);
}

/** The group is part of the install; create it when missing (we are root). */
export function ensureGroup(group: string): number {
  let gid = groupId(group);
  if (gid === undefined) {
    execFileSync('groupadd', ['--system', group], { stdio: 'ignore' });
    gid = groupId(group);
  }
  if (gid === undefined) throw new AppError('INTERNAL', `could not create the group ${group}`);
  return gid;
}

/** Refuse to start over a live helper; remove a stale socket file. */
export async function claimSocket(socketPath: string): Promise<void> {
  if (!fs.existsSync(socketPath)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new AppError('ALREADY_EXISTS', `another helper is already listening on ${socketPath}`);
  fs.rmSync(socketPath, { force: true });
}

export async function listen(socketPath: string, group: string, services: Services, helper: RpcContext['helper']): Promise<net.Server> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  await claimSocket(socketPath);
  const gid = ensureGroup(group);
  const server = net.createServer((socket) => new Connection(socket, services, helper));
  // Create the socket with no access at all, then open it to the group: no window where others connect.
  const oldMask = process.umask(0o777);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chownSync(socketPath, 0, gid);
  fs.chmodSync(socketPath, 0o660);
  return server;
}
