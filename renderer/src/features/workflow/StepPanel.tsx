/** The side panel: edit the selected step's command, needs, limits, network and snapshot policy. */
import { useEffect, useState } from 'react';
import { validateSoon } from '../../store/actions';
import { useStore } from '../../store';
import { readGraph, removeStep, renameStep, setStepField, SNAPSHOT_POLICIES, type StepView } from './yaml-graph';

function Field(props: { label: string; name: string; value: string; error: string | undefined; onCommit(v: string): void; multiline?: boolean; placeholder?: string }) {
  const [draft, setDraft] = useState(props.value);
  useEffect(() => setDraft(props.value), [props.value]);
  const commit = () => draft !== props.value && props.onCommit(draft);
  return (
    <label className={props.error ? 'invalid' : ''}>
      {props.label}
      {props.multiline ? (
        <textarea name={props.name} rows={3} value={draft} placeholder={props.placeholder} onChange={(e) => setDraft(e.target.value)} onBlur={commit} />
      ) : (
        <input name={props.name} value={draft} placeholder={props.placeholder} onChange={(e) => setDraft(e.target.value)} onBlur={commit} onKeyDown={(e) => e.key === 'Enter' && commit()} />
      )}
      {props.error && <span className="field-error">{props.error}</span>}
    </label>
  );
}

export function StepPanel() {
  const selected = useStore((s) => s.selectedStep);
  const text = useStore((s) => s.text);
  const problems = useStore((s) => s.problems);
  const edit = useStore((s) => s.edit);
  const select = useStore((s) => s.selectStep);
  if (!selected) {
    return (
      <aside className="right">
        <div className="empty">
          Select a step to edit its command, limits, network and snapshot policy.
          <br />
          <br />
          Add steps from the palette (drag <b>Step</b> onto the canvas, or press <kbd>N</kbd>); connect a step's right handle to another's left handle to make the second need the first.
        </div>
      </aside>
    );
  }
  const step = readGraph(text).steps.find((s) => s.name === selected);
  if (!step) return <aside className="right" />;
  const errorAt = (...field: string[]) => problems.find((p) => p.path === ['steps', selected, ...field].join('.') || (field.length === 0 && p.path === `steps.${selected}`))?.message;
  const change = (field: string[], value: unknown) => {
    edit((t) => setStepField(t, selected, field, value));
    validateSoon();
  };
  const num = (v: string): string | number => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);
  const stepErrors = problems.filter((p) => p.path === `steps.${selected}` || p.path.startsWith(`steps.${selected}.`));
  return (
    <aside className="right" data-testid="step-panel">
      <h2 style={{ margin: 0, fontSize: 14 }}>Step {selected}</h2>
      <Field
        label="Name"
        name="name"
        value={step.name}
        error={undefined}
        onCommit={(v) => {
          edit((t) => renameStep(t, selected, v.trim()));
          select(v.trim());
          validateSoon();
        }}
      />
      <Field label="Command (run by sh -c)" name="run" multiline value={commandText(step)} error={errorAt('run')} onCommit={(v) => change(['run'], v)} placeholder="python3 main.py" />
      <div className="row">
        <Field label="CPUs" name="cpus" value={String(step.limits.cpus ?? '')} error={errorAt('limits', 'cpus')} onCommit={(v) => change(['limits', 'cpus'], num(v))} placeholder="1" />
        <Field label="Memory" name="memory" value={String(step.limits.memory ?? '')} error={errorAt('limits', 'memory')} onCommit={(v) => change(['limits', 'memory'], v)} placeholder="256M" />
        <Field label="Processes" name="pids" value={String(step.limits.pids ?? '')} error={errorAt('limits', 'pids')} onCommit={(v) => change(['limits', 'pids'], num(v))} placeholder="64" />
      </div>
      <div className="row">
        <Field label="Timeout" name="timeout" value={step.timeout ?? ''} error={errorAt('timeout')} onCommit={(v) => change(['timeout'], v)} placeholder="30s" />
        <Field label="Retries" name="retries" value={step.retries === null ? '' : String(step.retries)} error={errorAt('retries')} onCommit={(v) => change(['retries'], num(v))} placeholder="0" />
      </div>
      <label className={errorAt('network') ? 'invalid' : ''}>
        Network
        <select name="network" value={step.network ?? ''} onChange={(e) => change(['network'], e.target.value)}>
          <option value="">(default: none)</option>
          <option value="none">none</option>
        </select>
        {errorAt('network') && <span className="field-error">{errorAt('network')}</span>}
      </label>
      <label className={errorAt('snapshot') ? 'invalid' : ''}>
        Snapshot after the step
        <select name="snapshot" value={step.snapshot ?? ''} onChange={(e) => change(['snapshot'], e.target.value)}>
          <option value="">(default)</option>
          {SNAPSHOT_POLICIES.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </label>
      <Field
        label="Environment (NAME=value, one a line)"
        name="env"
        multiline
        value={Object.entries(step.env)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n')}
        error={problems.find((p) => p.path.startsWith(`steps.${selected}.env`))?.message}
        onCommit={(v) => change(['env'], parseEnv(v))}
      />
      <div className="muted" style={{ fontSize: 12 }}>
        Needs: {step.needs.length ? step.needs.join(', ') : 'nothing (starts first)'}
      </div>
      {stepErrors.length > 0 && (
        <div className="error" data-testid="step-errors">
          {stepErrors.map((p) => `line ${p.line}: ${p.message}`).join('\n')}
        </div>
      )}
      <button
        onClick={() => {
          edit((t) => removeStep(t, selected));
          validateSoon();
        }}
      >
        Delete step
      </button>
    </aside>
  );
}

function commandText(s: StepView): string {
  return Array.isArray(s.run) ? s.run.join(' ') : s.run;
}

export function parseEnv(v: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const line of v.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) continue;
    out[t.slice(0, eq).trim()] = t.slice(eq + 1);
  }
  return Object.keys(out).length ? out : null;
}
