/** The app's frame: views, helper status (and what to do when it is not running), shortcuts, theme. */
import { ReactFlowProvider } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { lazy, Suspense, useEffect } from 'react';
import { useStore, type View } from './store';
import { saveFile, startRun, startStatsPolling } from './store/actions';
import { AuthorView, addStepAt } from './features/workflow/AuthorView';

const RunView = lazy(() => import('./features/run/RunView').then((m) => ({ default: m.RunView })));
const TravelView = lazy(() => import('./features/snapshots/TravelView').then((m) => ({ default: m.TravelView })));

const VIEWS: Array<[View, string]> = [
  ['author', 'Author'],
  ['run', 'Run'],
  ['travel', 'Time travel'],
];

function typing(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return !!t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable || !!t.closest('.xterm'));
}

function useShortcuts(): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const s = useStore.getState();
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key === 's') {
        e.preventDefault();
        void saveFile();
      } else if (mod && e.key === 'Enter') {
        e.preventDefault();
        void startRun();
      } else if (e.altKey && ['1', '2', '3'].includes(e.key)) {
        e.preventDefault();
        s.setView(VIEWS[Number(e.key) - 1]![0]);
      } else if (typing(e)) {
        return;
      } else if (mod && (e.key === 'y' || (e.key.toLowerCase() === 'z' && e.shiftKey))) {
        e.preventDefault();
        s.redo();
      } else if (mod && e.key === 'z') {
        e.preventDefault();
        s.undo();
      } else if (!mod && s.view === 'author' && e.key === 'n') {
        addStepAt();
      } else if (!mod && s.view === 'author' && e.key === 'l') {
        s.autoLayout();
      } else if (!mod && e.key === 't') {
        s.toggleTheme();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}

export function App() {
  const view = useStore((s) => s.view);
  const theme = useStore((s) => s.theme);
  const helper = useStore((s) => s.helper);
  const filePath = useStore((s) => s.filePath);
  const dirty = useStore((s) => s.text !== s.savedText);
  const appError = useStore((s) => s.errors.app ?? null);
  const setView = useStore((s) => s.setView);
  useShortcuts();
  useEffect(() => startStatsPolling(), []);
  useEffect(() => {
    document.title = `${filePath ? filePath.split('/').pop() : 'ai-sandbox'}${dirty ? ' *' : ''} — ai-sandbox`;
  }, [filePath, dirty]);

  return (
    <div className={`app theme-${theme}`}>
      <header className="top">
        <h1>ai-sandbox</h1>
        <nav className="tabs" role="tablist">
          {VIEWS.map(([v, label], i) => (
            <button key={v} role="tab" aria-selected={view === v} onClick={() => setView(v)} title={`Alt+${i + 1}`}>
              {label}
            </button>
          ))}
        </nav>
        <span className="spacer" />
        <span className="muted" style={{ fontSize: 12 }}>
          {filePath || 'no file'}
          {dirty ? ' (unsaved)' : ''}
        </span>
        <span className={`status ${helper.state}`} data-testid="helper-status" title={helper.message}>
          helper: {helper.state}
        </span>
        <button onClick={() => useStore.getState().toggleTheme()} title="T" aria-label="toggle theme">
          {theme === 'dark' ? '☀' : '☾'}
        </button>
      </header>
      {helper.state === 'unavailable' && (
        <div className="banner" role="alert" data-testid="helper-banner">
          {helper.message}
          {helper.startCommand && (
            <>
              {' '}
              — start it with <code>{helper.startCommand}</code>. Authoring works without it; running and time travel need it.
            </>
          )}
        </div>
      )}
      {appError && <div className="banner">{appError}</div>}
      <ReactFlowProvider>
        <Suspense fallback={<div className="empty">loading…</div>}>
          {view === 'author' && <AuthorView />}
          {view === 'run' && <RunView />}
          {view === 'travel' && <TravelView />}
        </Suspense>
      </ReactFlowProvider>
    </div>
  );
}
