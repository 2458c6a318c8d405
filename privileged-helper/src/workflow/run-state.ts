/** What a workflow run looks like from outside: its status and each step's, as the API returns them. */
import type { ExitReport } from '../protocol/schema.js';

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * `restored`: a step of a replay that was not re-executed, its result restored from the parent run.
 * `interrupted`: the helper stopped while the step ran (the store's markInterrupted).
 */
export const STEP_STATUSES = ['queued', 'waiting', 'running', 'retrying', 'succeeded', 'failed', 'skipped', 'cancelled', 'restored', 'interrupted'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

export interface StepState {
  id: string;
  status: StepStatus;
  attempts: number;
  /** the sandbox of the current (or last) attempt */
  sandbox: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  exit: ExitReport | null;
  /** why it was skipped, cancelled or failed, in words */
  reason: string | null;
  /** what passed through it: stdin fed from another step, stdout kept, outputs, and the `full` snapshot */
  io: { stdinBytes: number; stdoutBytes: number; outputBytes: number; snapshotBytes: number | null } | null;
}

export interface RunState {
  id: string;
  workflow: string;
  status: RunStatus;
  createdAt: string;
  finishedAt: string | null;
  /** most steps that ever ran at the same time */
  peakParallel: number;
  steps: StepState[];
  error: string | null;
  /** a replay: the run it re-runs, and the step it re-runs from */
  replayOf: { run: string; from: string } | null;
}

export type RunEvent = { type: 'step'; run: string; step: StepState } | { type: 'run'; run: string; status: RunStatus; error: string | null };
