/**
 * Egress to the outside is routed: a sandbox's packets are forwarded from its veth to the host's uplink,
 * and the replies from the uplink back to the veth. We switch forwarding on for our own veths only;
 * forwarding on the uplink (for the replies) is the host's decision, never changed by ai-sandbox.
 * This reads what the host decided, for doctor and for a warning when a sandbox asks for egress.
 */
import fs from 'node:fs';

export interface Uplink {
  dev: string;
  forwarding: boolean;
}

/** The interfaces of the host's IPv4 default routes (from /proc/net/route) and their forwarding switch. */
export function uplinks(): Uplink[] {
  let table = '';
  try {
    table = fs.readFileSync('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const devs = new Set(
    table
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length > 7 && f[1] === '00000000' && f[7] === '00000000')
      .map((f) => f[0]!),
  );
  return [...devs].map((dev) => {
    let on = false;
    try {
      on = fs.readFileSync(`/proc/sys/net/ipv4/conf/${dev}/forwarding`, 'utf8').trim() === '1';
    } catch {
      // interface gone meanwhile
    }
    return { dev, forwarding: on };
  });
}

export function forwardingAdvice(off: Uplink[]): string {
  const devs = off.map((u) => u.dev).join(', ');
  return `replies from the outside to sandboxes with --allow-port need IPv4 forwarding on the host's uplink (${devs}), which is off: \`sysctl -w ${off.map((u) => `net.ipv4.conf.${u.dev}.forwarding=1`).join(' ')}\` if this host may route for its sandboxes (host.ai-sandbox.internal and the proxy work either way)`;
}
