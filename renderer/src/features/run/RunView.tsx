/** Run: history on the left, the workflow with live step status, the selected step's output and charts. */
import { useEffect, useState } from 'react';
import { clockTime, fmtMs } from '../../format';
import { useStore } from '../../store';
import { cancelRun, openRun, refreshRuns, startRun } from '../../store/actions';
import { WorkflowCanvas } from '../workflow/WorkflowCanvas';
import { MiniChart } from './MiniChart';
import { OutputPane } from './OutputPane';

export function RunView() {
  const runs = useStore((s) => s.runs);
  const run = useStore((s) => s.run);
  const runStep = useStore((s) => s.runStep);
  const stats = useStore((s) => (runStep ? s.stats[runStep] : undefined));
  const error = useStore((s) => s.errors.run ?? null);
  const runsError = useStore((s) => s.errors.runs ?? null);
  const helper = useStore((s) => s.helper.state);
  const hasWorkflow = useStore((s) => s.text.length > 0);
  const select = useStore((s) => s.selectRunStep);
  useEffect(() => {
    if (helper === 'connected') void refreshRuns();
  }, [helper]);
  const step = run?.steps.find((s) => s.id === runStep) ?? null;
  const [tick, setTick] = useState(0);
  const live = run?.status === 'running';
  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [live]);

  return (
    <main>
      <aside data-testid="run-history">
        <div className="row">
          <button className="primary" disabled={!hasWorkflow || helper !== 'connected'} onClick={() => void startRun()} title="Ctrl+Enter">
            Run workflow ▶
          </button>
          {run?.status === 'running' && <button onClick={() => void cancelRun()}>Cancel</button>}
        </div>
        {error && (
          <div className="error" role="alert">
            {error}
          </div>
        )}
        <b>Run history</b>
        {runsError && <div className="error">{runsError}</div>}
        {runs.length === 0 ? (
          <div className="empty">No runs yet. Open a workflow in Author and press Run (Ctrl+Enter).</div>
        ) : (
          <ul className="list">
            {runs.map((r) => (
              <li key={r.id}>
                <button aria-pressed={run?.id === r.id} onClick={() => void openRun(r.id)} data-testid={`run-${r.id}`}>
                  <span className={`st-${r.status}`}>●</span> {r.id} {r.workflow} {r.replayOf ? `(replay from ${r.replayOf.from})` : ''}
                  <br />
                  <small>
                    {clockTime(r.createdAt)} · {r.status}
                  </small>
                </button>
              </li>
            ))}
          </ul>
        )}
      </aside>
      <div className="column">
        <div className="canvas" data-testid="run-canvas">
          {run ? (
            <WorkflowCanvas editable={false} steps={run.steps} tick={tick} selected={runStep?.replace(/\[.*$/, '') ?? null} onSelect={(n) => n && select(run.steps.find((s) => s.id === n || s.id.startsWith(`${n}[`))?.id ?? n)} />
          ) : hasWorkflow ? (
            <WorkflowCanvas editable={false} steps={undefined} selected={null} onSelect={() => undefined} />
          ) : (
            <div className="empty">Open a workflow in Author, then start a run (Run workflow ▶) or pick one from the history to watch its steps here.</div>
          )}
        </div>
        <OutputPane step={runStep} />
      </div>
      <aside className="right" data-testid="run-detail">
        {run ? (
          <>
            <div>
              <b>{run.id}</b> <span className={`badge st-${run.status}`} data-testid="run-status">{run.status}</span>
              {run.error && <div className="error">{run.error}</div>}
            </div>
            <table>
              <thead>
                <tr>
                  <th>step</th>
                  <th>status</th>
                  <th>time</th>
                </tr>
              </thead>
              <tbody>
                {run.steps.map((s) => (
                  <tr key={s.id} onClick={() => select(s.id)} style={{ cursor: 'pointer', fontWeight: s.id === runStep ? 600 : 400 }} data-testid={`row-${s.id}`}>
                    <td>{s.id}</td>
                    <td className={`st-${s.status}`} data-testid={`row-status-${s.id}`}>
                      {s.status}
                      {s.attempts > 1 ? ` (${s.attempts})` : ''}
                    </td>
                    <td>{fmtMs(s.durationMs ?? (s.status === 'running' && s.startedAt ? Date.now() - Date.parse(s.startedAt) : null))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {step && (
              <div>
                <b>{step.id}</b>
                <div>sandbox: {step.sandbox ?? '–'}</div>
                {step.exit && (
                  <div>
                    exit {step.exit.exitCode} ({step.exit.reason}), CPU {step.exit.cpuMs} ms, peak memory {(step.exit.memoryPeakBytes / 1048576).toFixed(1)} MiB
                  </div>
                )}
                {step.reason && <div className="error">{step.reason}</div>}
                <div className="charts">
                  <MiniChart label="CPU" values={(stats ?? []).map((p) => p.cpuPercent)} max={100} format={(v) => `${v.toFixed(0)}%`} />
                  <MiniChart label="Memory" values={(stats ?? []).map((p) => p.memoryBytes)} max={1} format={(v) => `${(v / 1048576).toFixed(1)} MiB`} />
                </div>
              </div>
            )}
          </>
        ) : (
          <div className="empty">Live status, duration, CPU and memory of each step appear here during a run.</div>
        )}
      </aside>
    </main>
  );
}
