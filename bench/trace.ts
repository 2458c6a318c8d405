/**
 * `npm run bench -- trace`: what a syscall trace costs and delivers, in one run.
 * - per-syscall cost of a getpid loop: in a sandbox untraced, in a sandbox traced (trace: true), and on the
 *   host bare and under `strace -f` (strace cannot run inside a sandbox: no ptrace there), interleaved;
 * - events per second delivered to a subscriber (records format, decoded by the client) and the drops;
 * - tracer attach time (first traced sandbox) and sandbox add time (tracer already attached);
 * - approval round trip: a loop of connects under `approvals: {ask: [connect]}` after the first one was
 *   approved --always (so each call goes kernel -> supervisor -> kernel, no person), minus the same loop
 *   without approvals; and one call's notification-to-answer time as the supervisor measured it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HelperClient } from '../privileged-helper/src/protocol/client.js';
import { decodeRecords } from '../privileged-helper/src/trace/records.js';
import { Aborted, type BenchContext, type BenchResult } from './harness.js';
import { startPrivateHelper } from './private-helper.js';
import { fmt, median, nowMs, type TargetCheck } from './stats.js';

const BUILD = fileURLToPath(new URL('../privileged-helper/native/build', import.meta.url));
const LOOP_HOST = path.join(BUILD, 'tracer-test-loop');
const LOOP = '/opt/t/tracer-test-loop';
const mounts = [{ source: BUILD, target: '/opt/t', readOnly: true }];

async function sandboxOutput(client: HelperClient, spec: Record<string, unknown>): Promise<string> {
  const r = await client.call('sandbox.create', { spec: spec as never, attach: true, autoRemove: true });
  let out = '';
  await new Promise<void>((resolve) =>
    client.onStream(r.stream!, (f) => {
      if (f.kind === 'stdout') out += Buffer.from(f.data ?? '', 'base64').toString();
      if (f.event?.type === 'end') resolve();
    }),
  );
  return out;
}

async function nsPerCall(client: HelperClient, n: number, trace: boolean, name: string): Promise<number> {
  const out = await sandboxOutput(client, { name, command: [LOOP, 'timed', String(n)], mounts, ...(trace && { trace: true }) });
  const v = Number(out.trim());
  if (!Number.isFinite(v) || v <= 0) throw new Error(`loop printed "${out.trim()}"`);
  return v;
}

function hostNsPerCall(n: number, strace: boolean): number {
  const argv = strace ? ['strace', '-f', '-qq', '-o', '/dev/null', LOOP_HOST, 'timed', String(n)] : [LOOP_HOST, 'timed', String(n)];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status} ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Run a traced getpid loop and subscribe to it; events/s between the first and the last batch. */
async function delivery(client: HelperClient, n: number, name: string) {
  await client.call('sandbox.create', { spec: { name, command: [LOOP, 'getpid', String(n)], mounts, trace: { syscalls: ['getpid'] } } });
  const sub = await client.call('trace.subscribe', { sandbox: name, follow: true, format: 'records' });
  const offset = BigInt(sub.wallOffsetNs);
  let first = 0;
  let last = 0;
  let decoded = 0;
  const counters = await new Promise<{ emitted: number; kernelDropped: number; rateLimited: number; streamDropped: number; delivered: number }>((resolve) => {
    let c: { emitted: number; kernelDropped: number; rateLimited: number; streamDropped: number; delivered: number } | null = null;
    client.onStream(sub.stream, (f) => {
      if (f.kind === 'trace' && f.trace?.records) {
        const now = nowMs();
        if (!first) first = now;
        last = now;
        decoded += decodeRecords(Buffer.from(f.trace.records, 'base64'), name, offset).length;
      } else if (f.event?.type === 'trace-counters') c = f.event.counters;
      else if (f.event?.type === 'end') resolve(c!);
    });
  });
  await client.call('sandbox.remove', { name, force: true }).catch(() => undefined);
  const seconds = (last - first) / 1000;
  return { decoded, counters, eventsPerSecond: seconds > 0 ? decoded / seconds : 0, seconds };
}

