/** Author: palette and file on the left, the canvas, the selected step on the right. */
import { useEffect, useState } from 'react';
import { useStore } from '../../store';
import { api, openFile, saveFile, startRun, validateSoon } from '../../store/actions';
import { WorkflowCanvas } from './WorkflowCanvas';
import { StepPanel } from './StepPanel';
import { addStep, connect, disconnect, freeStepName, newWorkflowText, removeStep } from './yaml-graph';

export function addStepAt(pos?: { x: number; y: number }): void {
  const s = useStore.getState();
  const name = freeStepName(s.text);
  s.edit((t) => addStep(t, name));
  if (pos) s.setPosition(name, pos);
  s.selectStep(name);
  validateSoon();
}

export function AuthorView() {
  const filePath = useStore((s) => s.filePath);
  const dirty = useStore((s) => s.text !== s.savedText);
  const selected = useStore((s) => s.selectedStep);
  const problems = useStore((s) => s.problems);
  const fileError = useStore((s) => s.errors.file ?? null);
  const runError = useStore((s) => s.errors.run ?? null);
  const canUndo = useStore((s) => s.past.length > 0);
  const canRedo = useStore((s) => s.future.length > 0);
  const hasText = useStore((s) => s.text.length > 0);
  const [path, setPath] = useState(filePath);
  const [examples, setExamples] = useState<Array<{ name: string; path: string }>>([]);
  useEffect(() => setPath(filePath), [filePath]);
  useEffect(() => {
    void api()
      .call('examples.list', {})
      .then((r) => setExamples(r.examples))
      .catch(() => undefined);
  }, []);
  const st = useStore.getState;
  const errors = problems.filter((p) => p.severity === 'error');

  return (
    <main>
      <aside data-testid="palette">
        <b>Workflow file</b>
        <label>
          Path
          <input name="file-path" value={path} onChange={(e) => setPath(e.target.value)} placeholder="/home/me/flows/workflow.yaml" />
        </label>
        <div className="row">
          <button onClick={() => void openFile(path)}>Open</button>
          <button className="primary" onClick={() => void saveFile(path)} title="Ctrl+S">
            Save{dirty ? ' *' : ''}
          </button>
          <button
            onClick={() => {
              st().loadFile(path.endsWith('.yaml') || path.endsWith('.yml') ? path : '', newWorkflowText());
              st().setFilePath(path);
              useStore.setState({ savedText: '' });
              validateSoon();
            }}
          >
            New
          </button>
        </div>
        {fileError && (
          <div className="error" role="alert">
            {fileError}
          </div>
        )}
        <b>Palette</b>
        <div
          className="palette-item"
          draggable
          data-testid="palette-step"
          onDragStart={(e) => {
            e.dataTransfer.setData('application/x-ai-sandbox-step', 'step');
            e.dataTransfer.effectAllowed = 'copy';
          }}
        >
          ⬚ Step — drag onto the canvas
        </div>
        <div className="row">
          <button onClick={() => addStepAt()} title="N">
            Add step
          </button>
          <button onClick={() => st().autoLayout()} title="L">
            Auto-layout
          </button>
        </div>
        <div className="row">
          <button disabled={!canUndo} onClick={() => st().undo()} title="Ctrl+Z">
            Undo
          </button>
          <button disabled={!canRedo} onClick={() => st().redo()} title="Ctrl+Shift+Z">
            Redo
          </button>
          <button onClick={() => void startRun()} title="Ctrl+Enter">
            Run ▶
          </button>
        </div>
        {runError && <div className="error">{runError}</div>}
        <b>Validation</b>
        <div data-testid="validation">
          {errors.length === 0 ? <span className="st-succeeded">no problems</span> : errors.map((p, i) => <div key={i} className="error">{`line ${p.line}: ${p.path ? `${p.path}: ` : ''}${p.message}`}</div>)}
        </div>
        <b>Examples</b>
        <ul className="list">
          {examples.map((e) => (
            <li key={e.path}>
              <button onClick={() => void openFile(e.path)}>{e.name}</button>
            </li>
          ))}
        </ul>
      </aside>
      <div className="canvas" data-testid="author-canvas">
        {hasText ? (
          <WorkflowCanvas
            editable
            selected={selected}
            onSelect={(n) => st().selectStep(n)}
            onConnect={(from, to) => {
              st().edit((t) => connect(t, from, to));
              validateSoon();
            }}
            onDisconnect={(from, to) => {
              st().edit((t) => disconnect(t, from, to));
              validateSoon();
            }}
            onDelete={(name) => {
              st().edit((t) => removeStep(t, name));
              validateSoon();
            }}
            onDropStep={(pos) => addStepAt(pos)}
          />
        ) : (
          <div className="empty">
            No workflow open. Open one of the examples on the left, type a path and press Open, or press New to start an empty one.
          </div>
        )}
      </div>
      <StepPanel />
    </main>
  );
}
