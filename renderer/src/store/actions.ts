/**
 * What the app does, as functions over the store and the API client: open/save/validate files, start
 * and watch runs, follow a step's output, poll stats, and the time-travel verbs. Errors are put in the
 * store under the place they happened (`errors[where]`), in the helper's words.
 */
import { fromBase64, type AppClient } from '../api/client';
import { clockTime } from '../format';
import { useStore } from './index';
import type { RunState } from './types';

let client: AppClient | null = null;

export function api(): AppClient {
  if (!client) throw new Error('the API is not connected yet');
  return client;
}

/** Run `fn`, showing its failure (in words) at `where`; returns undefined on failure. */
async function attempt<T>(where: string, fn: () => Promise<T>): Promise<T | undefined> {
  const { setError } = useStore.getState();
  try {
    const r = await fn();
    setError(where, null);
    return r;
  } catch (e) {
    setError(where, e instanceof Error ? e.message : String(e));
    return undefined;
  }
}

export async function init(c: AppClient): Promise<void> {
  client = c;
  c.onStatus((s) => {
    const before = useStore.getState().helper.state;
    useStore.getState().setHelper(s);
    if (s.state === 'connected' && before !== 'connected') void refreshRuns();
  });
  const info = await attempt('app', () => c.call('app.info', {}));
  if (!info) return;
  useStore.setState({ mode: info.mode });
  const start = info.initialFile ?? (await attempt('app', () => c.call('examples.list', {})))?.examples.find((e) => e.name === 'agent-pipeline')?.path;
  if (start) await openFile(start);
}

// ---------------------------------------------------------------- author

export async function openFile(path: string): Promise<boolean> {
  const r = await attempt('file', () => api().call('file.open', { path }));
  if (!r) return false;
  useStore.getState().loadFile(r.path, r.text);
  void validateNow();
  return true;
}

export async function saveFile(path?: string): Promise<boolean> {
  const s = useStore.getState();
  const target = path ?? s.filePath;
  if (!target) {
    s.setError('file', 'give the file a path first (an absolute path ending in .yaml)');
    return false;
  }
  const r = await attempt('file', () => api().call('file.save', { path: target, text: s.text }));
  if (!r) return false;
  useStore.setState({ filePath: target });
  useStore.getState().markSaved();
  return true;
}

let validateTimer: ReturnType<typeof setTimeout> | null = null;
export function validateSoon(): void {
  if (validateTimer) clearTimeout(validateTimer);
  validateTimer = setTimeout(() => void validateNow(), 250);
}

export async function validateNow(): Promise<void> {
  const s = useStore.getState();
  const path = s.filePath || '/tmp/untitled.yaml';
  const r = await attempt('validate', () => api().call('file.validate', { path, text: s.text }));
  if (r) useStore.getState().setProblems(r.problems);
}

// ---------------------------------------------------------------- run

const followed = new Map<string, () => void>();
let watching: (() => void) | null = null;

export async function refreshRuns(): Promise<void> {
  const r = await attempt('runs', () => api().call('workflow.list', {}));
  if (r) useStore.getState().setRuns(r.runs);
}

export async function startRun(): Promise<RunState | undefined> {
  const s = useStore.getState();
  if (!s.filePath) {
    s.setError('run', 'save the workflow to a file first (Author → Save)');
    return undefined;
  }
  if (s.text !== s.savedText && !(await saveFile())) return undefined;
  const run = await attempt('run', () => api().call('workflow.start', { text: useStore.getState().text, file: useStore.getState().filePath }));
  if (run) showRun(run);
  return run;
}

/** Make `run` the one on screen and follow it live while it runs. */
export function showRun(run: RunState): void {
  for (const stop of followed.values()) stop();
  followed.clear();
  watching?.();
  watching = null;
  const st = useStore.getState();
  st.setRun(run);
  st.setView('run');
  void refreshRuns();
  if (run.status === 'running' || run.status === 'queued') void watchRun(run.id);
}

export async function openRun(id: string): Promise<void> {
  const run = await attempt('runs', () => api().call('workflow.get', { run: id }));
  if (run) showRun(run);
}

