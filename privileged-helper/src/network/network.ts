/**
 * Networked sandboxes: a slot from the pool (namespace + veth), the nftables elements of its policy,
 * and, with a domain policy, its own DNS answerer and auditing proxy on its gateway. `attach` runs
 * before the sandbox's program; `detach` gives everything back when the sandbox is released.
 *
 * Threat model: the policy comes from a client, validated by the socket schema (ports are numbers,
 * domains match DOMAIN_PATTERN_RE, pins are IPv4 literals); nothing of it reaches a shell or the nft
 * text except those validated numbers and addresses we allocated.
 */
import type dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { NetworkPolicy, SandboxNetworkInfo } from '../protocol/schema.js';
import { parseRange, type NetRange } from './addressing.js';
import type { AuditSink } from './audit.js';
import { startDns } from './dns.js';
import { NativeNet, type Nft, type SlotOps } from './native-net.js';
import { NetPool, type NetSlot } from './pool.js';
import { forwardingAdvice, uplinks } from './uplink.js';
import { ProxyHost, type ProxyHandle } from './proxy-host.js';
import type { Pin } from './proxy.js';
import { addSandbox, deleteTable, PROXY_PORTS, removeSandbox, tableRuleset, type SandboxRules } from './rules.js';

export interface NetConfig {
  /** e.g. 10.231.0.0/16 */
  range: string;
  /** host-side interface names: <prefix><slot> */
  prefix: string;
  /** the nftables table (inet family) of this instance */
  table: string;
  /** slots made ahead of time */
  poolSize: number;
}

export interface Attachment {
  slot: NetSlot;
  /** the rules and the proxy, being put in place: the sandbox's program may run once this resolves */
  applied: Promise<void>;
  rules: SandboxRules;
  proxy: ProxyHandle | null;
  dns: dgram.Socket | null;
  info: SandboxNetworkInfo;
  /** proxy variables for the sandbox's environment */
  env: Record<string, string>;
  mounts: Array<{ source: string; target: string; readOnly: boolean }>;
}

export function wantsNetwork(p: NetworkPolicy | undefined): p is NetworkPolicy {
  return !!p && (p.allowPorts.length > 0 || p.allowDomains.length > 0);
}

export class NetworkService {
  private pool: NetPool | null = null;
  /** a sandbox's rules, on its start path */
  private nft: (Nft & SlotOps) | null = null;
  /** the pool's slow work (making a slot takes milliseconds): its own process, so it never queues ahead of the rules */
  private slotNet: (Nft & SlotOps) | null = null;
  private starting: Promise<void> | null = null;
  private readonly range: NetRange;
  private toldForwarding = false;
  private readonly dir: string;
  /** the auditing proxies' worker thread */
  private readonly proxies: ProxyHost;

  constructor(
    private readonly cfg: NetConfig,
    instanceDir: string,
    audit: AuditSink,
    /** fakes for unit tests; by default one NativeNet process does both */
    private readonly deps: { make?: () => Nft & SlotOps } = {},
  ) {
    this.range = parseRange(cfg.range);
    this.dir = path.join(instanceDir, 'net');
    this.proxies = new ProxyHost(audit);
  }

  get config(): NetConfig {
    return this.cfg;
  }

  /** Make the table and start filling the pool (background for the daemon; at the first use otherwise). */
  ready(): Promise<void> {
    if (!this.starting) {
      this.starting = (async () => {
        fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        const make = this.deps.make ?? (() => NativeNet.start());
        try {
          this.nft = make();
          this.slotNet = make();
          await this.nft.run(tableRuleset(this.cfg.table, this.range));
        } catch (err) {
          this.nft?.close();
          this.slotNet?.close();
          this.nft = this.slotNet = null;
          const e = AppError.from(err);
          throw new AppError('UNSUPPORTED', `sandbox networking is unavailable: nftables refused our table (${e.message}); \`ai-sandbox doctor\` explains what is missing`, { cause: err });
        }
        this.pool = new NetPool(this.slotNet, this.slotNet, {
          range: this.range,
          prefix: this.cfg.prefix,
          table: this.cfg.table,
          dir: this.dir,
          size: this.cfg.poolSize,
          prepare: (s) => writeEtc(etcDirOf(s), s.addr.gateway),
          dispose: (s) => fs.rmSync(etcDirOf(s), { recursive: true, force: true }),
        });
        this.pool.fill();
        this.proxies.warm();
      })();
      this.starting.catch(() => (this.starting = null)); // a later attach tries again
    }
    return this.starting;
  }

