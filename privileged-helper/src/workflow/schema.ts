/**
 * The workflow file (version 1): the shape a user writes, strict everywhere (an unknown key is a mistake
 * to report, not to ignore). Sizes and durations are written the way the CLI takes them (`2G`, `30s`) and
 * come out of the schema as bytes and milliseconds. Bounds match the helper's sandbox spec
 * (`protocol/schema.ts`) so a step that passes here is never refused by the helper later.
 * Meaning that needs the whole file (needs, cycles, limits against the pool) is checked in check.ts.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from '../util/units.js';
import { anomalyRulesSchema, approvalsSchema, limitsSchema, traceOptionsSchema } from '../protocol/schema.js';
import { DOMAIN_PATTERN_RE, HOSTNAME_RE } from '../network/domains.js';

export const WORKFLOW_VERSION = 1;

export const STEP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MATRIX_VAR_RE = ENV_NAME_RE;

const MIN_MEMORY = 4 * 1024 * 1024;
const MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000;
const PRIORITIES = ['critical', 'normal', 'background'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const PRIORITY_RANK: Record<Priority, number> = { critical: 0, normal: 1, background: 2 };

// Pattern for editors only (JSON Schema has no regex flags); parseSize stays the one source of truth.
const SIZE_PATTERN = '^\\s*[0-9]+(\\.[0-9]+)?\\s*[bBkKmMgGtT]?([iI]?[bB])?\\s*$';
const DURATION_PATTERN = '^\\s*[0-9]+(\\.[0-9]+)?(ms|s|m|h)?\\s*$';

function unitError(e: unknown): string {
  return e instanceof Error ? e.message.replace(/^[^:]*: /, '') : String(e);
}

function size(min: number) {
  return z
    .union([z.number().int().min(1), z.string().regex(new RegExp(SIZE_PATTERN), 'is not a size: write a number with an optional unit, e.g. 512M or 2G')])
    .transform((v, ctx) => {
      let bytes: number;
      try {
        bytes = typeof v === 'number' ? v : parseSize('size', v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: unitError(e) });
        return z.NEVER;
      }
      if (bytes < min) ctx.addIssue({ code: 'custom', message: `is below the minimum: write at least ${min / 1024 / 1024}M` });
      return bytes;
    })
    .meta({ description: 'bytes, or a size with a unit: 512M, 2G, 1.5GiB' });
}

const duration = z
  .union([z.number().positive(), z.string().regex(new RegExp(DURATION_PATTERN), 'is not a duration: write e.g. 500ms, 30s, 5m or 1h')])
  .transform((v, ctx) => {
    let ms: number;
    try {
      // a bare number means seconds, as on the command line (`--timeout 30`)
      ms = parseDuration('duration', String(v));
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: unitError(e) });
      return z.NEVER;
    }
    if (ms > MAX_TIMEOUT_MS) ctx.addIssue({ code: 'custom', message: 'is above the maximum of 7 days (168h)' });
    return ms;
  })
  .meta({ description: 'a duration: 500ms, 30s, 5m, 1h (a bare number is seconds)' });

const noNul = (what: string) => z.string().refine((s) => !s.includes('\0'), `${what} cannot contain NUL`);
const absPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute path (starting with /)');

const stepName = z
  .string()
  .regex(STEP_NAME_RE, 'is not a step name: use 1-63 letters, digits and _ . - (starting with a letter or digit)');

const command = z
  .union([
    noNul('a command').min(1, 'an empty command: write the command to run, e.g. run: python3 main.py'),
    z.array(noNul('an argument')).min(1, 'an empty argv: write at least the program, e.g. run: [python3, main.py]').max(4096),
  ])
  .meta({ description: 'a string (run by /bin/sh -c) or an argv list (run directly)' });

/** `SRC:DST[:ro|rw]`; a relative SRC is relative to the workflow file's directory. */
export const MOUNT_STRING_RE = /^([^:\0]+):(\/[^:\0]*)(?::(ro|rw))?$/;
const mount = z
  .union([
    z.string().regex(MOUNT_STRING_RE, 'is not a mount: write SRC:DST or SRC:DST:ro (DST absolute; SRC absolute or relative to the workflow file)'),
    z
      .object({
        source: z.string().min(1).max(4096).refine((p) => !p.includes('\0'), 'cannot contain NUL'),
        target: absPath,
        readOnly: z.boolean().default(false),
      })
      .strict(),
  ])
  .meta({ description: 'SRC:DST[:ro] or {source, target, readOnly}; a relative source is relative to the workflow file' });

const env = z
  .record(
    z.string().regex(ENV_NAME_RE, 'is not an environment variable name: use letters, digits and _ (not starting with a digit)'),
    z.union([noNul('an environment value'), z.number(), z.boolean()]),
  )
  .meta({ description: 'environment variables; numbers and booleans are written as text' });

const helperLimits = limitsSchema.shape;

export const stepLimitsSchema = z
  .object({
    cpus: helperLimits.cpus.meta({ description: 'CPU time as a number of CPUs (0.5 = half of one)' }),
    memory: size(MIN_MEMORY).optional(),
    pids: helperLimits.pidsMax.meta({ description: 'most processes and threads at once' }),
    cpuWeight: helperLimits.cpuWeight.meta({ description: 'CPU share under contention (1-10000, default 100)' }),
  })
  .strict();

const domainPattern = z
  .string()
  .max(253)
  .regex(DOMAIN_PATTERN_RE, 'is not a domain pattern: write a lowercase name (example.com) or a wildcard (*.example.com)');

