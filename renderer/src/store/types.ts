import type { HelperStatus, FileProblem } from '../../../privileged-helper/src/ui/contract';
import type { RunState, StepState } from '../../../privileged-helper/src/workflow/run-state';
import type { SnapshotDiffResult, SnapshotInfo, SandboxInfo, SandboxStats } from '../../../privileged-helper/src/protocol/schema';

export type { HelperStatus, FileProblem, RunState, StepState, SnapshotDiffResult, SnapshotInfo, SandboxInfo, SandboxStats };

export type View = 'author' | 'run' | 'travel';
export type Theme = 'light' | 'dark';

export interface Position {
  x: number;
  y: number;
}

export interface AppSlice {
  view: View;
  theme: Theme;
  helper: HelperStatus;
  mode: 'web' | 'electron' | null;
  /** the last error of an action, in words, with where it happened */
  errors: Record<string, string | null>;
  setView(v: View): void;
  toggleTheme(): void;
  setHelper(s: HelperStatus): void;
  setError(where: string, message: string | null): void;
}

export interface AuthorSlice {
  filePath: string;
  text: string;
  savedText: string;
  past: string[];
  future: string[];
  selectedStep: string | null;
  problems: FileProblem[];
  positions: Record<string, Position>;
  loadFile(path: string, text: string): void;
  setFilePath(p: string): void;
  /** replace the text by an edit of it, with an undo entry */
  edit(fn: (text: string) => string): void;
  undo(): void;
  redo(): void;
  selectStep(name: string | null): void;
  setProblems(p: FileProblem[]): void;
  setPosition(name: string, p: Position): void;
  autoLayout(): void;
  markSaved(): void;
}

export type { OutputRing } from '../features/run/output-ring';
import type { OutputRing } from '../features/run/output-ring';

export interface StatPoint {
  t: number;
  cpuPercent: number;
  memoryBytes: number;
}

export interface RunSlice {
  runs: RunState[];
  run: RunState | null;
  runStep: string | null;
  /** per step id: its output ring (mutable on purpose, see output-ring.ts) */
  outputs: Record<string, OutputRing>;
  stats: Record<string, StatPoint[]>;
  setRuns(r: RunState[]): void;
  setRun(r: RunState | null): void;
  updateStep(runId: string, step: StepState): void;
  updateRunStatus(runId: string, status: RunState['status'], error: string | null): void;
  selectRunStep(id: string | null): void;
  /** the step's output ring, made on first use */
  output(step: string): OutputRing;
  addStat(step: string, p: StatPoint): void;
}

export interface TravelSlice {
  snapshots: SnapshotInfo[];
  sandboxes: SandboxInfo[];
  selectedSnapshot: string | null;
  diff: SnapshotDiffResult | null;
  terminalSandbox: string | null;
  forked: string[];
  compare: [string | null, string | null];
  setSnapshots(s: SnapshotInfo[]): void;
  setSandboxes(s: SandboxInfo[]): void;
  selectSnapshot(id: string | null): void;
  setDiff(d: SnapshotDiffResult | null): void;
  setTerminalSandbox(name: string | null): void;
  setForked(names: string[]): void;
  setCompare(i: 0 | 1, run: string | null): void;
}

export type Store = AppSlice & AuthorSlice & RunSlice & TravelSlice;
