/**
 * zod's issues, rewritten as one-line problems that say what to write instead: an unknown key gets the
 * closest known key, a bad enum value the closest allowed one, a wrong type what was expected.
 */
import { z } from 'zod';
import type { core } from 'zod';
import { closest, didYouMean, formatPath, quoteList } from './errors.js';
import type { DocPath, Problem } from './errors.js';

/** The keys a strict object at `path` accepts, found by walking the schema alongside the path. */
export function knownKeysAt(schema: z.ZodType, path: DocPath): string[] {
  const s = objectAt(schema, path);
  return s ? Object.keys(s.shape) : [];
}

/** `limits.memory` for a `memory` written one level too high. */
function nestedSuggestion(schema: z.ZodType, path: DocPath, key: string): string {
  const here = objectAt(schema, path);
  const candidates = Object.keys(here?.shape ?? {}).flatMap((k) => Object.keys(objectAt(schema, [...path, k])?.shape ?? {}).map((inner) => ({ k, inner })));
  const c = closest(key, candidates.map((x) => x.inner));
  const hit = candidates.find((x) => x.inner === c);
  return hit ? `did you mean ${hit.k}: { ${hit.inner}: … }? ` : '';
}

function objectAt(schema: z.ZodType, path: DocPath): z.ZodObject | undefined {
  let s: z.ZodType | undefined = schema;
  for (const seg of [...path, undefined]) {
    // unwrap what wraps an object without changing its keys
    for (;;) {
      if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
      else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
      else if (s instanceof z.ZodUnion) s = (s.options as z.ZodType[]).find((o) => o instanceof z.ZodObject) ?? s.options[0] as z.ZodType;
      else break;
    }
    if (seg === undefined) break;
    if (s instanceof z.ZodObject) s = s.shape[String(seg)] as z.ZodType | undefined;
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else return undefined;
    if (!s) return undefined;
  }
  return s instanceof z.ZodObject ? s : undefined;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the text "${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `${typeof v === 'number' ? 'the number' : 'the value'} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map of key: value',
  record: 'a map of key: value',
};

function messageFor(issue: core.$ZodIssue, schema: z.ZodType): Problem[] {
  const path = issue.path as DocPath;
  const where = formatPath(path);
  const prefix = where ? `${where}: ` : '';
  const input = (issue as { input?: unknown }).input;
  if (input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union') && path.length > 0) {
    const parent = path.slice(0, -1);
    const key = String(path[path.length - 1]);
    const expected = issue.code === 'invalid_type' ? ` with ${EXPECTED[issue.expected] ?? issue.expected}` : '';
    return [{ kind: 'schema', path: parent, at: 'key', message: `${formatPath(parent) || 'the file'}: "${key}" is missing: add ${key}:${expected}` }];
  }
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(schema, path);
      return issue.keys.map((key) => ({
        kind: 'unknown-key' as const,
        path: [...path, key],
        at: 'key' as const,
        message: `${formatPath([...path, key])}: unknown key "${key}": ${(didYouMean(key, known) || nestedSuggestion(schema, path, key)).trim() || (known.length ? `the keys here are ${quoteList(known, 30)}` : 'remove it')}`,
      }));
    }
    case 'invalid_type': {
      return [{ kind: 'schema', path, message: `${prefix}expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describe(input)}` }];
    }
    case 'invalid_value': {
      const allowed = issue.values.map(String);
      const got = typeof input === 'string' ? input : String(input);
      if (path.length === 1 && path[0] === 'version') return [];
      return [{ kind: 'schema', path, message: `${prefix}"${got}" is not allowed: ${didYouMean(got, allowed)}write one of ${quoteList(allowed)}` }];
    }
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? 'at least' : 'at most';
      const what = issue.origin === 'array' ? `${word} ${String(bound)} items` : issue.origin === 'string' ? `${word} ${String(bound)} characters` : `${word} ${String(bound)}`;
      if (issue.message && !issue.message.startsWith('Too ')) return [{ kind: 'schema', path, message: `${prefix}${issue.message}` }];
      return [{ kind: 'schema', path, message: `${prefix}${issue.origin === 'array' || issue.origin === 'string' ? 'has' : 'is'} ${describe(input).replace(/^the (number|value) /, '')}: write ${what}` }];
    }
    case 'invalid_union': {
      // A branch that got past the type check is the one the user meant: report its problems.
      const meant = issue.errors.filter((branch) => !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0));
      if (meant.length === 1) return meant[0]!.flatMap((i) => messageFor({ ...i, path: [...path, ...i.path] } as core.$ZodIssue, schema));
      const expected = [...new Set(issue.errors.flatMap((b) => b.filter((i) => i.code === 'invalid_type').map((i) => EXPECTED[(i as { expected: string }).expected] ?? (i as { expected: string }).expected)))];
      return [{ kind: 'schema', path, message: `${prefix}expected ${expected.join(' or ') || 'another value'}, got ${describe(input)}` }];
    }
    default: {
      const shown = typeof input === 'string' ? `"${input}" ` : '';
      return [{ kind: 'schema', path, message: `${prefix}${shown}${issue.message}` }];
    }
  }
}

export function problemsFromIssues(issues: readonly core.$ZodIssue[], schema: z.ZodType): Problem[] {
  return issues.flatMap((i) => messageFor(i, schema));
}
