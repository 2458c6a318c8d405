/**
 * Command-line parsing: strict (an unknown flag is an error), with one clear line per mistake naming the
 * flag, the bad value, and what to write instead. Everything after `--` is the command, verbatim.
 */
import type { NetworkPolicyInput, SandboxSpecInput } from '../protocol/schema.js';
import { ipToInt } from '../network/addressing.js';
import { DOMAIN_PATTERN_RE, HOSTNAME_RE } from '../network/domains.js';

import { InputError, parseDuration, parseSize } from '../util/units.js';

export { parseDuration, parseSize };

/** A mistake on the command line: one line, exit status 2. */
export class UsageError extends InputError {}

export function parseNumber(flag: string, v: string, opts: { int?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (opts.int && !Number.isInteger(n))) {
    throw new UsageError(`${flag}: "${v}" is not ${opts.int ? 'a whole number' : 'a number'}`);
  }
  if (opts.min !== undefined && n < opts.min) throw new UsageError(`${flag}: ${v} is below the minimum ${opts.min}`);
  if (opts.max !== undefined && n > opts.max) throw new UsageError(`${flag}: ${v} is above the maximum ${opts.max}`);
  return n;
}

export function parseMount(v: string): { source: string; target: string; readOnly: boolean } {
  const parts = v.split(':');
  const [source, target, mode] = parts;
  if (parts.length < 2 || parts.length > 3 || !source || !target || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new UsageError(`--mount: "${v}" should be SRC:DST or SRC:DST:ro (absolute paths)`);
  }
  if (!source.startsWith('/') || !target.startsWith('/')) throw new UsageError(`--mount: "${v}": both paths must be absolute`);
  return { source, target, readOnly: mode === 'ro' };
}

export function parseUser(v: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(v);
  if (!m) throw new UsageError(`--user: "${v}" should be UID or UID:GID (numbers)`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

export interface FlagSpec {
  /** takes a value */
  value: boolean;
  alias?: string;
  repeat?: boolean;
}

export interface Parsed {
  flags: Map<string, string[]>;
  positionals: string[];
  /** everything after `--` */
  command: string[];
}

/** Parse argv against a closed set of flags. `--flag=value` and `--flag value` both work. */
export function parseArgs(argv: string[], spec: Record<string, FlagSpec>, opts: { stopAtPositional?: boolean } = {}): Parsed {
  const aliases = new Map(Object.entries(spec).flatMap(([k, s]) => (s.alias ? [[s.alias, k] as const] : [])));
  const out: Parsed = { flags: new Map(), positionals: [], command: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.command = argv.slice(i + 1);
      break;
    }
    if (a.startsWith('-') && a !== '-') {
      // combined short flags such as -it
      if (/^-[a-zA-Z]{2,}$/.test(a)) {
        argv.splice(i + 1, 0, ...a.slice(1).split('').map((c) => `-${c}`));
        continue;
      }
      const eq = a.indexOf('=');
      const rawName = eq >= 0 ? a.slice(0, eq) : a;
      const name = aliases.get(rawName) ?? rawName;
      const s = spec[name];
      if (!s) throw new UsageError(`unknown option ${rawName}: see --help`);
      let value = 'true';
      if (s.value) {
        if (eq >= 0) value = a.slice(eq + 1);
        else if (i + 1 < argv.length) value = argv[++i]!;
        else throw new UsageError(`${name} needs a value`);
      } else if (eq >= 0) throw new UsageError(`${name} takes no value`);
      const list = out.flags.get(name) ?? [];
      if (list.length > 0 && !s.repeat) throw new UsageError(`${name} given twice`);
      list.push(value);
      out.flags.set(name, list);
    } else {
      out.positionals.push(a);
      if (opts.stopAtPositional) {
        out.command = argv.slice(i + 1);
        if (out.command[0] === '--') out.command.shift();
        break;
      }
    }
  }
  return out;
}

/** The one positional NAME a command takes, or a usage error. */
export function needName(p: { positionals: string[] }, usage: string): string {
  if (p.positionals.length !== 1) throw new UsageError(`usage: ${usage}`);
  return p.positionals[0]!;
}

export function one(p: Parsed, name: string): string | undefined {
  return p.flags.get(name)?.[0];
}

export const SANDBOX_FLAGS: Record<string, FlagSpec> = {
  '--name': { value: true },
  '--memory': { value: true, alias: '-m' },
  '--cpus': { value: true },
  '--cpu-weight': { value: true },
  '--pids': { value: true },
  '--timeout': { value: true },
  '--rootfs': { value: true },
  '--mount': { value: true, repeat: true, alias: '-v' },
  '--env': { value: true, repeat: true, alias: '-e' },
  '--workdir': { value: true, alias: '-w' },
  '--user': { value: true, alias: '-u' },
  '--allow-listen': { value: false },
  '--tty': { value: false, alias: '-t' },
  '--tmpfs-size': { value: true },
  '--pool': { value: true },
  '--allow-port': { value: true, repeat: true },
  '--allow-domain': { value: true, repeat: true },
  '--deny-domain': { value: true, repeat: true },
  '--resolve': { value: true, repeat: true },
  '--trace': { value: false },
  '--trace-syscalls': { value: true },
};

/** --allow-port, --allow-domain, --deny-domain, --resolve: the sandbox's network policy (none: loopback only). */
export function networkFromArgs(p: Parsed): NetworkPolicyInput | undefined {
  const allowPorts = (p.flags.get('--allow-port') ?? []).map((v) => {
    const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(v);
    const port = m ? Number(m[1]) : NaN;
    if (!m || port < 1 || port > 65535) throw new UsageError(`--allow-port: "${v}" should be PORT or PORT/udp, with PORT 1-65535`);
    return { port, proto: (m[2] ?? 'tcp') as 'tcp' | 'udp' };
  });
  const pattern = (flag: string) => (v: string) => {
    const d = v.toLowerCase();
    if (!DOMAIN_PATTERN_RE.test(d)) throw new UsageError(`${flag}: "${v}" should be a name (example.com) or a wildcard (*.example.com)`);
    return d;
  };
  const allowDomains = (p.flags.get('--allow-domain') ?? []).map(pattern('--allow-domain'));
  const denyDomains = (p.flags.get('--deny-domain') ?? []).map(pattern('--deny-domain'));
  const resolve = (p.flags.get('--resolve') ?? []).map((v) => {
    const m = /^([^=]+)=(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(v);
    const name = m?.[1]?.toLowerCase() ?? '';
    if (!m || !HOSTNAME_RE.test(name) || ipToInt(m[2]!) === null || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535))) {
      throw new UsageError(`--resolve: "${v}" should be NAME=ADDR or NAME=ADDR:PORT, e.g. api.test=192.0.2.10`);
    }
    return { name, address: m[2]!, ...(m[3] ? { port: Number(m[3]) } : {}) };
  });
  if (!allowPorts.length && !allowDomains.length) {
    if (denyDomains.length || resolve.length) throw new UsageError('--deny-domain and --resolve need --allow-domain or --allow-port: without them the sandbox has no network');
    return undefined;
  }
  return { allowPorts, allowDomains, denyDomains, resolve };
}