/** ns per connect in a sandbox, with or without an ask on connect (approved always at the first call) */
async function connectNs(client: HelperClient, n: number, ask: boolean, name: string): Promise<{ ns: number; firstUs: number | null }> {
  const spec = { name, command: [LOOP, 'connectn', String(n), '9'], mounts, ...(ask && { approvals: { ask: ['connect'], timeoutMs: 20_000 } }) };
  const r = await client.call('sandbox.create', { spec: spec as never, attach: true, autoRemove: true });
  let out = '';
  let firstUs: number | null = null;
  const done = new Promise<void>((resolve) =>
    client.onStream(r.stream!, (f) => {
      if (f.kind === 'stdout') out += Buffer.from(f.data ?? '', 'base64').toString();
      if (f.event?.type === 'end') resolve();
    }),
  );
  if (ask) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const a = (await client.call('approvals.list', {})).approvals.find((x) => x.sandbox === name && x.status === 'pending');
      if (a) {
        const d = await client.call('approvals.decide', { id: a.id, allow: true, always: true });
        firstUs = d.roundTripUs ?? null;
        break;
      }
      if (Date.now() > deadline) throw new Error('no approval request');
      await new Promise((res) => setTimeout(res, 2));
    }
  }
  await done;
  const ns = Number(out.trim());
  if (!Number.isFinite(ns) || ns <= 0) throw new Error(`connectn printed "${out.trim()}"`);
  return { ns, firstUs };
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const problems: string[] = [];
  if (!fs.existsSync(path.join(BUILD, 'ai-sandbox-tracer'))) throw new Error('the tracer is not built (needs clang, bpftool, libbpf-dev, kernel BTF): run npm run setup');
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    problems.push('strace is not installed (apt-get install strace): its row is missing');
  }
  const quick = ctx.options.quick;
  const rounds = ctx.options.runs ?? (quick ? 2 : 5);
  const nLoop = quick ? 200_000 : 1_000_000;
  const nStrace = quick ? 20_000 : 100_000;
  const nDeliver = quick ? 300_000 : 2_000_000;
  const ph = await startPrivateHelper(ctx);
  try {
    const { client } = ph;
    const status0 = await client.call('trace.status', {});
    if (!status0.supported) throw new Error(`tracing unsupported here: ${status0.reason}`);

    // attach: the first traced sandbox after none attaches; add: one more while attached
    const attachMs: number[] = [];
    const addMs: number[] = [];
    for (let i = 0; i < (quick ? 3 : 10); i++) {
      if (ctx.aborted) throw new Aborted();
      await client.call('sandbox.create', { spec: { name: `hold${i}`, command: ['/bin/sleep', '30'], trace: true } });
      const a = await client.call('trace.status', {});
      if (a.lastAttachMs !== null) attachMs.push(a.lastAttachMs);
      await client.call('sandbox.create', { spec: { name: `add${i}`, command: ['/bin/sleep', '30'], trace: true } });
      const b = await client.call('trace.status', {});
      if (b.lastAddMs !== null) addMs.push(b.lastAddMs);
      await client.call('sandbox.remove', { name: `add${i}`, force: true });
      await client.call('sandbox.remove', { name: `hold${i}`, force: true });
      const after = await client.call('trace.status', {});
      if (after.attached) problems.push('the tracer stayed attached with no traced sandbox');
    }

    const rows: Record<string, number[]> = { untraced: [], traced: [], host: [], strace: [] };
    for (let r = 0; r < rounds; r++) {
      if (ctx.aborted) throw new Aborted();
      ctx.log(`round ${r + 1}/${rounds}`);
      const order = ['untraced', 'traced', 'host', 'strace'];
      for (let k = 0; k < order.length; k++) {
        const m = order[(k + r) % order.length]!;
        if (m === 'untraced') rows.untraced!.push(await nsPerCall(client, nLoop, false, `u${r}`));
        else if (m === 'traced') rows.traced!.push(await nsPerCall(client, nLoop, true, `t${r}`));
        else if (m === 'host') rows.host!.push(hostNsPerCall(nLoop, false));
        else if (!problems.some((p) => p.startsWith('strace'))) rows.strace!.push(hostNsPerCall(nStrace, true));
      }
    }
    const med = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, v.length ? median(v) : NaN])) as Record<string, number>;
    ctx.log('approvals');
    const nConn = quick ? 2000 : 20_000;
    const plainConn: number[] = [];
    const askConn: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (ctx.aborted) throw new Aborted();
      plainConn.push((await connectNs(client, nConn, false, `c${r}`)).ns);
      askConn.push((await connectNs(client, nConn, true, `a${r}`)).ns);
    }
    const approvalRtUs = (median(askConn) - median(plainConn)) / 1000;
    ctx.log('delivery');
    const d = await delivery(client, nDeliver, 'deliver');
    const dropped = d.counters.kernelDropped + d.counters.rateLimited + d.counters.streamDropped;
    const sumOk = d.counters.emitted + d.counters.kernelDropped + d.counters.rateLimited === nDeliver && d.decoded + d.counters.streamDropped === d.counters.emitted;
    if (!sumOk) problems.push(`delivery accounting does not add up: ${JSON.stringify(d.counters)} decoded ${d.decoded} of ${nDeliver}`);

    const tracedOverhead = med.traced! - med.untraced!;
    const straceOverhead = med.strace! - med.host!;
    const attach = attachMs.length ? median(attachMs) : NaN;
    const add = addMs.length ? median(addMs) : NaN;
    const targets: TargetCheck[] = [
      { what: 'events delivered to a subscriber, 0 drops', target: '≥ 1M/s', actual: `${fmt(d.eventsPerSecond / 1e6, 2)}M/s, ${dropped} dropped`, met: d.eventsPerSecond >= 1e6 && dropped === 0 },
      { what: 'traced getpid, per syscall', target: '≤ 1 µs', actual: `${fmt(med.traced! / 1000, 3)} µs`, met: med.traced! <= 1000 },
      { what: 'strace -f / traced, per syscall', target: '≥ 15×', actual: `${fmt(med.strace! / med.traced!, 1)}×`, met: med.strace! / med.traced! >= 15 },
      { what: 'tracer attach', target: '≤ 20 ms', actual: `${fmt(attach, 3)} ms`, met: attach <= 20 },
      { what: 'sandbox add (attached)', target: '≤ 1 ms', actual: `${fmt(add, 3)} ms`, met: add <= 1 },
      { what: 'approval round trip (kernel → supervisor → kernel)', target: '≤ 50 µs', actual: `${fmt(approvalRtUs, 1)} µs`, met: approvalRtUs <= 50 },
    ];
    return {
      tables: [
        {
          title: `getpid loop, ns per syscall (median of ${rounds} interleaved rounds)`,
          columns: [{ header: 'where', align: 'left' }, { header: 'calls' }, { header: 'ns/call' }, { header: 'overhead ns' }],
          rows: [
            ['sandbox, untraced', String(nLoop), fmt(med.untraced!, 1), '-'],
            ['sandbox, traced (trace: true)', String(nLoop), fmt(med.traced!, 1), fmt(tracedOverhead, 1)],
            ['host, bare', String(nLoop), fmt(med.host!, 1), '-'],
            ['host, strace -f -o /dev/null', String(nStrace), fmt(med.strace!, 1), fmt(straceOverhead, 1)],
          ],
          notes: [
            `strace's overhead is ${fmt(straceOverhead / tracedOverhead, 0)}× the tracer's; its per-call cost ${fmt(med.strace! / med.traced!, 1)}× the traced one`,
            'the sandbox rows include the seccomp allowlist (~35-40 ns); while attached every host process also pays ~a hash lookup per syscall',
          ],
        },
        {
          title: 'Delivery and setup',
          columns: [{ header: 'what', align: 'left' }, { header: 'value' }],
          rows: [
            [`${nDeliver} getpid traced, subscriber (records, decoded)`, `${fmt(d.eventsPerSecond / 1e6, 2)}M events/s over ${fmt(d.seconds, 2)} s`],
            ['recorded / kernel-dropped / rate-limited / stream-dropped', `${d.counters.emitted} / ${d.counters.kernelDropped} / ${d.counters.rateLimited} / ${d.counters.streamDropped}`],
            ['tracer attach (median)', `${fmt(attach, 3)} ms (n=${attachMs.length})`],
            ['sandbox add while attached (median)', `${fmt(add, 3)} ms (n=${addMs.length})`],
            [`approval round trip: connect ×${nConn} under ask (approved --always) minus without`, `${fmt(approvalRtUs, 1)} µs per call (${fmt(median(askConn) / 1000, 1)} vs ${fmt(median(plainConn) / 1000, 1)} µs)`],
          ],
        },
      ],
      targets,
      data: { nsPerCall: med, rounds: rows, delivery: d, attachMs, addMs, approvalRoundTripUs: approvalRtUs, connectNs: { plain: plainConn, ask: askConn } },
      problems,
    };
  } finally {
    await ph.cleanup();
  }
}
