/**
 * The workflow as a React Flow canvas, shared by Author (editable) and Run (read-only, with live step
 * status). Node positions live in the store; edits go through applyNodeChanges; `needs` edges are made
 * by dragging from a step's right handle to another's left handle.
 */
import { Background, Controls, MiniMap, ReactFlow, applyNodeChanges, useReactFlow, useStore as useFlowStore, type Connection, type Edge, type EdgeChange, type NodeChange } from '@xyflow/react';
import { useCallback, useMemo, useRef, useState, type DragEvent } from 'react';
import { useStore } from '../../store';
import type { StepState } from '../../store/types';
import { nodeTypes, type StepFlowNode } from './StepNode';
import { readGraph } from './yaml-graph';

export interface CanvasProps {
  editable: boolean;
  steps?: StepState[] | undefined;
  /** changes once a second while something runs, so running steps' durations count up */
  tick?: number;
  selected: string | null;
  onSelect(name: string | null): void;
  onConnect?: (from: string, to: string) => void;
  onDisconnect?: (from: string, to: string) => void;
  onDelete?: (name: string) => void;
  onDropStep?: (pos: { x: number; y: number }) => void;
}

const MINIMAP_MAX_NODES = 60;
const ORIGIN = { x: 0, y: 0 };
/** below this zoom a step shows its name only: its small print is unreadable and costly to repaint */
const DETAIL_ZOOM = 0.6;

function DetailLevel({ big }: { big: boolean }) {
  const far = useFlowStore((s) => s.transform[2] < DETAIL_ZOOM);
  return big && far ? <style>{'.react-flow .step-node .cmd, .react-flow .step-node .node-error { display: none; }'}</style> : null;
}