async function watchRun(runId: string): Promise<void> {
  const r = await attempt('run', () => api().call('workflow.watch', { run: runId }));
  if (!r) return;
  watching = api().subscribe(r.stream, (f) => {
    if (f.kind !== 'event' || f.event?.type !== 'workflow') return;
    const e = f.event.event;
    const st = useStore.getState();
    if (e.type === 'step') {
      st.updateStep(runId, e.step);
      if ((e.step.status === 'running' || e.step.status === 'retrying') && e.step.sandbox) follow(e.step.id, e.step.sandbox);
    } else {
      st.updateRunStatus(runId, e.status, e.error);
      void refreshRuns();
    }
  });
}

/** Stream a running step's output into its ring (one subscription per sandbox, i.e. per attempt). */
function follow(stepId: string, sandbox: string): void {
  if (followed.has(sandbox)) return;
  const ring = useStore.getState().output(stepId);
  const decoder = new TextDecoder();
  followed.set(sandbox, () => {});
  void api()
    .call('sandbox.logs', { name: sandbox, follow: true })
    .then((r) => {
      const stop = api().subscribe(r.stream, (f) => {
        if (f.kind === 'stdout' || f.kind === 'stderr') ring.push(decoder.decode(fromBase64(f.data ?? ''), { stream: true }));
        else if (f.event?.type === 'dropped') ring.noteDropped(f.event.frames, f.event.bytes);
      });
      followed.set(sandbox, stop);
    })
    .catch(() => {
      // the step was quicker than us: its sandbox is gone (its output stays in the run's directory)
    });
}

/** CPU and memory of each running step, once a second. */
export function startStatsPolling(): () => void {
  const last = new Map<string, { t: number; cpuNs: number }>();
  const timer = setInterval(() => {
    const run = useStore.getState().run;
    if (!run || useStore.getState().helper.state !== 'connected') return;
    for (const step of run.steps) {
      if (step.status !== 'running' || !step.sandbox) continue;
      const name = step.sandbox;
      void api()
        .call('sandbox.stats', { name })
        .then((st) => {
          const now = performance.now();
          const prev = last.get(name);
          last.set(name, { t: now, cpuNs: st.cpuUsageNs });
          const cpuPercent = prev ? Math.max(0, ((st.cpuUsageNs - prev.cpuNs) / 1e6 / (now - prev.t)) * 100) : 0;
          useStore.getState().addStat(step.id, { t: Date.now(), cpuPercent, memoryBytes: st.memoryCurrentBytes });
        })
        .catch(() => undefined);
    }
  }, 1000);
  return () => clearInterval(timer);
}

export async function cancelRun(): Promise<void> {
  const run = useStore.getState().run;
  if (run) await attempt('run', () => api().call('workflow.cancel', { run: run.id }));
}

export async function replay(runId: string, from: string, env: Record<string, string>): Promise<RunState | undefined> {
  const run = await attempt('replay', () => api().call('workflow.replay', { run: runId, from, env }));
  if (run) showRun(run);
  return run;
}

// ---------------------------------------------------------------- time travel

export async function refreshTravel(): Promise<void> {
  const [snaps, boxes] = await Promise.all([
    attempt('snapshots', () => api().call('snapshot.list', {})),
    attempt('sandboxes', () => api().call('sandbox.list', {})),
  ]);
  if (snaps) useStore.getState().setSnapshots([...snaps.snapshots].sort((a, b) => a.createdAt.localeCompare(b.createdAt)));
  if (boxes) useStore.getState().setSandboxes(boxes.sandboxes);
}

export async function checkpoint(name: string): Promise<void> {
  const snap = await attempt('snapshots', () => api().call('snapshot.checkpoint', { name, leaveRunning: true, label: `from the app at ${clockTime(new Date())}` }));
  await refreshTravel();
  if (snap) await selectSnapshot(snap.id);
}

export async function selectSnapshot(id: string): Promise<void> {
  const st = useStore.getState();
  st.selectSnapshot(id);
  const snap = st.snapshots.find((s) => s.id === id);
  if (snap?.parent) {
    const d = await attempt('diff', () => api().call('snapshot.diff', { from: snap.parent!, to: id }));
    if (d) useStore.getState().setDiff(d);
  }
}

export async function restoreSnapshot(id: string): Promise<string | undefined> {
  const r = await attempt('restore', () => api().call('snapshot.restore', { snapshot: id }));
  if (!r) return undefined;
  useStore.getState().setTerminalSandbox(r.name);
  void refreshTravel();
  return r.name;
}

export async function forkSnapshot(id: string, count: number): Promise<void> {
  const r = await attempt('fork', () => api().call('snapshot.fork', { snapshot: id, count }));
  if (r) useStore.getState().setForked(r.names);
  void refreshTravel();
}
