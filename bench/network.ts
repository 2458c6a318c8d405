/**
 * `network`: what networking costs, next to the same thing without it, in one run.
 *  1. Start: `true` in a sandbox with no network vs with `--allow-port 443` (a namespace + veth from the
 *     pool), alternating, through the helper API; request→execve (the helper's startMs) and end to end.
 *     Before every start the benchmark waits until the pools are refilled, as a steady stream of sandboxes would.
 *  2. Proxy: a local upstream (keep-alive HTTP on 127.0.0.1, a process of its own) fetched directly and through a sandbox's
 *     auditing proxy (its gateway :3128, the address HTTP_PROXY points at), from this process, with a
 *     keep-alive client in both cases: per-request latency of a small response, and throughput of a
 *     large one. The difference is the proxy's cost (parsing, policy, audit, the extra hop).
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { HelperClient } from '../privileged-helper/src/protocol/client.js';
import type { ExitReport, SandboxSpecInput } from '../privileged-helper/src/protocol/schema.js';
import { Aborted, type BenchContext, type BenchResult } from './harness.js';
import { startPrivateHelper, withTimeout } from './private-helper.js';
import { fmt, nowMs, round3, roundSummary, summarize, type TargetCheck } from './stats.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startOnce(client: HelperClient, spec: SandboxSpecInput): Promise<{ e2eMs: number; execMs: number }> {
  const t0 = nowMs();
  const res = await withTimeout(client.call('sandbox.create', { spec, attach: true, autoRemove: true }), 15_000, 'sandbox.create');
  const report = await withTimeout(
    new Promise<{ e2eMs: number; report: ExitReport | null }>((resolve) => {
      let exit: { e2eMs: number; report: ExitReport } | null = null;
      client.onStream(res.stream!, (f) => {
        if (f.event?.type === 'exit') exit = { e2eMs: nowMs() - t0, report: f.event.report };
        else if (f.event?.type === 'end') resolve(exit ?? { e2eMs: Number.NaN, report: null });
      });
    }),
    15_000,
    `sandbox ${res.name}`,
  );
  if (!report.report || report.report.exitCode !== 0) throw new Error(`sandbox ${res.name}: ${JSON.stringify(report.report)}`);
  // wait for the teardown (unmeasured) so it does not overlap the next start
  for (const deadline = nowMs() + 15_000; ; ) {
    const { sandboxes } = await client.call('sandbox.list', {});
    if (!sandboxes.some((s) => s.name === res.name) || nowMs() > deadline) break;
    await sleep(1);
  }
  return { e2eMs: report.e2eMs, execMs: report.report.startMs };
}

function get(agent: http.Agent, opts: { host: string; port: number; path: string }): Promise<{ ms: number; bytes: number }> {
  const t0 = nowMs();
  return new Promise((resolve, reject) => {
    const req = http.request({ ...opts, agent, headers: { host: 'bench.test' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve({ ms: nowMs() - t0, bytes }) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A download on a fresh connection with a hand-written GET and the response counted by hand
 * (Content-Length framing), either straight to `to` or through a CONNECT tunnel of the proxy at `to`
 * (what HTTPS through HTTPS_PROXY uses): the same client work both ways, so the ratio is the tunnel's.
 */
