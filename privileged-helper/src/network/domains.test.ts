import { describe, expect, it } from 'vitest';
import { blockedMessage, decide, DOMAIN_PATTERN_RE, matches } from './domains.js';

describe('domain policy', () => {
  it('matches exact names and *.suffix wildcards (not the suffix itself)', () => {
    expect(matches('example.com', 'example.com')).toBe(true);
    expect(matches('example.com', 'a.example.com')).toBe(false);
    expect(matches('*.example.com', 'a.example.com')).toBe(true);
    expect(matches('*.example.com', 'a.b.example.com')).toBe(true);
    expect(matches('*.example.com', 'example.com')).toBe(false);
    expect(matches('*.example.com', 'badexample.com')).toBe(false);
  });
  it('deny wins over allow, and no match is a default deny', () => {
    const p = { allow: ['*.example.com', 'pypi.org'], deny: ['evil.example.com'] };
    expect(decide(p, 'api.example.com')).toEqual({ allowed: true, rule: 'allow *.example.com' });
    expect(decide(p, 'EVIL.example.com.')).toEqual({ allowed: false, rule: 'deny evil.example.com' });
    expect(decide(p, 'blocked.test')).toEqual({ allowed: false, rule: 'default deny' });
    expect(blockedMessage('blocked.test', decide(p, 'blocked.test'))).toMatch(/--allow-domain blocked.test/);
  });
  it('accepts only well-formed patterns', () => {
    for (const ok of ['a.test', '*.a.test', 'x-1.y']) expect(DOMAIN_PATTERN_RE.test(ok)).toBe(true);
    for (const bad of ['*', '*.', 'a..b', '-a.b', 'a.*.b', 'A.test', 'a b']) expect(DOMAIN_PATTERN_RE.test(bad)).toBe(false);
  });
});
