/**
 * A snapshot's metadata, written last (meta.json) so a snapshot without it is incomplete by definition.
 * Read back through the schema: a hand-edited or truncated file is refused with its reason.
 */
import { z } from 'zod';
import { nameSchema, sandboxSpecSchema, snapshotIdSchema } from '../protocol/schema.js';

export { SNAPSHOT_ID_RE, snapshotIdSchema } from '../protocol/schema.js';

export const processSchema = z.object({ pid: z.number().int(), ppid: z.number().int(), comm: z.string(), cmdline: z.string() }).strict();

export const snapshotMetaSchema = z
  .object({
    version: z.literal(1),
    id: snapshotIdSchema,
    sandbox: nameSchema,
    parent: snapshotIdSchema.nullable(),
    createdAt: z.string(),
    label: z.string().max(200).nullable(),
    spec: sandboxSpecSchema,
    leaveRunning: z.boolean(),
    criuVersion: z.string(),
    /** names (`pipe:[inode]`) of the sandbox's stdio and status pipes at dump time, for --inherit-fd */
    pipes: z.object({ stdin: z.string(), stdout: z.string(), stderr: z.string(), status: z.string() }).strict(),
    /** mounts bound from the host (the /proc masks, the user's --mount): CRIU dumps them as external
     * and a restore binds `source` there again */
    externalMounts: z.array(z.object({ target: z.string(), key: z.string(), source: z.string() }).strict()),
    /** the key its network namespace was dumped under as external (restore into a fresh one), if so */
    netKey: z.string().regex(/^[a-zA-Z0-9-]{1,64}$/).nullable(),
    processes: z.array(processSchema),
    /** bytes of process memory in the images */
    memoryBytes: z.number().int().min(0),
    sizes: z.object({ images: z.number().int(), upper: z.number().int(), total: z.number().int() }).strict(),
    files: z.record(z.string(), z.object({ size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict()),
    /** where the checkpoint's time went (prepareMs and commitMs since 2026-12: optional for older ones) */
    timings: z.object({ prepareMs: z.number().optional(), dumpMs: z.number(), archiveMs: z.number(), commitMs: z.number().optional() }).strict(),
  })
  .strict();
export type SnapshotMeta = z.infer<typeof snapshotMetaSchema>;
export type ProcessEntry = z.infer<typeof processSchema>;

export type { SnapshotInfo } from '../protocol/schema.js';
import type { SnapshotInfo } from '../protocol/schema.js';

export function infoOf(m: SnapshotMeta): SnapshotInfo {
  return { id: m.id, sandbox: m.sandbox, parent: m.parent, createdAt: m.createdAt, label: m.label, sizeBytes: m.sizes.total, memoryBytes: m.memoryBytes, processes: m.processes.length };
}
