import { describe, expect, it } from 'vitest';
import type { StreamFrame } from '../protocol/schema.js';
import { PTY_HIGH_WATER, Terminals, type Pty, type SpawnPty } from './terminals.js';

function fakePty() {
  const calls: string[] = [];
  let onData: (d: string) => void = () => {};
  let onExit: (e: { exitCode: number }) => void = () => {};
  const pty: Pty = {
    onData: (fn) => ((onData = fn), { dispose() {} }),
    onExit: (fn) => ((onExit = fn), { dispose() {} }),
    write: (d) => calls.push(`write ${d}`),
    resize: (c, r) => calls.push(`resize ${c}x${r}`),
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
    kill: (s) => calls.push(`kill ${s}`),
  };
  return { pty, calls, emit: (d: string) => onData(d), exit: (code: number) => onExit({ exitCode: code }) };
}

describe('Terminals', () => {
  it('runs `ai-sandbox exec -it NAME -- /bin/sh` in a pty, one argv element per word', async () => {
    const f = fakePty();
    let argv: string[] = [];
    const spawn: SpawnPty = (_file, args, opts) => ((argv = args), expect(opts).toMatchObject({ rows: 24, cols: 80 }), f.pty);
    const t = new Terminals(async () => spawn, () => {}, {});
    const { terminal } = await t.open('box-1', 24, 80);
    expect(argv.slice(1)).toEqual(['exec', '-it', 'box-1', '--', '/bin/sh', '-i']);
    t.write(terminal, 'ls\r');
    t.resize(terminal, 30, 100);
    t.close(terminal);
    expect(f.calls).toEqual(['write ls\r', 'resize 100x30', 'kill SIGHUP']);
  });

  it('pauses the shell past the window of unacknowledged output and resumes when the app catches up', async () => {
    const f = fakePty();
    const frames: StreamFrame[] = [];
    const t = new Terminals(async () => () => f.pty, (fr) => frames.push(fr), {});
    const { stream } = await t.open('box', 24, 80);
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i * chunk.length <= PTY_HIGH_WATER; i++) f.emit(chunk);
    expect(f.calls).toEqual(['pause']);
    t.ack(stream, frames.at(-1)!.seq);
    expect(f.calls).toEqual(['pause', 'resume']);
    f.exit(0);
    expect(frames.slice(-2).map((fr) => fr.event?.type)).toEqual(['exit', 'end']);
    expect(t.owns(stream)).toBe(false);
    expect(() => t.write(stream, 'x')).toThrow(/no terminal/);
  });
});
