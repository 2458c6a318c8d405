/**
 * The sandbox lifecycle in one table: which status each action may start from, and where it leads.
 * Everything that changes a sandbox's status goes through `transition`, so an impossible move is a
 * typed INVALID_STATE error with words a user understands, never a silent corruption.
 */
import { AppError } from '../errors/app-error.js';
import type { SandboxStatus } from '../protocol/schema.js';

export type SandboxAction = 'started' | 'exit' | 'stop' | 'exec' | 'pause' | 'resume' | 'checkpoint' | 'checkpointed' | 'remove';

/** action → [allowed from, leads to (undefined: status unchanged)]; a sandbox is born `creating` */
export const TRANSITIONS: Record<SandboxAction, [readonly SandboxStatus[], SandboxStatus | undefined]> = {
  started: [['creating'], 'running'],
  exit: [['creating', 'running', 'paused', 'checkpointing'], 'stopped'],
  stop: [['creating', 'running', 'paused', 'checkpointing'], undefined],
  exec: [['running'], undefined],
  pause: [['running'], 'paused'],
  resume: [['paused'], 'running'],
  checkpoint: [['running'], 'checkpointing'],
  checkpointed: [['checkpointing'], 'running'],
  remove: [['stopped'], undefined],
};

export function requireStatus(name: string, status: SandboxStatus, action: SandboxAction, ...allowed: SandboxStatus[]): void {
  const from = allowed.length > 0 ? allowed : TRANSITIONS[action][0];
  if (!from.includes(status)) {
    throw new AppError('INVALID_STATE', `cannot ${action} sandbox "${name}" in state ${status}`, {
      details: { name, status, action, allowed: [...from] },
    });
  }
}

/** Check the move is allowed and return the status it leads to. */
export function transition(name: string, status: SandboxStatus, action: SandboxAction): SandboxStatus {
  requireStatus(name, status, action);
  return TRANSITIONS[action][1] ?? status;
}
