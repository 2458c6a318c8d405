/**
 * The nftables rules of one helper instance, as text for libnftables: one `inet` table, named after
 * the instance (`ai_sandbox` for the daemon), that only ever matches this instance's own veths (set
 * `ifaces`), so instances and the host's own firewall never interfere.
 *
 * From a sandbox, in order: established/related replies pass; the sandbox's DNS and proxy on its own
 * gateway pass when it has a domain policy (ports 80/443 are redirected to the proxy first); the host
 * side (its gateway only) and the outside on its allowed (protocol, port) pairs pass; nothing reaches
 * another sandbox or our range; everything else is dropped and counted per sandbox address.
 */
import type { NetRange } from './addressing.js';

export const PROXY_PORTS = { explicit: 3128, http: 3129, tls: 3130, dns: 53 } as const;

export interface PortRule {
  proto: 'tcp' | 'udp';
  port: number;
}

export interface SandboxRules {
  ifname: string;
  address: string;
  gateway: string;
  ports: PortRule[];
  /** the sandbox has a domain policy: DNS and the proxy on its gateway, 80/443 redirected there */
  proxy: boolean;
}

export function tableName(instance: string): string {
  return instance === 'daemon' ? 'ai_sandbox' : `ai_sandbox_${instance.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** Deletes the table if it exists (`add` of an existing table is a no-op, so the batch never fails). */
export function deleteTable(table: string): string[] {
  return [`add table inet ${table}`, `delete table inet ${table}`];
}

/** The whole table, created fresh (any stale one of the same name goes first). */
export function tableRuleset(table: string, range: NetRange): string {
  const t = `inet ${table}`;
  return [
    ...deleteTable(table),
    `add table ${t}`,
    `add set ${t} ifaces { type ifname; }`,
    `add set ${t} to_host { type ipv4_addr . ipv4_addr . inet_proto . inet_service; }`,
    `add set ${t} egress { type ipv4_addr . inet_proto . inet_service; }`,
    `add set ${t} proxied { type ipv4_addr; }`,
    `add set ${t} dropped { type ipv4_addr; size 65535; flags dynamic; counter; }`,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add rule ${t} prerouting iifname @ifaces ip saddr @proxied tcp dport 80 redirect to :${PROXY_PORTS.http}`,
    `add rule ${t} prerouting iifname @ifaces ip saddr @proxied tcp dport 443 redirect to :${PROXY_PORTS.tls}`,
    `add chain ${t} from_sandbox_to_host`,
    `add rule ${t} from_sandbox_to_host ct state established,related accept`,
    `add rule ${t} from_sandbox_to_host meta nfproto ipv4 ip saddr . ip daddr . meta l4proto . th dport @to_host accept`,
    `add rule ${t} from_sandbox_to_host meta nfproto ipv4 add @dropped { ip saddr } reject with icmpx type admin-prohibited`,
    `add rule ${t} from_sandbox_to_host drop`,
    `add chain ${t} from_sandbox_out`,
    `add rule ${t} from_sandbox_out oifname @ifaces add @dropped { ip saddr } reject with icmpx type admin-prohibited`,
    `add rule ${t} from_sandbox_out meta nfproto ipv4 ip daddr ${range.cidr} add @dropped { ip saddr } reject with icmpx type admin-prohibited`,
    `add rule ${t} from_sandbox_out ct state established,related accept`,
    `add rule ${t} from_sandbox_out meta nfproto ipv4 ip saddr . meta l4proto . th dport @egress accept`,
    `add rule ${t} from_sandbox_out meta nfproto ipv4 add @dropped { ip saddr } reject with icmpx type admin-prohibited`,
    `add rule ${t} from_sandbox_out drop`,
    // the base chains last: what they jump to exists
    `add chain ${t} input { type filter hook input priority filter; policy accept; }`,
    `add rule ${t} input iifname @ifaces jump from_sandbox_to_host`,
    `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${t} forward iifname @ifaces jump from_sandbox_out`,
    `add rule ${t} forward oifname @ifaces ct state established,related accept`,
    `add rule ${t} forward oifname @ifaces drop`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add rule ${t} postrouting ip saddr ${range.cidr} oifname != @ifaces masquerade`,
  ]
    .filter(Boolean)
    .join('\n');
}

function elements(r: SandboxRules): { toHost: string[]; egress: string[] } {
  const toHost = r.ports.map((p) => `${r.address} . ${r.gateway} . ${p.proto} . ${p.port}`);
  const egress = r.ports.map((p) => `${r.address} . ${p.proto} . ${p.port}`);
  if (r.proxy) {
    for (const port of [PROXY_PORTS.explicit, PROXY_PORTS.http, PROXY_PORTS.tls]) toHost.push(`${r.address} . ${r.gateway} . tcp . ${port}`);
    toHost.push(`${r.address} . ${r.gateway} . udp . ${PROXY_PORTS.dns}`);
  }
  return { toHost: [...new Set(toHost)], egress: [...new Set(egress)] };
}

/** A new slot's interface: from its creation on, everything from it meets our chains. */
export function addInterface(table: string, ifname: string): string {
  return `add element inet ${table} ifaces { "${ifname}" }`;
}

export function removeInterface(table: string, ifname: string): string {
  return `delete element inet ${table} ifaces { "${ifname}" }`;
}

/** What a sandbox may reach, added before its program runs. */
export function addSandbox(table: string, r: SandboxRules): string {
  const { toHost, egress } = elements(r);
  const t = `inet ${table}`;
  return [
    toHost.length ? `add element ${t} to_host { ${toHost.join(', ')} }` : '',
    egress.length ? `add element ${t} egress { ${egress.join(', ')} }` : '',
    r.proxy ? `add element ${t} proxied { ${r.address} }` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** Everything addSandbox added, and its drop counter, removed in one transaction. */
export function removeSandbox(table: string, r: SandboxRules): string {
  const { toHost, egress } = elements(r);
  const t = `inet ${table}`;
  // `add` then `delete` of the counter element: deleting one that was never hit would fail the batch
  return [
    toHost.length ? `delete element ${t} to_host { ${toHost.join(', ')} }` : '',
    egress.length ? `delete element ${t} egress { ${egress.join(', ')} }` : '',
    r.proxy ? `delete element ${t} proxied { ${r.address} }` : '',
    `add element ${t} dropped { ${r.address} }`,
    `delete element ${t} dropped { ${r.address} }`,
  ]
    .filter(Boolean)
    .join('\n');
}
