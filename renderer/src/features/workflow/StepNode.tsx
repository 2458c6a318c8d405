import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';
import { memo } from 'react';

export interface StepNodeData extends Record<string, unknown> {
  name: string;
  command: string;
  error: string | null;
  status: string | null;
  durationMs: number | null;
  attempts: number;
  selected: boolean;
}
export type StepFlowNode = Node<StepNodeData, 'step'>;

function duration(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One step on the canvas: name, command, and either its validation error or its live run status. */
export const StepNode = memo(function StepNode({ data }: NodeProps<StepFlowNode>) {
  const cls = ['step-node', data.selected ? 'selected' : '', data.error ? 'invalid' : '', data.status ? `st-${data.status}` : ''].join(' ');
  return (
    <div className={cls} data-testid={`step-${data.name}`} data-status={data.status ?? ''}>
      <Handle type="target" position={Position.Left} data-testid={`in-${data.name}`} />
      <div className="title">{data.name}</div>
      <div className="cmd" title={data.command}>
        {data.command || '(no command)'}
      </div>
      {data.status && (
        <div>
          <span className={`badge st-${data.status}`} data-testid={`status-${data.name}`}>
            {data.status}
          </span>{' '}
          {duration(data.durationMs)}
          {data.attempts > 1 ? ` · attempt ${data.attempts}` : ''}
        </div>
      )}
      {data.error && <div className="node-error">{data.error}</div>}
      <Handle type="source" position={Position.Right} data-testid={`out-${data.name}`} />
    </div>
  );
});

export const nodeTypes = { step: StepNode };
