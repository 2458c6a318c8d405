import { describe, expect, it } from 'vitest';
import { InputError } from '../util/units.js';
import { parseArgs, parseDuration, parseSize, SANDBOX_FLAGS, specFromArgs } from './args.js';

describe('CLI argument parsing', () => {
  it('parses sizes and durations, and names the flag on a bad value', () => {
    expect(parseSize('--memory', '256M')).toBe(256 * 1024 * 1024);
    expect(parseSize('--memory', '1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('--memory', '512MiB')).toBe(512 * 1024 * 1024);
    expect(() => parseSize('--memory', 'lots')).toThrow('--memory: "lots" is not a size');
    expect(parseDuration('--timeout', '30s')).toBe(30_000);
    expect(parseDuration('--timeout', '250ms')).toBe(250);
    expect(parseDuration('--timeout', '2')).toBe(2000);
    expect(() => parseDuration('--timeout', 'soon')).toThrow(InputError);
  });

  it('builds a spec from a full command line', () => {
    const p = parseArgs(
      ['--memory', '256M', '--cpus=0.5', '--pids', '64', '-e', 'A=1', '--mount', '/usr/share:/data:ro', '--allow-listen', '--', 'python3', '-c', 'print(1)'],
      SANDBOX_FLAGS,
    );
    expect(specFromArgs(p, undefined)).toMatchObject({
      command: ['python3', '-c', 'print(1)'],
      limits: { memoryBytes: 256 * 1024 * 1024, cpus: 0.5, pidsMax: 64 },
      env: { A: '1' },
      mounts: [{ source: '/usr/share', target: '/data', readOnly: true }],
      allowListen: true,
    });
  });

  it('refuses unknown flags, missing values and a missing command', () => {
    expect(() => parseArgs(['--bogus'], SANDBOX_FLAGS)).toThrow('unknown option --bogus');
    expect(() => parseArgs(['--memory'], SANDBOX_FLAGS)).toThrow('--memory needs a value');
    expect(() => specFromArgs(parseArgs([], SANDBOX_FLAGS), undefined)).toThrow('missing command');
    expect(() => specFromArgs(parseArgs(['--env', 'X', '--', 'true'], SANDBOX_FLAGS), undefined)).toThrow('KEY=VALUE');
  });

  it('splits combined short flags', () => {
    const p = parseArgs(['-it', 'box', '--', 'sh'], { '-i': { value: false }, '-t': { value: false } });
    expect([...p.flags.keys()]).toEqual(['-i', '-t']);
    expect(p.positionals).toEqual(['box']);
    expect(p.command).toEqual(['sh']);
  });
});

describe('network flags', () => {
  const spec = (...a: string[]) => specFromArgs(parseArgs([...a, '--', 'true'], SANDBOX_FLAGS), undefined);
  it('turn into the spec network policy', () => {
    expect(spec().network).toBeUndefined();
    expect(spec('--allow-port', '443', '--allow-port', '53/udp', '--allow-domain', 'PyPI.org', '--deny-domain', '*.evil.test', '--resolve', 'api.test=10.0.0.5:8080').network).toEqual({
      allowPorts: [{ port: 443, proto: 'tcp' }, { port: 53, proto: 'udp' }],
      allowDomains: ['pypi.org'],
      denyDomains: ['*.evil.test'],
      resolve: [{ name: 'api.test', address: '10.0.0.5', port: 8080 }],
    });
  });
  it('refuse what is not a port, pattern or pin, in one line that says the form', () => {
    expect(() => spec('--allow-port', '70000')).toThrow('--allow-port: "70000" should be PORT or PORT/udp');
    expect(() => spec('--allow-domain', 'a..b')).toThrow('--allow-domain: "a..b" should be a name');
    expect(() => spec('--allow-domain', 'x.test', '--resolve', 'x.test=999.1.1.1')).toThrow('--resolve: "x.test=999.1.1.1" should be NAME=ADDR');
    expect(() => spec('--resolve', 'x.test=10.0.0.1')).toThrow('need --allow-domain or --allow-port');
  });
});
