import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { requireStatus, transition } from './lifecycle.js';

describe('sandbox lifecycle', () => {
  it('moves through the normal path', () => {
    expect(transition('a', 'creating', 'started')).toBe('running');
    expect(transition('a', 'running', 'checkpoint')).toBe('checkpointing');
    expect(transition('a', 'checkpointing', 'checkpointed')).toBe('running');
    expect(transition('a', 'running', 'exit')).toBe('stopped');
    expect(transition('a', 'running', 'exec')).toBe('running');
  });

  it('names the sandbox, action and state when a move is impossible', () => {
    try {
      transition('x', 'stopped', 'checkpoint');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('INVALID_STATE');
      expect((err as AppError).message).toBe('cannot checkpoint sandbox "x" in state stopped');
    }
    expect(() => requireStatus('y', 'running', 'remove')).toThrow('cannot remove sandbox "y" in state running');
  });
});
