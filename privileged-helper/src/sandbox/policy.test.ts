import { describe, expect, it } from 'vitest';
import { checkMounts, checkRootfs, resolveIdentity } from './policy.js';

describe('sandbox policy', () => {
  it('refuses secret and system sources and reserved targets, with words that say why', () => {
    expect(() => checkMounts([{ source: '/', target: '/host', readOnly: true }])).toThrow('host root');
    expect(() => checkMounts([{ source: '/etc/shadow', target: '/x', readOnly: true }])).toThrow('/etc/shadow');
    expect(() => checkMounts([{ source: '/etc', target: '/x', readOnly: true }])).toThrow('/etc/shadow');
    expect(() => checkMounts([{ source: '/usr', target: '/x', readOnly: false }])).toThrow('read-only');
    expect(() => checkMounts([{ source: '/usr/share', target: '/proc/x', readOnly: true }])).toThrow('reserved');
    expect(() => checkMounts([{ source: '/definitely/not/here', target: '/x', readOnly: true }])).toThrow('does not exist');
    expect(() => checkMounts([{ source: '/usr/share', target: '/data', readOnly: true }])).not.toThrow();
  });

  it('refuses a missing rootfs and the host root', () => {
    expect(() => checkRootfs('/no/such/rootfs')).toThrow('rootfs /no/such/rootfs does not exist');
    expect(() => checkRootfs('/')).toThrow('host root');
  });

  it('completes the environment and lets the spec override it', () => {
    const id = resolveIdentity({ env: { PATH: '/bin', FOO: 'bar' }, tty: undefined, user: undefined, workdir: undefined }, 'h1');
    expect(id.uid).toBe(65534);
    expect(id.workdir).toBe('/home/sandbox');
    expect(id.env).toContain('PATH=/bin');
    expect(id.env).toContain('FOO=bar');
    expect(id.env).toContain('HOSTNAME=h1');
  });
});