function getRaw(to: { host: string; port: number }, path: string, tunnel: boolean): Promise<{ ms: number; bytes: number }> {
  const t0 = nowMs();
  return new Promise((resolve, reject) => {
    const sock = net.connect(to.port, to.host);
    sock.once('error', reject);
    let head = Buffer.alloc(0);
    let phase: 'connect' | 'response' | 'body' = tunnel ? 'connect' : 'response';
    let want = 0;
    let bytes = 0;
    sock.on('data', (c: Buffer) => {
      if (phase === 'body') {
        bytes += c.length;
      } else {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        const rest = head.subarray(end + 4);
        head = Buffer.alloc(0);
        if (!/^HTTP\/1\.1 200 /.test(text)) {
          sock.destroy();
          reject(new Error(`${phase === 'connect' ? 'CONNECT' : 'GET'}: ${text.split('\r\n')[0]}`));
          return;
        }
        if (phase === 'connect') {
          phase = 'response';
          sock.write(`GET ${path} HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n`);
          return;
        }
        want = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? NaN);
        phase = 'body';
        bytes = rest.length;
      }
      if (bytes >= want) {
        sock.destroy();
        resolve({ ms: nowMs() - t0, bytes });
      }
    });
    sock.on('close', () => reject(new Error(`the connection closed after ${bytes} bytes`)));
    if (tunnel) sock.write('CONNECT bench.test:80 HTTP/1.1\r\nHost: bench.test:80\r\n\r\n');
    else sock.write(`GET ${path} HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n`);
  });
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const quick = ctx.options.quick;
  const runs = ctx.options.runs ?? (quick ? 10 : 100);
  const problems: string[] = [];
  const ph = await startPrivateHelper(ctx);
  const client = ph.client;
  const bigBytes = quick ? 8 << 20 : 64 << 20;
  const upstream = fork(fileURLToPath(new URL('./http-upstream.ts', import.meta.url)), [String(bigBytes)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const unregister = ctx.onCleanup(() => void upstream.kill());
  const upPort = await withTimeout(
    new Promise<number>((resolve, reject) => {
      upstream.once('message', (m: { port: number }) => resolve(m.port));
      upstream.once('exit', (code) => reject(new Error(`the benchmark's HTTP upstream exited (${code})`)));
    }),
    10_000,
    'the HTTP upstream',
  );
  try {
    // 1. start with and without a network slot
    ctx.log(`start: ${runs} runs each of true with no network and with --allow-port 443`);
    const plain = { command: ['/usr/bin/true'] };
    const networked = { command: ['/usr/bin/true'], network: { allowPorts: [{ port: 443 }] } };
    await startOnce(client, plain);
    await startOnce(client, networked);
    const none: Array<{ e2eMs: number; execMs: number }> = [];
    const withNet: Array<{ e2eMs: number; execMs: number }> = [];
    for (let i = 0; i < runs; i++) {
      if (ctx.aborted) throw new Aborted();
      // before every start, networked or not: after a sandbox the pools (network slots, the launcher's
      // warm slots and namespaces) refill in the background in ~10-20 ms, and that work must not fall
      // on the next measured start (it did when the pair ran back to back: one kind paid for the other)
      const pair = i % 2 ? [plain, networked] : [networked, plain];
      for (const spec of pair) {
        await sleep(40);
        (spec === plain ? none : withNet).push(await startOnce(client, spec));
      }
    }
    const sNone = summarize(none.map((s) => s.e2eMs));
    const sNet = summarize(withNet.map((s) => s.e2eMs));
    const xNone = summarize(none.map((s) => s.execMs));
    const xNet = summarize(withNet.map((s) => s.execMs));

    // 2. proxy vs direct
    const sb = await client.call('sandbox.create', {
      spec: { command: ['/usr/bin/sleep', 'infinity'], network: { allowDomains: ['bench.test'], resolve: [{ name: 'bench.test', address: '127.0.0.1', port: upPort }] } },
      autoRemove: true,
    });
    ctx.onCleanup(() => void client.call('sandbox.remove', { name: sb.name, force: true }).catch(() => undefined));
    const info = await client.call('sandbox.inspect', { name: sb.name });
    const gw = info.network!.gateway;
    const direct = { host: '127.0.0.1', port: upPort };
    const viaProxy = { host: gw, port: 3128 };
    const agentD = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const agentP = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const reqs = quick ? 200 : 2000;
    ctx.log(`proxy: ${reqs} small requests each, direct and through the proxy (alternating)`);
    const latD: number[] = [];
    const latP: number[] = [];
    for (let i = 0; i < 50; i++) {
      await get(agentD, { ...direct, path: '/small' });
      await get(agentP, { ...viaProxy, path: 'http://bench.test/small' });
    }
    for (let i = 0; i < reqs; i++) {
      if (ctx.aborted) throw new Aborted();
      latD.push((await get(agentD, { ...direct, path: '/small' })).ms);
      latP.push((await get(agentP, { ...viaProxy, path: 'http://bench.test/small' })).ms);
    }
    const bigRuns = quick ? 3 : 10;
    ctx.log(`proxy: ${bigRuns} downloads each of ${bigBytes >> 20} MiB`);
    const tputD: number[] = [];
    const tputP: number[] = [];
    const tputC: number[] = [];
    const tputR: number[] = [];
    await get(agentD, { ...direct, path: '/big' }); // warm-up, unmeasured
    await get(agentP, { ...viaProxy, path: 'http://bench.test/big' });
    await getRaw(viaProxy, '/big', true);
    await getRaw(direct, '/big', false);
    for (let i = 0; i < bigRuns; i++) {
      // the order alternates, so neither path always follows the other's TCP and cache state
      const d = i % 2 ? await get(agentD, { ...direct, path: '/big' }) : null;
      const p = await get(agentP, { ...viaProxy, path: 'http://bench.test/big' });
      const t = await getRaw(viaProxy, '/big', true);
      const r = await getRaw(direct, '/big', false);
      const dd = d ?? (await get(agentD, { ...direct, path: '/big' }));
      if ([dd, p, t, r].some((x) => x.bytes !== bigBytes)) problems.push(`a download came back short (${[dd, p, t, r].map((x) => x.bytes).join(', ')} of ${bigBytes})`);
      tputD.push(dd.bytes / 1e6 / (dd.ms / 1000));
      tputP.push(p.bytes / 1e6 / (p.ms / 1000));
      tputC.push(t.bytes / 1e6 / (t.ms / 1000));
      tputR.push(r.bytes / 1e6 / (r.ms / 1000));
    }
    agentD.destroy();
    agentP.destroy();
    const audit = await client.call('audit.list', { sandbox: sb.name });
    if (audit.events.length < reqs) problems.push(`the proxy audited ${audit.events.length} of ${reqs + 50 + bigRuns} requests`);
    await client.call('sandbox.remove', { name: sb.name, force: true });

    const lD = summarize(latD);
    const lP = summarize(latP);
    const tD = summarize(tputD);
    const tP = summarize(tputP);
    const tC = summarize(tputC);
    const tR = summarize(tputR);
    const addedStart = sNet.p50 - sNone.p50;
    const addedReq = lP.p50 - lD.p50;
    const keep = tP.p50 / tD.p50;
    const targets: TargetCheck[] = [
      { what: 'networked start (pool) adds, p50 end to end', target: '≤ 1 ms', actual: `${fmt(addedStart)} ms (${fmt(sNet.p50)} vs ${fmt(sNone.p50)}; request→execve ${fmt(xNet.p50 - xNone.p50)} ms)`, met: addedStart <= 1 },
      { what: 'proxy adds per request, p50', target: '≤ 1 ms', actual: `${fmt(addedReq, 3)} ms (${fmt(lP.p50, 3)} vs ${fmt(lD.p50, 3)})`, met: addedReq <= 1 },
      { what: 'proxy throughput vs direct', target: '≥ 50%', actual: `${fmt(keep * 100, 0)}% (${fmt(tP.p50, 0)} vs ${fmt(tD.p50, 0)} MB/s)`, met: keep >= 0.5 },
      { what: 'CONNECT tunnel throughput vs direct (raw client)', target: '≥ 50%', actual: `${fmt((tC.p50 / tR.p50) * 100, 0)}% (${fmt(tC.p50, 0)} vs ${fmt(tR.p50, 0)} MB/s)`, met: tC.p50 / tR.p50 >= 0.5 },
    ];
    return {
      tables: [
        {
          title: `Sandbox start, true, ${runs} runs each, ms`,
          columns: [{ header: 'network', align: 'left' }, { header: 'e2e p50' }, { header: 'e2e p90' }, { header: 'request→execve p50' }, { header: 'p90' }],
          rows: [
            ['none (loopback only)', fmt(sNone.p50), fmt(sNone.p90), fmt(xNone.p50), fmt(xNone.p90)],
            ['--allow-port 443 (pool)', fmt(sNet.p50), fmt(sNet.p90), fmt(xNet.p50), fmt(xNet.p90)],
          ],
        },
        {
          title: 'HTTP through the auditing proxy vs direct, same upstream, keep-alive client',
          columns: [{ header: 'path', align: 'left' }, { header: 'latency p50 ms' }, { header: 'p90 ms' }, { header: `${bigBytes >> 20} MiB MB/s p50` }],
          rows: [
            ['direct', fmt(lD.p50, 3), fmt(lD.p90, 3), fmt(tD.p50, 0)],
            ['proxy', fmt(lP.p50, 3), fmt(lP.p90, 3), fmt(tP.p50, 0)],
            ['direct, raw client (a connection per download)', '', '', fmt(tR.p50, 0)],
            ['proxy, CONNECT tunnel, raw client (a tunnel per download)', '', '', fmt(tC.p50, 0)],
          ],
        },
      ],
      targets,
      data: {
        start: { none: { e2eMs: roundSummary(sNone), execMs: roundSummary(xNone) }, networked: { e2eMs: roundSummary(sNet), execMs: roundSummary(xNet) }, addedP50Ms: round3(addedStart) },
        proxy: {
          latencyMs: { direct: roundSummary(lD), proxy: roundSummary(lP) },
          throughputMBps: { direct: roundSummary(tD), proxy: roundSummary(tP), directRaw: roundSummary(tR), connectTunnel: roundSummary(tC) },
          addedP50Ms: round3(addedReq),
          throughputRatio: round3(keep),
        },
      },
      problems,
    };
  } finally {
    upstream.kill();
    unregister();
    await ph.cleanup();
  }
}
