/**
 * The desktop app's one API contract, shared by the Electron preload, the web-mode WebSocket bridge
 * (`ai-sandbox ui`) and the renderer. It is the helper's own operations (same zod params, same result
 * types) plus the few local operations the renderer needs that are not the helper's (workflow files,
 * examples). Pure zod and types: the renderer imports this file, so no Node or Electron here.
 */
import { z } from 'zod';
import { nameSchema, operations, type OperationName, type Results as HelperResults, type StreamFrame } from '../protocol/schema.js';

/** Helper operations the app may call through the bridge (hello is the bridge's own business). */
export const HELPER_METHODS = [
  'sandbox.list',
  'sandbox.inspect',
  'sandbox.stats',
  'sandbox.stop',
  'sandbox.remove',
  'sandbox.logs',
  'sandbox.exec',
  'io.write',
  'io.resize',
  'stream.cancel',
  'snapshot.checkpoint',
  'snapshot.list',
  'snapshot.restore',
  'snapshot.fork',
  'snapshot.remove',
  'snapshot.diff',
  'workflow.start',
  'workflow.get',
  'workflow.list',
  'workflow.cancel',
  'workflow.replay',
  'workflow.watch',
] as const satisfies readonly OperationName[];
export type HelperMethod = (typeof HELPER_METHODS)[number];

const absPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute path');
const workflowPath = absPath.refine((p) => /\.ya?ml$/.test(p), 'a workflow file ends in .yaml or .yml');

const terminalId = z.string().regex(/^pty[0-9]+$/, 'a terminal id looks like pty1');

/** Local operations: done by the bridge (or Electron main) itself, on this machine's files. */
export const localMethods = {
  'app.info': z.object({}).strict(),
  'file.open': z.object({ path: workflowPath }).strict(),
  'file.save': z.object({ path: workflowPath, text: z.string().max(1024 * 1024) }).strict(),
  'file.validate': z.object({ path: workflowPath, text: z.string().max(1024 * 1024) }).strict(),
  'examples.list': z.object({}).strict(),
  /** an interactive shell in a running sandbox: a pty on the app side running `ai-sandbox exec -it` */
  'terminal.open': z.object({ sandbox: nameSchema, rows: z.number().int().min(1).max(1000), cols: z.number().int().min(1).max(1000) }).strict(),
  'terminal.write': z.object({ terminal: terminalId, data: z.string().max(64 * 1024) }).strict(),
  'terminal.resize': z.object({ terminal: terminalId, rows: z.number().int().min(1).max(1000), cols: z.number().int().min(1).max(1000) }).strict(),
  'terminal.close': z.object({ terminal: terminalId }).strict(),
} as const;
export type LocalMethod = keyof typeof localMethods;

export type Method = HelperMethod | LocalMethod;

export const methodParams: { [M in Method]: z.ZodType } = {
  ...(Object.fromEntries(HELPER_METHODS.map((m) => [m, operations[m]])) as { [M in HelperMethod]: (typeof operations)[M] }),
  ...localMethods,
};
export const METHODS = Object.keys(methodParams) as Method[];

export function isMethod(m: string): m is Method {
  return Object.prototype.hasOwnProperty.call(methodParams, m);
}

export type MethodParams<M extends Method> = M extends HelperMethod
  ? z.input<(typeof operations)[M]>
  : M extends LocalMethod
    ? z.input<(typeof localMethods)[M]>
    : never;

/** A workflow problem as the app shows it: on a node (`steps.NAME`) and a field (`steps.NAME.run`). */
export interface FileProblem {
  severity: 'error' | 'warning';
  line: number;
  col: number;
  /** dotted path in the document, e.g. `steps.parse.limits.memory` */
  path: string;
  message: string;
}

export type HelperState = 'connecting' | 'connected' | 'unavailable';
export interface HelperStatus {
  state: HelperState;
  /** in words: what happened and what to do */
  message: string;
  /** the command that starts a helper here (pkexec where available) */
  startCommand: string;
  helperVersion: string | null;
}

export interface LocalResults {
  'app.info': { mode: 'web' | 'electron'; initialFile: string | null; cwd: string; helper: HelperStatus };
  'file.open': { path: string; text: string };
  'file.save': { path: string; bytes: number };
  'file.validate': { ok: boolean; problems: FileProblem[]; steps: string[] };
  'examples.list': { examples: Array<{ name: string; path: string }> };
  'terminal.open': { terminal: string; stream: string };
  'terminal.write': Record<string, never>;
  'terminal.resize': Record<string, never>;
  'terminal.close': Record<string, never>;
}

export type MethodResult<M extends Method> = M extends HelperMethod ? HelperResults[M] : M extends LocalMethod ? LocalResults[M] : never;

/** Renderer → bridge. */
export const callMessageSchema = z
  .object({ type: z.literal('call'), id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), method: z.string().max(100), params: z.unknown().optional() })
  .strict();
export const ackMessageSchema = z.object({ type: z.literal('ack'), stream: z.string().max(64), seq: z.number().int().min(0) }).strict();
export const uiClientMessageSchema = z.discriminatedUnion('type', [callMessageSchema, ackMessageSchema]);
export type UiClientMessage = z.infer<typeof uiClientMessageSchema>;

export interface UiError {
  code: string;
  message: string;
  retryable: boolean;
}

/** Bridge → renderer. Stream frames are the helper's, passed through (the renderer acks each). */
export type UiServerMessage =
  | { type: 'result'; id: number; ok: true; result: unknown }
  | { type: 'result'; id: number; ok: false; error: UiError }
  | { type: 'status'; status: HelperStatus }
  | StreamFrame;

/**
 * Check a call against the contract: a known method and params that match its schema. Returns the
 * parsed params (defaults applied) or an error in words.
 */
export function checkCall(method: string, params: unknown): { ok: true; method: Method; params: unknown } | { ok: false; error: UiError } {
  if (!isMethod(method)) return { ok: false, error: { code: 'BAD_REQUEST', message: `unknown method "${method}"`, retryable: false } };
  const r = methodParams[method].safeParse(params ?? {});
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first && first.path.length ? `${first.path.join('.')}: ` : '';
    return { ok: false, error: { code: 'INVALID_ARGUMENT', message: `${method}: ${where}${first?.message ?? 'invalid parameters'}`, retryable: false } };
  }
  return { ok: true, method, params: r.data };
}

/** The API the renderer sees, whatever carries it (Electron IPC or the WebSocket). */
export interface UiApi {
  call<M extends Method>(method: M, params: MethodParams<M>): Promise<MethodResult<M>>;
  /** stream frames and helper status changes */
  onMessage(handler: (msg: Exclude<UiServerMessage, { type: 'result' }>) => void): () => void;
  ack(stream: string, seq: number): void;
}
