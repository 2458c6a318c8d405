/**
 * What a benchmark module receives and returns. `bench/main.ts` owns the process: argument parsing,
 * signal handling and cleanup, and printing (a table, or one JSON object with --json).
 */
import type { Table, TargetCheck } from './stats.js';

export interface BenchOptions {
  /** --quick: small counts for a smoke run */
  quick: boolean;
  /** --runs N: measured runs of the main case (each benchmark documents how it scales the others) */
  runs: number | null;
  /** --density N: sandboxes in a density measurement (benchmarks that have one) */
  density: number | null;
  json: boolean;
}

export interface BenchContext {
  options: BenchOptions;
  /** progress for humans: always stderr, so `--json` keeps stdout clean */
  log(msg: string): void;
  /**
   * Register cleanup that must run even on error or Ctrl-C; returns a function that unregisters it
   * (call it once you have cleaned up yourself). Cleanups run in reverse order and must be idempotent.
   */
  onCleanup(fn: () => Promise<void> | void): () => void;
  /** true once SIGINT/SIGTERM arrived: long loops check it and stop early */
  readonly aborted: boolean;
}

export interface BenchResult {
  tables: Table[];
  targets: TargetCheck[];
  /** the machine-readable figures, printed as-is under "results" with --json */
  data: Record<string, unknown>;
  /** things that went wrong but did not stop the run (a peer missing, a leak); non-empty → exit 1 */
  problems: string[];
}

export interface BenchModule {
  run(ctx: BenchContext): Promise<BenchResult>;
}

export class Aborted extends Error {
  constructor() {
    super('interrupted');
  }
}
