/**
 * Schema versions (after tldraw's migrations): a file is brought up to the version this ai-sandbox reads,
 * one step at a time, before validation. Only version 1 exists, so the default chain is empty; the chain
 * is a parameter so the mechanism is tested now, before a version 2 depends on it.
 */
import { WORKFLOW_VERSION } from './schema.js';
import type { Problem } from './errors.js';

/** Turns a raw document of version `from` into one of version `from + 1`. */
export type Migration = (raw: Record<string, unknown>) => Record<string, unknown>;
export type Migrations = ReadonlyMap<number, Migration>;

export const MIGRATIONS: Migrations = new Map();

export type MigrateResult = { ok: true; raw: Record<string, unknown>; from: number } | { ok: false; problem: Problem };

export function migrate(raw: unknown, migrations: Migrations = MIGRATIONS, target = WORKFLOW_VERSION): MigrateResult {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, problem: { kind: 'schema', path: [], message: `a workflow file is a map of keys, starting with version: ${target}` } };
  }
  let doc = raw as Record<string, unknown>;
  const version = doc.version;
  if (version === undefined) {
    return { ok: false, problem: { kind: 'version', path: [], message: `the file has no version: add "version: ${target}" at the top` } };
  }
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    return { ok: false, problem: { kind: 'version', path: ['version'], message: `version: "${String(version)}" is not a version number: write version: ${target}` } };
  }
  if (version > target) {
    return { ok: false, problem: { kind: 'version', path: ['version'], message: `version: ${version} is newer than this ai-sandbox, which reads version ${target}: upgrade ai-sandbox or write version: ${target}` } };
  }
  for (let v = version; v < target; v++) {
    const step = migrations.get(v);
    if (!step) {
      return { ok: false, problem: { kind: 'version', path: ['version'], message: `unsupported version ${version}: this ai-sandbox reads version ${target}` } };
    }
    doc = { ...step(doc), version: v + 1 };
  }
  return { ok: true, raw: doc, from: version };
}
