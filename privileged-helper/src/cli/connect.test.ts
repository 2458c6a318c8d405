import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { connectDaemon } from './connect.js';

describe('connectDaemon', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'connect-'));
  const saved = process.env.AI_SANDBOX_SOCKET;
  afterEach(() => {
    if (saved === undefined) delete process.env.AI_SANDBOX_SOCKET;
    else process.env.AI_SANDBOX_SOCKET = saved;
  });
  const failure = async (socket: string): Promise<AppError> => {
    process.env.AI_SANDBOX_SOCKET = socket;
    const err = await connectDaemon().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  };

  it('says no helper is running when nothing is at the socket path, and marks it so', async () => {
    const err = await failure(path.join(dir, 'absent.sock'));
    expect(err.code).toBe('HELPER_UNAVAILABLE');
    expect(err.message).toMatch(/no helper is running at .*absent\.sock \(ENOENT\)/);
    expect(err.details?.noHelper).toBe(true);
  });

  it('does not call a helper that hangs up on the hello "not running" (run must not embed beside it)', async () => {
    const sock = path.join(dir, 'rude.sock');
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const err = await failure(sock);
      expect(err.code).toBe('HELPER_UNAVAILABLE');
      expect(err.message).not.toMatch(/no helper is running/);
      expect(err.details?.noHelper).toBeUndefined();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
