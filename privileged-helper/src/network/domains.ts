/**
 * Domain policy of the auditing proxy: exact names (`api.example.com`) and wildcards (`*.example.com`:
 * any name below example.com, not example.com itself). Deny rules win over allow rules; a name no rule
 * matches is denied. Every decision names the rule that made it, for the audit log and the 403 body.
 */
export const DOMAIN_PATTERN_RE = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const HOSTNAME_RE = /^([a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;

export interface DomainPolicy {
  allow: string[];
  deny: string[];
}

export interface Decision {
  allowed: boolean;
  rule: string;
}

export function matches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return host === pattern;
}

export function decide(policy: DomainPolicy, rawHost: string): Decision {
  const host = rawHost.toLowerCase().replace(/\.$/, '');
  const deny = policy.deny.find((p) => matches(p, host));
  if (deny) return { allowed: false, rule: `deny ${deny}` };
  const allow = policy.allow.find((p) => matches(p, host));
  if (allow) return { allowed: true, rule: `allow ${allow}` };
  return { allowed: false, rule: 'default deny' };
}

/** What a blocked client reads (HTTP 403 body, or the CONNECT refusal). */
export function blockedMessage(host: string, d: Decision): string {
  const how = d.rule === 'default deny' ? `no --allow-domain pattern matches it (allow it with --allow-domain ${host})` : `the rule "${d.rule}" matches it`;
  return `ai-sandbox: request to ${host} blocked by rule "${d.rule}": ${how}\n`;
}
