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
