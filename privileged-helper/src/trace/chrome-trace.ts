/**
 * Export stored traces to the Chrome Trace Event Format (JSON object form), which Perfetto UI and
 * chrome://tracing open: one process per sandbox (pid = the sandbox's host pids, named after it), one
 * complete event ('X') per syscall with its decoded arguments, instant events ('i') for calls that do not
 * return, and counter events ('C') with the sandbox's drop counters, so missing data is visible in the
 * viewer too. Produced as text pieces so a large trace streams instead of sitting in memory.
 */
import { decodeRecords, formatAddr, type TraceEvent } from './records.js';
import { readChunks, readMeta, type TraceMeta } from './store.js';

export interface ChromeTraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'i' | 'M' | 'C';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

function argsOf(e: TraceEvent): Record<string, unknown> {
  const a: Record<string, unknown> = { ret: e.ret };
  if (e.errno) a.errno = e.errno;
  if (e.path !== undefined) a.path = e.path;
  if (e.addr) a.addr = formatAddr(e.addr);
  if (e.fd !== undefined) a.fd = e.fd;
  if (e.flags) a.flags = e.flags;
  return a;
}

export function chromeEvent(e: TraceEvent): ChromeTraceEvent {
  if (e.noExit) return { name: e.syscall, cat: 'syscall', ph: 'i', s: 't', ts: e.tsUs, pid: e.pid, tid: e.tid, args: argsOf(e) };
  return { name: e.syscall, cat: 'syscall', ph: 'X', ts: e.tsUs, dur: e.durNs / 1000, pid: e.pid, tid: e.tid, args: argsOf(e) };
}

/** The export of the traces in `dirs` (one per sandbox), as JSON text pieces. */
export function* chromeTrace(dirs: string[]): Generator<string> {
  yield '{"displayTimeUnit":"ns","otherData":{"producer":"ai-sandbox"},"traceEvents":[\n';
  let first = true;
  const emit = (ev: ChromeTraceEvent): string => {
    const s = (first ? '' : ',\n') + JSON.stringify(ev);
    first = false;
    return s;
  };
  for (const dir of dirs) {
    const meta: TraceMeta = readMeta(dir);
    const offset = BigInt(meta.wallOffsetNs);
    const named = new Set<number>();
    let lastTs = 0;
    let batch: string[] = [];
    for (const chunk of readChunks(dir)) {
      for (const e of decodeRecords(chunk, meta.sandbox, offset)) {
        if (!named.has(e.pid)) {
          named.add(e.pid);
          batch.push(emit({ name: 'process_name', ph: 'M', ts: 0, pid: e.pid, tid: e.pid, args: { name: `${meta.sandbox} (pid ${e.pid})` } }));
        }
        batch.push(emit(chromeEvent(e)));
        lastTs = Math.max(lastTs, e.tsUs);
      }
      yield batch.join('');
      batch = [];
    }
    if (meta.counters && named.size > 0) {
      const c = meta.counters;
      const pid = [...named][0]!;
      yield emit({ name: 'trace drops', ph: 'C', ts: lastTs, pid, tid: pid, args: { kernelDropped: c.kernelDropped, rateLimited: c.rateLimited, storeDropped: c.storeDropped } });
    }
  }
  yield '\n]}\n';
}