export const networkSchema = z
  .union([
    z.literal('none'),
    z
      .object({
        allow: z
          .object({
            ports: z
              .array(z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d{1,5}\/(tcp|udp)$/, 'is not a port: write 443 or 53/udp')]))
              .max(64)
              .default([])
              .meta({ description: 'egress to host.ai-sandbox.internal and the outside on these ports (443, or 53/udp)' }),
            domains: z.array(domainPattern).max(256).default([]).meta({ description: 'HTTP(S) to these names only, through the auditing proxy' }),
          })
          .strict(),
        deny: z.object({ domains: z.array(domainPattern).max(256).default([]) }).strict().optional().meta({ description: 'names refused even when an allow pattern matches' }),
        resolve: z
          .record(z.string().max(253).regex(HOSTNAME_RE, 'is not a host name'), z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$/, 'is not ADDR or ADDR:PORT'))
          .optional()
          .meta({ description: 'names pinned to an address (and port) for the proxy, like curl --resolve' }),
      })
      .strict(),
  ])
  .meta({ description: 'none (loopback only, the default), or allow rules: ports and proxied domains' });

const snapshot = z.enum(['none', 'light', 'full']).meta({ description: 'after a completed step: none; light (files only); full (files and processes, CRIU)' });
const priority = z.enum(PRIORITIES).meta({ description: 'which ready step starts first when the pool is full' });

/** What `defaults:` may set for every step, and what a step may override. */
const sandboxFields = {
  rootfs: absPath.optional(),
  mounts: z.array(mount).max(64).optional(),
  env: env.optional(),
  workdir: absPath.optional(),
  limits: stepLimitsSchema.optional(),
  timeout: duration.optional(),
  retries: z.number().int().min(0).max(100).optional(),
  snapshot: snapshot.optional(),
  priority: priority.optional(),
  network: networkSchema.optional(),
  trace: traceOptionsSchema
    .optional()
    .meta({ description: 'record the step\'s syscalls (eBPF): true, or {syscalls: [open, connect], rate: N}; see `ai-sandbox trace`' }),
  approvals: approvalsSchema
    .optional()
    .meta({ description: 'syscalls that wait for a person: {ask: [connect], timeoutMs: 30000}; see `ai-sandbox approvals`' }),
  anomalies: anomalyRulesSchema
    .optional()
    .meta({ description: 'anomaly rules: memoryNearLimit, cpuThrottled, deniedSyscalls, allowedExec, failedOpens; see `ai-sandbox observe`' }),
};

export const defaultsSchema = z.object(sandboxFields).strict();

const relativePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\0'), 'must be a path relative to the step\'s workdir, without ..');

const matrixValue = z.union([z.string(), z.number(), z.boolean()]);

export const stepSchema = z
  .object({
    run: command,
    needs: z.array(z.string().min(1)).max(256).optional(),
    ...sandboxFields,
    outputs: z.array(relativePath).max(256).optional(),
    stdin: z.object({ from: z.string().min(1) }).strict().optional(),
    matrix: z
      .record(z.string().regex(MATRIX_VAR_RE, 'is not a matrix variable name: use letters, digits and _'), z.array(matrixValue).min(1, 'an empty list: give at least one value').max(256))
      .refine((m) => Object.keys(m).length > 0, 'an empty matrix: give at least one variable, e.g. matrix: { kind: [a, b] }')
      .optional()
      .meta({ description: 'fan-out: one step per combination, named step[var=value,...]; use ${{ matrix.var }} in run and env' }),
  })
  .strict();

export const poolSchema = z
  .object({
    cpus: helperLimits.cpus.meta({ description: 'CPU time shared by all running steps' }),
    memory: size(MIN_MEMORY).optional(),
    maxParallel: z.number().int().min(1).max(1024).optional().meta({ description: 'most steps running at once (default 4)' }),
  })
  .strict();

export const workflowSchema = z
  .object({
    $schema: z.string().optional().meta({ description: 'the JSON Schema for editors; ignored' }),
    version: z.literal(WORKFLOW_VERSION),
    name: stepName.meta({ description: 'the workflow\'s name' }),
    description: z.string().max(4000).optional(),
    mode: z
      .enum(['dag', 'queue'])
      .optional()
      .meta({ description: 'dag (default): steps start when their needs finish; queue: independent tasks started by priority as the pool allows' }),
    onFailure: z
      .enum(['stop', 'continue'])
      .optional()
      .meta({ description: 'after a step fails for good: stop (start nothing new; default in dag) or continue with steps that do not need it (default in queue)' }),
    timeout: duration.optional(),
    pool: poolSchema.optional(),
    defaults: defaultsSchema.optional(),
    steps: z
      .record(stepName, stepSchema)
      .refine((s) => Object.keys(s).length > 0, 'a workflow needs at least one step')
      .meta({ description: 'step name → step' }),
  })
  .strict()
  .meta({ title: 'ai-sandbox workflow', description: 'A workflow file for `ai-sandbox workflow`: see docs/workflow.md' });

export type Workflow = z.infer<typeof workflowSchema>;
export type WorkflowInput = z.input<typeof workflowSchema>;
export type Step = z.infer<typeof stepSchema>;
export type StepDefaults = z.infer<typeof defaultsSchema>;
export type StepLimits = z.infer<typeof stepLimitsSchema>;
export type Network = z.infer<typeof networkSchema>;
export type Mount = z.infer<typeof mount>;
export type MatrixValue = z.infer<typeof matrixValue>;