/** The sandbox spec a `run`/`start` command line describes. */
export function specFromArgs(p: Parsed, tty: { rows: number; cols: number } | undefined): SandboxSpecInput {
  if (p.command.length === 0) throw new UsageError('missing command: write it after --, e.g. ai-sandbox run -- python3 -c "print(1)"');
  const env: Record<string, string> = {};
  for (const e of p.flags.get('--env') ?? []) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env: "${e}" should be KEY=VALUE`);
    const key = e.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new UsageError(`--env: "${key}" is not a valid variable name`);
    env[key] = e.slice(eq + 1);
  }
  const val = (f: string) => one(p, f);
  const spec: SandboxSpecInput = {
    command: p.command,
    limits: {
      memoryBytes: val('--memory') === undefined ? undefined : parseSize('--memory', val('--memory')!),
      cpus: val('--cpus') === undefined ? undefined : parseNumber('--cpus', val('--cpus')!, { min: 0.01, max: 1024 }),
      cpuWeight: val('--cpu-weight') === undefined ? undefined : parseNumber('--cpu-weight', val('--cpu-weight')!, { int: true, min: 1, max: 10000 }),
      pidsMax: val('--pids') === undefined ? undefined : parseNumber('--pids', val('--pids')!, { int: true, min: 1 }),
    },
    mounts: (p.flags.get('--mount') ?? []).map(parseMount),
    env,
    allowListen: p.flags.has('--allow-listen'),
  };
  if (spec.limits?.memoryBytes !== undefined && spec.limits.memoryBytes < 4 * 1024 * 1024) throw new UsageError('--memory: the minimum is 4M');
  if (val('--name')) spec.name = val('--name');
  if (val('--timeout')) spec.timeoutMs = parseDuration('--timeout', val('--timeout')!);
  if (val('--rootfs')) spec.rootfs = val('--rootfs');
  if (val('--workdir')) spec.workdir = val('--workdir');
  if (val('--user')) spec.user = parseUser(val('--user')!);
  if (val('--tmpfs-size')) spec.tmpfsBytes = parseSize('--tmpfs-size', val('--tmpfs-size')!);
  if (val('--pool')) spec.pool = val('--pool');
  if (tty) spec.tty = tty;
  const network = networkFromArgs(p);
  if (network) spec.network = network;
  if (val('--trace-syscalls')) spec.trace = { syscalls: val('--trace-syscalls')!.split(',').filter((x) => x.length > 0) };
  else if (p.flags.has('--trace')) spec.trace = true;
  return spec;
}
