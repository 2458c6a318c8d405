/**
 * Attacks the sandbox from inside (fixtures/escape.py) and checks every way out is closed. Each attempt
 * is harmless even if the sandbox were broken (see HOST-FACTS testing hazards).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHelper } from './harness.js';

const FIXTURES = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');

describe('escape attempts from inside a sandbox', () => {
  let helper: TestHelper;
  let result: Record<string, unknown> & { syscalls: Record<string, { ret: number; errno: string }> };
  let hostDir: string;
  let server: net.Server;

  beforeAll(async () => {
    helper = await TestHelper.start();
    hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'escape-host-'));
    fs.writeFileSync(path.join(hostDir, 'marker'), 'host secret');
    fs.mkdirSync(path.join(hostDir, 'ro'));
    server = net.createServer((c) => c.end('hello from the host\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const args = JSON.stringify({
      hostMarker: path.join(hostDir, 'marker'),
      hostWritable: '/usr/share/escape-test-written',
      hostPort: port,
      helperSocket: helper.socket,
    });
    const r = await helper.cli(['run', '--mount', `${FIXTURES}:/fixtures:ro`, '--mount', `${hostDir}/ro:/ro:ro`, '--', 'python3', '/fixtures/escape.py', args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    result = JSON.parse(r.stdout);
  }, 60_000);

  afterAll(async () => {
    server?.close();
    fs.rmSync(hostDir, { recursive: true, force: true });
    await helper?.destroy();
  });

  it('runs without capabilities, with no_new_privs and a seccomp filter, as a non-root user', () => {
    expect(result.capEff).toBe('0000000000000000');
    expect(result.capBnd).toBe('0000000000000000');
    expect(result.noNewPrivs).toBe('1');
    expect(result.seccomp).toBe('2');
    expect(result.uid).toBe(65534);
  });

  it('refuses every dangerous syscall', () => {
    const refused = ['EPERM', 'ENOSYS', 'EACCES'];
    for (const [name, r] of Object.entries(result.syscalls)) {
      expect({ name, ...r }, `${name} must be refused`).toMatchObject({ name, ret: -1 });
      expect(refused, `${name} returned ${r.errno}`).toContain(r.errno);
    }
    // These succeed for an unprivileged process without the filter: they prove the filter itself.
    for (const name of ['unshare', 'keyctl', 'add_key', 'listen', 'ptrace', 'process_vm_readv', 'userfaultfd', 'clone_newuser']) {
      expect(result.syscalls[name]?.errno, name).toBe('EPERM');
    }
  });

  it('sees none of the host processes', () => {
    const pids = result.pids as number[];
    expect(pids[0]).toBe(1);
    expect(pids.length).toBeLessThan(5);
    expect(result.hostname).not.toBe(os.hostname());
  });

  it('cannot read private host files, nor write host files', () => {
    expect(result.shadow).toBe('ENOENT');
    expect(result.rootHome).toBe('EACCES');
    expect(result.hostMarker).toBe('ENOENT');
    // writes land in the sandbox's own layer, never on the host
    expect(fs.existsSync('/usr/share/escape-test-written')).toBe(false);
    expect(result.roMountWrite).toBe('EROFS');
    expect(fs.readdirSync(path.join(hostDir, 'ro'))).toEqual([]);
    expect(result.kcore).not.toBe('readable');
    expect(result.sysrq).not.toBe('written');
    expect(result.procSys).not.toBe('written');
  });

  it('has no network but loopback and cannot reach the host', () => {
    expect(result.ifaces).toEqual(['lo']);
    expect(result.hostListener).not.toBe('connected');
    // Landlock refuses binding a TCP port unless --allow-listen (where the kernel has Landlock ABI 4+)
    expect(['EACCES', 'bound']).toContain(result.tcpBind);
    expect(result.helperSocket).toBe(false);
    expect(result.runDir).toBe(false);
  });

  it('shows even a sandbox root user an empty /root and no shadow file', async () => {
    const r = await helper.cli(['run', '--user', '0', '--', 'sh', '-c', 'ls -A /root; ls /etc/shadow 2>&1; cat /proc/self/status | grep CapEff']);
    expect(r.stdout).toMatch(/^ls: cannot access '\/etc\/shadow': No such file or directory\nCapEff:\t0000000000000000\n$/);
  });

  it('forgets its writes when it exits', async () => {
    const w = await helper.cli(['run', '--', 'sh', '-c', 'echo data > /tmp/left && echo data > /home/sandbox/left && echo ok']);
    expect(w.stdout).toBe('ok\n');
    const r = await helper.cli(['run', '--', 'sh', '-c', 'ls /tmp /home/sandbox']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('left');
    expect((await helper.settledCensus()).mounts.filter((m) => m.includes('/sb/'))).toEqual([]);
  });
});
