/**
 * The app's local operations: open, save and validate a workflow file, list the examples. They run in
 * the bridge (or Electron main) with the user's own rights, never in the helper.
 *
 * Threat model: the caller holds the bridge token (or is the app's own renderer), so it is the user;
 * still, only absolute paths ending in .yaml/.yml are read or written (the contract says so), and text
 * is size-limited, so a confused renderer cannot read arbitrary files back or write executables.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors/app-error.js';
import { parseWorkflow } from '../workflow/load.js';
import type { LocalMethod, LocalResults, HelperStatus } from './contract.js';

/** The repository's examples/ directory (beside privileged-helper/). */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url));

export interface LocalContext {
  mode: 'web' | 'electron';
  initialFile: string | null;
  helperStatus(): HelperStatus;
}

async function readText(p: string): Promise<string> {
  try {
    return await fs.readFile(p, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AppError(code === 'ENOENT' ? 'NOT_FOUND' : 'PERMISSION_DENIED', `cannot open ${p}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

export async function runLocal<M extends LocalMethod>(ctx: LocalContext, method: M, params: unknown): Promise<LocalResults[M]> {
  const p = params as Record<string, string>;
  switch (method) {
    case 'app.info':
      return { mode: ctx.mode, initialFile: ctx.initialFile, cwd: process.cwd(), helper: ctx.helperStatus() } as LocalResults[M];
    case 'file.open':
      return { path: p.path!, text: await readText(p.path!) } as LocalResults[M];
    case 'file.save': {
      try {
        await fs.mkdir(path.dirname(p.path!), { recursive: true });
        await fs.writeFile(p.path!, p.text!, 'utf8');
      } catch (e) {
        throw new AppError('PERMISSION_DENIED', `cannot save ${p.path}: ${(e as Error).message}`);
      }
      return { path: p.path!, bytes: Buffer.byteLength(p.text!) } as LocalResults[M];
    }
    case 'file.validate': {
      const r = parseWorkflow(p.text!, p.path!);
      const problems = [...(r.ok ? [] : r.errors), ...r.warnings].map((e) => ({ severity: e.severity, line: e.line, col: e.col, path: e.path, message: e.path && e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message }));
      return { ok: r.ok, problems, steps: r.ok ? r.plan.steps.map((s) => s.id) : [] } as LocalResults[M];
    }
    case 'examples.list': {
      const examples: Array<{ name: string; path: string }> = [];
      for (const d of await fs.readdir(EXAMPLES_DIR, { withFileTypes: true }).catch(() => [])) {
        const file = path.join(EXAMPLES_DIR, d.name, 'workflow.yaml');
        if (d.isDirectory() && (await fs.stat(file).catch(() => null))) examples.push({ name: d.name, path: file });
      }
      return { examples } as LocalResults[M];
    }
    default:
      // terminal.* are the session's (they hold state)
      throw new AppError('UNKNOWN_OPERATION', `unknown local method ${String(method)}`);
  }
}