export function WorkflowCanvas(props: CanvasProps) {
  const text = useStore((s) => s.text);
  const positions = useStore((s) => s.positions);
  const problems = useStore((s) => s.problems);
  const setPosition = useStore((s) => s.setPosition);
  const flow = useReactFlow();
  const graph = useMemo(() => readGraph(text), [text]);

  // node data keeps its identity while only positions change, so dragging one step of 200 re-renders one
  const dataCache = useRef(new Map<string, StepFlowNode['data']>());
  const dataByName = useMemo(() => {
    const byStep = new Map<string, StepState>();
    // a matrix step runs as several (name[var=value]): show the "worst" of them on its one node
    for (const s of props.steps ?? []) {
      const base = s.id.replace(/\[.*$/, '');
      const have = byStep.get(base);
      if (!have || rank(s.status) > rank(have.status)) byStep.set(base, s);
    }
    const firstError = new Map<string, string>();
    for (const p of problems) {
      if (p.severity !== 'error') continue;
      const m = /^steps\.([^.[]+)/.exec(p.path);
      if (m && !firstError.has(m[1]!)) firstError.set(m[1]!, p.message);
    }
    const out = new Map<string, StepFlowNode['data']>();
    for (const s of graph.steps) {
      const st = byStep.get(s.name);
      const old = dataCache.current.get(s.name);
      const fresh: StepFlowNode['data'] = {
        name: s.name,
        command: Array.isArray(s.run) ? s.run.join(' ') : s.run,
        error: firstError.get(s.name) ?? null,
        status: st?.status ?? null,
        durationMs: st?.durationMs ?? (st?.startedAt && st.status === 'running' ? Date.now() - Date.parse(st.startedAt) : null),
        attempts: st?.attempts ?? 0,
        selected: props.selected === s.name,
      };
      // the same content keeps the same object, so selecting one step re-renders two nodes, not all
      out.set(s.name, old && sameData(old, fresh) ? old : fresh);
    }
    dataCache.current = out;
    return out;
  }, [graph, problems, props.steps, props.selected, props.tick]);

  // the sizes React Flow measured, handed back with the nodes: without them (controlled nodes) the
  // minimap draws no step at all
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});

  // unchanged steps keep their node object: React Flow then re-renders only the step that moved
  const cache = useRef(new Map<string, StepFlowNode>());
  const nodes = useMemo<StepFlowNode[]>(() => {
    const next = new Map<string, StepFlowNode>();
    const list = graph.steps.map((s) => {
      const position = positions[s.name] ?? ORIGIN;
      const data = dataByName.get(s.name)!;
      const selected = props.selected === s.name;
      const size = measured[s.name];
      const old = cache.current.get(s.name);
      const node =
        old && old.position === position && old.data === data && old.selected === selected && old.measured === size
          ? old
          : { id: s.name, type: 'step' as const, position, selected, data, ...(size ? { measured: size } : {}) };
      next.set(s.name, node);
      return node;
    });
    cache.current = next;
    return list;
  }, [graph, positions, dataByName, props.selected, measured]);

  const edges = useMemo<Edge[]>(
    () => graph.steps.flatMap((s) => s.needs.filter((n) => graph.steps.some((o) => o.name === n)).map((n) => ({ id: `${n}->${s.name}`, source: n, target: s.name, animated: false }))),
    [graph],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange<StepFlowNode>[]) => {
      const next = applyNodeChanges(changes, nodes);
      const sizes: Record<string, { width: number; height: number }> = {};
      for (const c of changes) {
        if (c.type === 'dimensions' && c.dimensions) sizes[c.id] = c.dimensions;
        if (c.type === 'position' && c.position) setPosition(c.id, next.find((n) => n.id === c.id)!.position);
        if (c.type === 'select' && c.selected) props.onSelect(c.id);
        if (c.type === 'remove' && props.editable) props.onDelete?.(c.id);
      }
      if (Object.keys(sizes).length) {
        setMeasured((m) => (Object.entries(sizes).every(([id, d]) => m[id]?.width === d.width && m[id]?.height === d.height) ? m : { ...m, ...sizes }));
      }
    },
    [nodes, setPosition, props],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      for (const c of changes) {
        if (c.type !== 'remove' || !props.editable) continue;
        const [from, to] = c.id.split('->');
        if (from && to) props.onDisconnect?.(from, to);
      }
    },
    [props],
  );
  const onConnect = useCallback((c: Connection) => props.onConnect?.(c.source, c.target), [props]);
  const onDrop = useCallback(
    (e: DragEvent) => {
      if (!e.dataTransfer.types.includes('application/x-ai-sandbox-step')) return;
      e.preventDefault();
      props.onDropStep?.(flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
    },
    [flow, props],
  );

  if (graph.syntaxError && !graph.steps.length) return <div className="empty error">The file does not parse as YAML: {graph.syntaxError}</div>;
  return (
    <ReactFlow
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      onNodesChange={onNodesChange}
      onEdgesChange={onEdgesChange}
      onConnect={onConnect}
      onPaneClick={() => props.onSelect(null)}
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
      }}
      onDrop={onDrop}
      nodesDraggable
      nodesConnectable={props.editable}
      elementsSelectable
      deleteKeyCode={props.editable ? ['Delete', 'Backspace'] : null}
      fitView
      minZoom={0.1}
      proOptions={{ hideAttribution: true }}
    >
      {nodes.length <= MINIMAP_MAX_NODES && <Background />}
      <Controls />
      <DetailLevel big={nodes.length > MINIMAP_MAX_NODES} />
      {/* the dot grid and the minimap repaint on every pan: worth it for small graphs only */}
      {nodes.length <= MINIMAP_MAX_NODES && <MiniMap pannable zoomable />}
    </ReactFlow>
  );
}

function sameData(a: StepFlowNode['data'], b: StepFlowNode['data']): boolean {
  return a.name === b.name && a.command === b.command && a.error === b.error && a.status === b.status && a.durationMs === b.durationMs && a.attempts === b.attempts && a.selected === b.selected;
}

const RANK: Record<string, number> = { failed: 9, running: 8, retrying: 7, cancelled: 6, interrupted: 6, queued: 3, waiting: 3, skipped: 2, restored: 1, succeeded: 0 };
function rank(s: string): number {
  return RANK[s] ?? 0;
}
