/**
 * Time travel: the snapshots as a timeline (select one to see what changed since its parent, restore it
 * into a live sandbox with a terminal, fork it N times), the running sandboxes to checkpoint, and runs:
 * replay from a step with edited input, or compare two side by side.
 */
import { useEffect, useState } from 'react';
import { clockTime, fmtMs } from '../../format';
import { useStore } from '../../store';
import type { RunState } from '../../store/types';
import { api, checkpoint, forkSnapshot, refreshRuns, refreshTravel, replay, restoreSnapshot, selectSnapshot } from '../../store/actions';
import { parseEnv } from '../workflow/StepPanel';
import { SandboxTerminal } from '../terminal/SandboxTerminal';

function mib(b: number): string {
  return `${(b / 1048576).toFixed(1)} MiB`;
}

export function TravelView() {
  const snapshots = useStore((s) => s.snapshots);
  const sandboxes = useStore((s) => s.sandboxes);
  const selected = useStore((s) => s.selectedSnapshot);
  const diff = useStore((s) => s.diff);
  const terminal = useStore((s) => s.terminalSandbox);
  const forked = useStore((s) => s.forked);
  const runs = useStore((s) => s.runs);
  const errors = useStore((s) => s.errors);
  const helper = useStore((s) => s.helper.state);
  const [forkCount, setForkCount] = useState(3);
  useEffect(() => {
    if (helper !== 'connected') return;
    void refreshTravel();
    void refreshRuns();
    const t = setInterval(() => void refreshTravel(), 3000);
    return () => clearInterval(t);
  }, [helper]);
  const snap = snapshots.find((s) => s.id === selected) ?? null;
  const running = sandboxes.filter((s) => s.status === 'running');

  return (
    <main>
      <aside data-testid="snapshot-timeline">
        <b>Snapshots</b>
        {errors.snapshots && <div className="error">{errors.snapshots}</div>}
        {snapshots.length === 0 ? (
          <div className="empty">No snapshots yet. Checkpoint a running sandbox below (or `ai-sandbox checkpoint NAME`).</div>
        ) : (
          <div className="timeline">
            {snapshots.map((s) => (
              <button key={s.id} className="snap" aria-pressed={s.id === selected} onClick={() => void selectSnapshot(s.id)} data-testid={`snapshot-${s.id}`} style={{ marginLeft: s.parent ? 12 : 0 }}>
                <b>{s.id}</b> of {s.sandbox}
                <br />
                <small>
                  {clockTime(s.createdAt)} · {mib(s.memoryBytes)} · {s.processes} proc{s.label ? ` · ${s.label}` : ''}
                </small>
              </button>
            ))}
          </div>
        )}
        <b>Running sandboxes</b>
        {running.length === 0 ? (
          <div className="empty">None running.</div>
        ) : (
          <ul className="list">
            {running.map((s) => (
              <li key={s.name} className="row">
                <span style={{ flex: 1 }}>{s.name}</span>
                <button onClick={() => void checkpoint(s.name)} data-testid={`checkpoint-${s.name}`}>
                  Checkpoint
                </button>
              </li>
            ))}
          </ul>
        )}
      </aside>
      <div className="column">
        <div className="section" style={{ flex: 1 }}>
          {snap ? (
            <div data-testid="snapshot-detail">
              <h2>
                {snap.id} <small>of {snap.sandbox}</small>
              </h2>
              <div>
                parent: {snap.parent ?? 'none'} · size {mib(snap.sizeBytes)} · memory {mib(snap.memoryBytes)} · {snap.processes} processes
              </div>
              <div className="row" style={{ margin: '8px 0' }}>
                <button className="primary" onClick={() => void restoreSnapshot(snap.id)} data-testid="restore">
                  Restore into a live sandbox + terminal
                </button>
                <label style={{ flexDirection: 'row', alignItems: 'center', gap: 4 }}>
                  ×<input type="number" min={1} max={64} value={forkCount} onChange={(e) => setForkCount(Number(e.target.value))} style={{ width: 60 }} name="fork-count" />
                </label>
                <button onClick={() => void forkSnapshot(snap.id, forkCount)} data-testid="fork">
                  Fork ×{forkCount}
                </button>
              </div>
              {errors.restore && <div className="error">{errors.restore}</div>}
              {errors.fork && <div className="error">{errors.fork}</div>}
              {forked.length > 0 && <div data-testid="forked">forked: {forked.join(', ')}</div>}
              {errors.diff && <div className="error">{errors.diff}</div>}
              {diff ? (
                <div data-testid="snapshot-diff">
                  <h2>Since {diff.from}</h2>
                  <div>
                    memory {mib(diff.memory.beforeBytes)} → {mib(diff.memory.afterBytes)} ({diff.memory.deltaBytes >= 0 ? '+' : ''}
                    {mib(diff.memory.deltaBytes)})
                  </div>
                  <table>
                    <tbody>
                      {diff.files.slice(0, 200).map((f) => (
                        <tr key={f.path}>
                          <td>{f.kind}</td>
                          <td>{f.path}</td>
                        </tr>
                      ))}
                      {diff.processes.started.map((p) => (
                        <tr key={`s${p.pid}`}>
                          <td>started</td>
                          <td>
                            {p.pid} {p.cmdline}
                          </td>
                        </tr>
                      ))}
                      {diff.processes.ended.map((p) => (
                        <tr key={`e${p.pid}`}>
                          <td>ended</td>
                          <td>
                            {p.pid} {p.cmdline}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                  {diff.files.length === 0 && diff.processes.started.length === 0 && diff.processes.ended.length === 0 && <div>no files or processes changed</div>}
                </div>
              ) : (
                snap && !snap.parent && <div className="empty">The first snapshot of its sandbox: nothing earlier to compare with.</div>
              )}
            </div>
          ) : (
            <div className="empty">Select a snapshot on the left to see what changed, restore it, or fork it.</div>
          )}
          <RunsTravel runs={runs} />
        </div>
        {terminal && <SandboxTerminal key={terminal} sandbox={terminal} />}
      </div>
    </main>
  );
}

/** A run's steps on a time axis: where each began and ended, what it kept; click one to replay from it. */
function RunTimeline({ run, picked, onPick }: { run: RunState; picked: string; onPick(step: string): void }) {
  const started = run.steps.filter((s) => s.startedAt).map((s) => Date.parse(s.startedAt!));
  if (started.length === 0) return <div className="empty">This run has not started a step yet.</div>;
  const t0 = Math.min(...started);
  const t1 = Math.max(t0 + 1, ...run.steps.map((s) => (s.finishedAt ? Date.parse(s.finishedAt) : s.startedAt ? Date.now() : t0)));
  const pct = (t: number) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(2)}%`;
  return (
    <div data-testid="run-timeline" style={{ margin: '8px 0' }}>
      <small>
        {run.id}: {fmtMs(t1 - t0)} from the first step to the last; click a step to replay from it
      </small>
      {run.steps.map((s) => {
        const a = s.startedAt ? Date.parse(s.startedAt) : null;
        const b = s.finishedAt ? Date.parse(s.finishedAt) : a !== null ? Date.now() : null;
        const kept = s.status === 'restored' ? 'restored from the earlier run' : s.io?.snapshotBytes != null ? `files kept (${(s.io.snapshotBytes / 1024).toFixed(0)} KiB)` : '';
        return (
          <div key={s.id} className="row" style={{ cursor: 'pointer', fontWeight: s.id === picked ? 600 : 400 }} onClick={() => onPick(s.id)} title={s.reason ?? ''}>
            <span style={{ width: 160, overflow: 'hidden', textOverflow: 'ellipsis' }}>{s.id}</span>
            <span style={{ position: 'relative', flex: 1, height: 12, background: 'var(--chip)', borderRadius: 3 }}>
              {a !== null && b !== null && (
                <span className={`st-${s.status}`} style={{ position: 'absolute', left: pct(a), width: `max(2px, calc(${pct(b)} - ${pct(a)}))`, top: 0, bottom: 0, background: 'currentColor', borderRadius: 3 }} />
              )}
            </span>
            <span style={{ width: 260, fontSize: 12 }} className={`st-${s.status}`}>
              {s.status} {fmtMs(s.durationMs)} {kept}
            </span>
          </div>
        );
      })}
    </div>
  );
}

function RunsTravel({ runs }: { runs: RunState[] }) {
  const compare = useStore((s) => s.compare);
  const setCompare = useStore((s) => s.setCompare);
  const replayError = useStore((s) => s.errors.replay ?? null);
  const [runId, setRunId] = useState('');
  const [from, setFrom] = useState('');
  const [env, setEnv] = useState('');
  const [a, setA] = useState<RunState | null>(null);
  const [b, setB] = useState<RunState | null>(null);
  const base = runs.find((r) => r.id === runId) ?? null;
  useEffect(() => {
    if (!runId && runs[0]) setRunId(runs[0].id);
  }, [runs, runId]);
  useEffect(() => {
    const get = (id: string | null, set: (r: RunState | null) => void) =>
      id
        ? void api()
            .call('workflow.get', { run: id })
            .then(set)
            .catch(() => set(null))
        : set(null);
    get(compare[0], setA);
    get(compare[1], setB);
  }, [compare]);
  return (
    <div data-testid="runs-travel">
      <h2>Replay a run from a step</h2>
      {runs.length === 0 ? (
        <div className="empty">No runs yet: run a workflow first.</div>
      ) : (
        <div className="row">
          <select name="replay-run" value={runId} onChange={(e) => setRunId(e.target.value)} style={{ width: 'auto' }}>
            {runs.map((r) => (
              <option key={r.id} value={r.id}>
                {r.id} {r.workflow} ({r.status})
              </option>
            ))}
          </select>
          <select name="replay-from" value={from} onChange={(e) => setFrom(e.target.value)} style={{ width: 'auto' }}>
            <option value="">from step…</option>
            {(base?.steps ?? []).map((s) => (
              <option key={s.id} value={s.id}>
                {s.id}
              </option>
            ))}
          </select>
          <textarea name="replay-env" rows={2} placeholder="edited input: NAME=value, one a line" value={env} onChange={(e) => setEnv(e.target.value)} style={{ width: 260 }} />
          <button className="primary" disabled={!runId || !from} onClick={() => void replay(runId, from, parseEnv(env) ?? {})} data-testid="replay">
            Replay from {from || '…'}
          </button>
        </div>
      )}
      {replayError && <div className="error">{replayError}</div>}
      {base && <RunTimeline run={base} picked={from} onPick={setFrom} />}
      <h2>Compare two runs</h2>
      <div className="row">
        {[0, 1].map((i) => (
          <select key={i} name={`compare-${i}`} value={compare[i] ?? ''} onChange={(e) => setCompare(i as 0 | 1, e.target.value || null)} style={{ width: 'auto' }}>
            <option value="">run {i === 0 ? 'A' : 'B'}…</option>
            {runs.map((r) => (
              <option key={r.id} value={r.id}>
                {r.id} {r.workflow}
              </option>
            ))}
          </select>
        ))}
      </div>
      {(a || b) && (
        <div className="split" data-testid="compare">
          {[a, b].map((r, i) => (
            <table key={i}>
              <thead>
                <tr>
                  <th colSpan={3}>{r ? `${r.id} · ${r.status}${r.replayOf ? ` · replay of ${r.replayOf.run} from ${r.replayOf.from}` : ''}` : '–'}</th>
                </tr>
              </thead>
              <tbody>
                {(r?.steps ?? []).map((s) => {
                  const other = (i === 0 ? b : a)?.steps.find((x) => x.id === s.id);
                  const differs = other && (other.status !== s.status || other.exit?.exitCode !== s.exit?.exitCode);
                  return (
                    <tr key={s.id} style={{ background: differs ? 'color-mix(in srgb, var(--warn) 15%, transparent)' : undefined }}>
                      <td>{s.id}</td>
                      <td className={`st-${s.status}`}>{s.status}</td>
                      <td>{fmtMs(s.durationMs)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          ))}
        </div>
      )}
    </div>
  );
}