  async attach(sandbox: string, policy: NetworkPolicy): Promise<Attachment> {
    await this.ready();
    if (policy.allowPorts.length && !this.toldForwarding) {
      this.toldForwarding = true;
      const off = uplinks().filter((u) => !u.forwarding);
      if (off.length) process.stderr.write(`ai-sandbox helper: ${forwardingAdvice(off)}\n`);
    }
    const pool = this.pool!;
    const nft = this.nft!;
    const slot = await pool.take();
    const { address, gateway, ifname } = slot.addr;
    const useProxy = policy.allowDomains.length > 0;
    const rules: SandboxRules = { ifname, address, gateway, ports: policy.allowPorts, proxy: useProxy };
    let files: { hosts: string; resolv: string };
    try {
      files = etcFiles(etcDirOf(slot), gateway, useProxy, policy);
    } catch (err) {
      await pool.release(slot);
      throw err;
    }
    const proxyUrl = useProxy ? `http://${gateway}:${PROXY_PORTS.explicit}` : null;
    const env: Record<string, string> = proxyUrl
      ? { HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, http_proxy: proxyUrl, https_proxy: proxyUrl, NO_PROXY: 'localhost,127.0.0.1', no_proxy: 'localhost,127.0.0.1' }
      : {};
    const a: Attachment = {
      slot,
      applied: Promise.resolve(),
      rules,
      proxy: null,
      dns: null,
      env,
      mounts: [
        { source: files.hosts, target: '/etc/hosts', readOnly: true },
        { source: files.resolv, target: '/etc/resolv.conf', readOnly: true },
      ],
      info: {
        address,
        gateway,
        interface: ifname,
        allowPorts: policy.allowPorts,
        allowDomains: policy.allowDomains,
        denyDomains: policy.denyDomains,
        proxy: proxyUrl,
      },
    };
    // The rules' transaction runs in ai-sandbox-net (and the proxy starts) while the caller starts the
    // sandbox up to its program; a failure here must stop it from running (see SandboxManager).
    a.applied = (async () => {
      const rulesIn = nft.run(addSandbox(this.cfg.table, rules));
      if (useProxy) {
        const spec = { sandbox, gateway, policy: { allow: policy.allowDomains, deny: policy.denyDomains }, pins: policy.resolve.map((r): [string, Pin] => [r.name, { address: r.address, port: r.port }]), range: this.range };
        // settled, not all: a proxy or DNS answerer that started is kept (for detach) even when another part failed
        const done = await Promise.allSettled([this.proxies.start(spec), startDns(gateway, PROXY_PORTS.dns), rulesIn]);
        const [proxy, dns] = done;
        if (proxy.status === 'fulfilled') a.proxy = proxy.value;
        if (dns.status === 'fulfilled') a.dns = dns.value;
        for (const r of done) if (r.status === 'rejected') throw r.reason;
      } else {
        await rulesIn;
      }
    })();
    a.applied.catch(() => undefined); // observed by the caller; never an unhandled rejection
    return a;
  }

  async detach(a: Attachment): Promise<void> {
    await a.applied.catch(() => undefined);
    a.dns?.close();
    await a.proxy?.close();
    await this.nft?.run(removeSandbox(this.cfg.table, a.rules)).catch(() => undefined);
    await this.pool?.release(a.slot);
  }

  /** Packets this sandbox address sent that the policy dropped (null: unknown). */
  async droppedPackets(address: string): Promise<number | null> {
    if (!this.nft) return null;
    try {
      const out = (await this.nft.json(`list set inet ${this.cfg.table} dropped`)) as { nftables?: Array<{ set?: { elem?: unknown[] } }> };
      for (const item of out.nftables ?? []) {
        for (const e of item.set?.elem ?? []) {
          const el = (e as { elem?: { val?: string; counter?: { packets?: number } } }).elem;
          if (el?.val === address) return el.counter?.packets ?? 0;
        }
      }
      return 0;
    } catch {
      return null;
    }
  }

  async shutdown(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.pool?.shutdown();
    await this.nft?.run(deleteTable(this.cfg.table).join('\n')).catch(() => undefined);
    this.nft?.close();
    this.slotNet?.close();
    await this.proxies.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function etcDirOf(s: NetSlot): string {
  return `${s.nsPath}.etc`;
}

/** A new slot's files for the common cases, written off the start path (by the pool). */
function writeEtc(dir: string, gateway: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'hosts'), hostsFile(gateway, []));
  fs.writeFileSync(path.join(dir, 'resolv.conf.proxy'), RESOLV_PROXY(gateway));
  fs.writeFileSync(path.join(dir, 'resolv.conf.none'), RESOLV_NONE);
}

/** The /etc/hosts and /etc/resolv.conf a sandbox gets: prepared ones, or written now for pins and DNS. */
function etcFiles(dir: string, gateway: string, proxy: boolean, policy: NetworkPolicy): { hosts: string; resolv: string } {
  let hosts = path.join(dir, 'hosts');
  if (!proxy && policy.resolve.length) {
    hosts = path.join(dir, 'hosts.pinned');
    fs.writeFileSync(hosts, hostsFile(gateway, policy.resolve));
  }
  if (proxy) return { hosts, resolv: path.join(dir, 'resolv.conf.proxy') };
  if (!policy.allowPorts.some((p) => p.port === 53)) return { hosts, resolv: path.join(dir, 'resolv.conf.none') };
  const resolv = path.join(dir, 'resolv.conf.dns');
  fs.writeFileSync(resolv, hostResolvers());
  return { hosts, resolv };
}

const RESOLV_PROXY = (gateway: string) => `# ai-sandbox: names resolve to the auditing proxy, which applies the domain policy\nnameserver ${gateway}\noptions timeout:1 attempts:1\n`;
const RESOLV_NONE = '# ai-sandbox: no DNS (allow port 53/udp, or use --resolve NAME=ADDR)\noptions timeout:1 attempts:1\n';

function hostsFile(gateway: string, pins: NetworkPolicy['resolve']): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `${gateway}\thost.ai-sandbox.internal`];
  for (const p of pins) lines.push(`${p.address}\t${p.name}`);
  return `${lines.join('\n')}\n`;
}

/** The host's own resolvers (not its loopback ones, which the sandbox cannot reach). */
function hostResolvers(): string {
  const host = fs.existsSync('/etc/resolv.conf') ? fs.readFileSync('/etc/resolv.conf', 'utf8') : '';
  const servers = host
    .split('\n')
    .map((l) => /^nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(l)?.[1])
    .filter((a): a is string => !!a && !a.startsWith('127.'));
  return `${servers.map((s) => `nameserver ${s}`).join('\n')}\noptions timeout:2 attempts:2\n`;
}
