/**
 * The app's state: one zustand store made of slices (app, author, run, time travel), each typed against
 * the whole store. Components read it through narrow selectors; side effects (API calls) live in
 * actions.ts, so the slices stay plain and testable.
 */
import { create, type StateCreator } from 'zustand';
import { createStore } from 'zustand/vanilla';
import { readGraph } from '../features/workflow/yaml-graph';
import { layout } from '../features/workflow/layout';
import { OutputRing } from '../features/run/output-ring';
import { type AppSlice, type AuthorSlice, type RunSlice, type Store, type TravelSlice } from './types';

export * from './types';

const HISTORY_LIMIT = 200;

type Slice<T> = StateCreator<Store, [], [], T>;

function initialTheme(): 'light' | 'dark' {
  try {
    const saved = globalThis.localStorage?.getItem('ai-sandbox.theme');
    if (saved === 'light' || saved === 'dark') return saved;
    return globalThis.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  } catch {
    return 'light';
  }
}

export const appSlice: Slice<AppSlice> = (set) => ({
  view: 'author',
  theme: initialTheme(),
  helper: { state: 'connecting', message: 'connecting to the helper…', startCommand: '', helperVersion: null },
  mode: null,
  errors: {},
  setView: (view) => set({ view }),
  toggleTheme: () =>
    set((s) => {
      const theme = s.theme === 'dark' ? 'light' : 'dark';
      try {
        globalThis.localStorage?.setItem('ai-sandbox.theme', theme);
      } catch {
        // private mode: the theme just does not persist
      }
      return { theme };
    }),
  setHelper: (helper) => set({ helper }),
  setError: (where, message) => set((s) => ({ errors: { ...s.errors, [where]: message } })),
});

/** Keep positions of steps that still exist; lay out the new ones beside the rest. */
function placed(text: string, positions: AuthorSlice['positions']): AuthorSlice['positions'] {
  const g = readGraph(text);
  if (g.syntaxError) return positions;
  const fresh = layout(g.steps);
  const out: AuthorSlice['positions'] = {};
  const maxY = Math.max(0, ...Object.values(positions).map((p) => p.y));
  for (const s of g.steps) out[s.name] = positions[s.name] ?? (Object.keys(positions).length ? { x: fresh[s.name]!.x, y: maxY + 100 } : fresh[s.name]!);
  return out;
}

export const authorSlice: Slice<AuthorSlice> = (set, get) => ({
  filePath: '',
  text: '',
  savedText: '',
  past: [],
  future: [],
  selectedStep: null,
  problems: [],
  positions: {},
  loadFile: (filePath, text) => set({ filePath, text, savedText: text, past: [], future: [], selectedStep: null, problems: [], positions: layout(readGraph(text).steps) }),
  setFilePath: (filePath) => set({ filePath }),
  edit: (fn) => {
    const { text, past, positions, selectedStep } = get();
    const next = fn(text);
    if (next === text) return;
    const names = new Set(readGraph(next).steps.map((s) => s.name));
    set({
      text: next,
      past: [...past, text].slice(-HISTORY_LIMIT),
      future: [],
      positions: placed(next, positions),
      selectedStep: selectedStep && names.has(selectedStep) ? selectedStep : null,
    });
  },
  undo: () => {
    const { past, text, future, positions } = get();
    const prev = past.at(-1);
    if (prev === undefined) return;
    set({ text: prev, past: past.slice(0, -1), future: [text, ...future], positions: placed(prev, positions) });
  },
  redo: () => {
    const { past, text, future, positions } = get();
    const next = future[0];
    if (next === undefined) return;
    set({ text: next, past: [...past, text], future: future.slice(1), positions: placed(next, positions) });
  },
  selectStep: (selectedStep) => set({ selectedStep }),
  setProblems: (problems) => set({ problems }),
  setPosition: (name, p) => set((s) => ({ positions: { ...s.positions, [name]: p } })),
  autoLayout: () => set((s) => ({ positions: layout(readGraph(s.text).steps) })),
  markSaved: () => set((s) => ({ savedText: s.text })),
});

export const runSlice: Slice<RunSlice> = (set, get) => ({
  runs: [],
  run: null,
  runStep: null,
  outputs: {},
  stats: {},
  setRuns: (runs) => set({ runs }),
  setRun: (run) => set((s) => (run?.id === s.run?.id ? { run } : { run, outputs: {}, stats: {}, runStep: null })),
  updateStep: (runId, step) =>
    set((s) => {
      if (!s.run || s.run.id !== runId) return {};
      const steps = s.run.steps.some((x) => x.id === step.id) ? s.run.steps.map((x) => (x.id === step.id ? step : x)) : [...s.run.steps, step];
      return { run: { ...s.run, steps } };
    }),
  updateRunStatus: (runId, status, error) =>
    set((s) => (s.run && s.run.id === runId ? { run: { ...s.run, status, error, finishedAt: status === 'running' ? null : (s.run.finishedAt ?? new Date().toISOString()) } } : {})),
  selectRunStep: (runStep) => set({ runStep }),
  output: (step) => {
    const have = get().outputs[step];
    if (have) return have;
    const ring = new OutputRing();
    set((s) => ({ outputs: { ...s.outputs, [step]: ring } }));
    return ring;
  },
  addStat: (step, p) => set((s) => ({ stats: { ...s.stats, [step]: [...(s.stats[step] ?? []), p].slice(-60) } })),
});

export const travelSlice: Slice<TravelSlice> = (set) => ({
  snapshots: [],
  sandboxes: [],
  selectedSnapshot: null,
  diff: null,
  terminalSandbox: null,
  forked: [],
  compare: [null, null],
  setSnapshots: (snapshots) => set({ snapshots }),
  setSandboxes: (sandboxes) => set({ sandboxes }),
  selectSnapshot: (selectedSnapshot) => set({ selectedSnapshot, diff: null }),
  setDiff: (diff) => set({ diff }),
  setTerminalSandbox: (terminalSandbox) => set({ terminalSandbox }),
  setForked: (forked) => set({ forked }),
  setCompare: (i, run) => set((s) => ({ compare: (i === 0 ? [run, s.compare[1]] : [s.compare[0], run]) as [string | null, string | null] })),
});

const all: Slice<Store> = (...a) => ({ ...appSlice(...a), ...authorSlice(...a), ...runSlice(...a), ...travelSlice(...a) });

/** A fresh store (tests). */
export const makeStore = () => createStore<Store>()(all);
/** The app's store. */
export const useStore = create<Store>()(all);
