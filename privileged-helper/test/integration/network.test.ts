/**
 * Networked sandboxes, for real: veth pairs from the pool, nftables egress rules, the auditing proxy.
 * Every address used is one the test's own helper allocated in its private range (10.232.0.0/16) or
 * loopback: nothing here routes to the outside.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HelperClient } from '../../src/protocol/client.js';
import type { NetworkPolicyInput, SandboxInfo } from '../../src/protocol/schema.js';
import { useHelper } from './fixture.js';
import { TestHelper } from './harness.js';

const PY = '/usr/bin/python3';

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Running {
  name: string;
  info: SandboxInfo;
  out: () => string;
  send: (line: string) => Promise<void>;
  done: Promise<string>;
}

/** A sandbox whose program waits for one line on stdin before it does anything (time to set up listeners). */
async function startGated(client: HelperClient, script: string, network: NetworkPolicyInput | undefined, allowListen = false): Promise<Running> {
  const res = await client.call('sandbox.create', {
    spec: { command: [PY, '-S', '-c', `import sys\nsys.stdin.readline()\n${script}`], allowListen, ...(network ? { network } : {}) },
    attach: true,
    stdin: true,
    autoRemove: true,
  });
  let out = '';
  const done = new Promise<string>((resolve) => {
    client.onStream(res.stream!, (f) => {
      if (f.kind === 'stdout' && f.data) out += Buffer.from(f.data, 'base64').toString();
      if (f.kind === 'stderr' && f.data) out += Buffer.from(f.data, 'base64').toString();
      if (f.event?.type === 'end') resolve(out);
    });
  });
  const info = await client.call('sandbox.inspect', { name: res.name });
  return {
    name: res.name,
    info,
    out: () => out,
    send: async (line) => void (await client.call('io.write', { target: { sandbox: res.name }, data: Buffer.from(`${line}\n`).toString('base64') })),
    done,
  };
}

function listen(host: string, port: number, reply: string): Promise<net.Server> {
  const srv = net.createServer((s) => s.end(reply));
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve(srv));
  });
}

/** a body far larger than the socket buffers between the proxy and a sandbox */
const BIG_BODY = Buffer.alloc(24 << 20, 0x61);

const CONNECT = `
import socket
def tryconnect(host, port):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); print(port, 'ok', s.recv(20).decode())
    except OSError as e:
        print(port, 'fail', type(e).__name__)
`;

describe('sandbox network', () => {
  let client: HelperClient;
  useHelper((_helper, cl) => {
    client = cl;
  });

  it('with no rule a sandbox has only lo; with --allow-port it gets eth0, an address and host.ai-sandbox.internal', async () => {
    const listIfs = 'import os\nprint(sorted(os.listdir("/sys/class/net")))\nprint(open("/etc/hosts").read())';
    const none = await startGated(client, listIfs, undefined);
    await none.send('go');
    expect(await none.done).toMatch(/^\['lo'\]/);
    expect(none.info.network).toBeNull();

    const sb = await startGated(client, listIfs, { allowPorts: [{ port: 9 }] });
    await sb.send('go');
    const out = await sb.done;
    expect(out).toMatch(/^\['eth0', 'lo'\]/);
    expect(sb.info.network).toMatchObject({ allowPorts: [{ port: 9, proto: 'tcp' }], proxy: null });
    expect(sb.info.network!.address).toMatch(/^10\.232\./);
    expect(out).toContain(`${sb.info.network!.gateway}\thost.ai-sandbox.internal`);
  });

  it('refuses a malformed network policy at the socket, naming the field', async () => {
    const bad = async (network: unknown) => {
      const err = (await client.call('sandbox.create', { spec: { command: ['true'], network } as never }).catch((e: Error) => e)) as Error & { code?: string };
      return `${err.code}: ${err.message}`;
    };
    expect(await bad({ allowPorts: [{ port: 0 }] })).toMatch(/^BAD_REQUEST: .*spec\.network\.allowPorts\.0\.port/);
    expect(await bad({ allowDomains: ['*'] })).toMatch(/^BAD_REQUEST: .*spec\.network\.allowDomains\.0: a domain pattern is/);
    expect(await bad({ allowDomains: ['a.test'], resolve: [{ name: 'a.test', address: '1.2.3' }] })).toMatch(/^BAD_REQUEST: .*resolve\.0\.address: an IPv4 address/);
    expect(await bad({ allowDomains: ['a.test'], proxyEverything: true })).toMatch(/^BAD_REQUEST: .*proxyEverything/);
  });

  it('--allow-port P1: a host-side listener on P1 answers, one on P2 does not, and the drop is counted', async () => {
    const p1 = 40000 + Math.floor(Math.random() * 10000);
    const p2 = p1 + 1;
    const sb = await startGated(client, `${CONNECT}\ntryconnect('host.ai-sandbox.internal', ${p1})\ntryconnect('host.ai-sandbox.internal', ${p2})\nsys.stdout.flush()\nsys.stdin.readline()`, {
      allowPorts: [{ port: p1 }],
    });
    const gw = sb.info.network!.gateway;
    const servers = await Promise.all([listen(gw, p1, 'one'), listen(gw, p2, 'two')]);
    try {
      await sb.send('go');
      await until(() => sb.out().includes(`${p2} `));
      const { droppedPackets } = await client.call('audit.list', { sandbox: sb.name });
      expect(droppedPackets).toBeGreaterThanOrEqual(1);
      await sb.send('end');
      const out = await sb.done;
      expect(out).toContain(`${p1} ok one`);
      expect(out).toMatch(new RegExp(`${p2} fail`));
      expect(out).not.toContain('two');
    } finally {
      for (const s of servers) s.close();
    }
  });

  it('--allow-port reaches the outside on that port (forwarded and masqueraded) and nothing else', async () => {
    // "the outside": a network namespace this test makes, linked to the host by a veth of its own
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aisb-outside-'));
    const ns = path.join(dir, 'ns');
    const port = 47000 + Math.floor(Math.random() * 1000);
    let server: import('node:child_process').ChildProcess | null = null;
    try {
      fs.writeFileSync(ns, '');
      execFileSync('unshare', [`--net=${ns}`, 'true']);
      execFileSync('ip', ['link', 'add', 'aistout0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      execFileSync('ip', ['addr', 'add', '10.233.0.1/30', 'dev', 'aistout0']);
      execFileSync('ip', ['link', 'set', 'aistout0', 'up']);
      // replies come back in on the uplink and are forwarded to the sandbox: forwarding on that uplink is
      // the host's decision (doctor says so); this test's uplink is its own veth
      fs.writeFileSync('/proc/sys/net/ipv4/conf/aistout0/forwarding', '1');
      execFileSync('nsenter', [`--net=${ns}`, 'sh', '-c', 'ip addr add 10.233.0.2/30 dev eth0 && ip link set eth0 up && ip link set lo up']);
      const listener = `import socket\ns = [socket.create_server(('10.233.0.2', p)) for p in (${port}, ${port + 1})]\nimport select\nwhile True:\n    r, _, _ = select.select(s, [], [])\n    for x in r:\n        c, a = x.accept(); c.sendall(('from ' + a[0]).encode()); c.close()\n`;
      server = spawn('nsenter', [`--net=${ns}`, '/usr/bin/python3', '-S', '-c', listener], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
      const sb = await startGated(client, `${CONNECT}\ntryconnect('10.233.0.2', ${port})\ntryconnect('10.233.0.2', ${port + 1})`, { allowPorts: [{ port }] });
      await sb.send('go');
      const out = await sb.done;
      expect(out).toContain(`${port} ok from 10.233.0.1`); // masqueraded: the outside sees the host's address
      expect(out).toMatch(new RegExp(`${port + 1} fail`));
    } finally {
      server?.kill('SIGKILL');
      execFileSync('ip', ['link', 'del', 'aistout0'], { stdio: 'ignore' });
      execFileSync('umount', [ns], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two networked sandboxes cannot reach each other', async () => {
    const port = 45999;
    const server = await startGated(
      client,
      `import socket\ns = socket.socket(); s.bind(('0.0.0.0', ${port})); s.listen(); s.settimeout(3)\ntry:\n    c, _ = s.accept(); print('accepted')\nexcept OSError:\n    print('nobody came')`,
      { allowPorts: [{ port }] },
      true,
    );
    const target = server.info.network!.address;
    const probe = await startGated(client, `${CONNECT}\ntryconnect('${target}', ${port})`, { allowPorts: [{ port }] });
    await server.send('go');
    await probe.send('go');
    expect(await probe.done).toMatch(new RegExp(`${port} fail`));
    expect(await server.done).toContain('nobody came');
  }, 20_000);
});

describe('auditing proxy', () => {
  let helper: TestHelper;
  let client: HelperClient;
  let upstream: http.Server;
  let tlsUpstream: tls.Server;
  let port = 0;
  let tlsPort = 0;
  beforeAll(async () => {
    helper = await TestHelper.start();
    client = await helper.client();
    upstream = http.createServer((req, res) => res.end(req.url === '/big' ? BIG_BODY : `hello from upstream ${req.headers.host} ${req.url}`));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    port = (upstream.address() as net.AddressInfo).port;
    const { key, cert } = selfSigned();
    tlsUpstream = tls.createServer({ key, cert }, (s) => s.end(`tls hello ${(s as tls.TLSSocket).servername}\n`));
    await new Promise<void>((r) => tlsUpstream.listen(0, '127.0.0.1', r));
    tlsPort = (tlsUpstream.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    upstream?.close();
    tlsUpstream?.close();
    client?.close();
    await helper?.destroy();
  });

  const policy = (): NetworkPolicyInput => ({
    allowDomains: ['allowed.test', '*.wild.test'],
    resolve: [
      { name: 'allowed.test', address: '127.0.0.1', port },
      { name: 'tls.wild.test', address: '127.0.0.1', port: tlsPort },
    ],
  });

  it('fetches an allowed name through HTTP_PROXY, gives 403 naming the rule for a blocked one, and audits both', async () => {
    const script = `
import urllib.request, urllib.error
print(urllib.request.urlopen('http://allowed.test/x?y=1', timeout=5).read().decode())
try:
    urllib.request.urlopen('http://blocked.test/secret', timeout=5)
except urllib.error.HTTPError as e:
    print('status', e.code, e.read().decode().strip())
`;
    const sb = await startGated(client, script, policy());
    expect(sb.info.network?.proxy).toMatch(/^http:\/\/10\.232\.\d+\.\d+:3128$/);
    await sb.send('go');
    const out = await sb.done;
    expect(out).toContain('hello from upstream allowed.test /x?y=1');
    expect(out).toContain('status 403 ai-sandbox: request to blocked.test blocked by rule "default deny"');
    const { events } = await client.call('audit.list', { sandbox: sb.name });
    expect(events.map((e) => [e.via, e.method, e.host, e.path, e.decision, e.rule, e.status])).toEqual([
      ['proxy', 'GET', 'allowed.test', '/x?y=1', 'allow', 'allow allowed.test', 200],
      ['proxy', 'GET', 'blocked.test', '/secret', 'deny', 'default deny', 403],
    ]);
    expect(events[0]!.bytesDown).toBeGreaterThan(20);
    // the refusal is also an anomaly event that names its rule
    const { anomalies } = await client.call('observe.anomalies', { sandbox: sb.name });
    expect(anomalies.map((a) => [a.rule, a.details.host])).toEqual([['blocked-domain', 'blocked.test']]);
  });

  it('a CONNECT tunnel delivers every byte of a large response whose server closes right after it', async () => {
    // The sandbox reads with a small buffer and stops 1 MiB before the end, so the tail waits in the proxy when the upstream
    // closes: the proxy must flush it before closing the sandbox's side (it destroyed it, cutting the tail).
    const script = `
import os, socket, time, urllib.parse
proxy = urllib.parse.urlparse(os.environ['HTTPS_PROXY'])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small buffers: the proxy has to queue
s.settimeout(10)
s.connect((proxy.hostname, proxy.port))
s.sendall(b'CONNECT allowed.test:443 HTTP/1.1\\r\\nHost: allowed.test:443\\r\\n\\r\\n')
print(s.recv(4096).decode().split('\\r\\n')[0])
s.sendall(b'GET /big HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: close\\r\\n\\r\\n')
chunks, got = [], 0
while got < ${BIG_BODY.length - (1 << 20)}:
    c = s.recv(1 << 16)
    if not c: break
    chunks.append(c); got += len(c)
time.sleep(1)  # the rest (and the upstream's close) reaches the proxy while the sandbox is not reading
chunks.extend(iter(lambda: s.recv(1 << 16), b''))
data = b''.join(chunks)
head, _, body = data.partition(b'\\r\\n\\r\\n')
print('body', len(body), body.count(b'a'))
`;
    const sb = await startGated(client, script, policy());
    await sb.send('go');
    const out = await sb.done;
    expect(out).toContain('HTTP/1.1 200 Connection Established');
    expect(out).toContain(`body ${BIG_BODY.length} ${BIG_BODY.length}`);
    const { events } = await client.call('audit.list', { sandbox: sb.name });
    expect(events.map((e) => [e.via, e.host, e.decision])).toEqual([['connect', 'allowed.test', 'allow']]);
    expect(events[0]!.bytesDown).toBeGreaterThan(BIG_BODY.length);
  });

  it('passes a CONNECT to an allowed name and refuses one to a blocked name', async () => {
    const script = `
import os, socket, urllib.parse
proxy = urllib.parse.urlparse(os.environ['HTTPS_PROXY'])
def connect(target):
    s = socket.create_connection((proxy.hostname, proxy.port), timeout=5)
    s.sendall(f'CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n'.encode())
    head = s.recv(4096).decode()
    print(target, head.split('\\r\\n')[0])
    return s
s = connect('allowed.test:443')
s.sendall(b'GET /tunnel HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: close\\r\\n\\r\\n')
print(b''.join(iter(lambda: s.recv(4096), b'')).decode().split('\\r\\n')[-1])
connect('blocked.test:443')
`;
    const sb = await startGated(client, script, policy());
    await sb.send('go');
    const out = await sb.done;
    expect(out).toContain('allowed.test:443 HTTP/1.1 200 Connection Established');
    expect(out).toContain('hello from upstream allowed.test /tunnel');
    expect(out).toContain('blocked.test:443 HTTP/1.1 403 Forbidden');
    const { events } = await client.call('audit.list', { sandbox: sb.name });
    expect(events.map((e) => [e.via, e.host, e.decision])).toEqual([
      ['connect', 'allowed.test', 'allow'],
      ['connect', 'blocked.test', 'deny'],
    ]);
  });

  it('transparent mode catches a program that ignores HTTP_PROXY, for HTTP by Host and for TLS by SNI', async () => {
    const script = `
import socket, ssl, urllib.request, urllib.error
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(direct.open('http://allowed.test/direct', timeout=5).read().decode())
try:
    direct.open('http://blocked.test/direct', timeout=5)
except urllib.error.HTTPError as e:
    print('plain blocked', e.code)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with ctx.wrap_socket(socket.create_connection(('tls.wild.test', 443), timeout=5), server_hostname='tls.wild.test') as t:
    print(t.recv(100).decode().strip())
try:
    with ctx.wrap_socket(socket.create_connection(('blocked.test', 443), timeout=5), server_hostname='blocked.test') as t:
        print('tls blocked.test answered', t.recv(100))
except (OSError, ssl.SSLError) as e:
    print('tls blocked', type(e).__name__)
`;
    const sb = await startGated(client, script, policy());
    await sb.send('go');
    const out = await sb.done;
    expect(out).toContain('hello from upstream allowed.test /direct');
    expect(out).toContain('plain blocked 403');
    expect(out).toContain('tls hello tls.wild.test');
    expect(out).toMatch(/tls blocked \w+/);
    const { events } = await client.call('audit.list', { sandbox: sb.name });
    expect(events.map((e) => [e.via, e.host, e.decision, e.rule])).toEqual([
      ['transparent-http', 'allowed.test', 'allow', 'allow allowed.test'],
      ['transparent-http', 'blocked.test', 'deny', 'default deny'],
      ['transparent-tls', 'tls.wild.test', 'allow', 'allow *.wild.test'],
      ['transparent-tls', 'blocked.test', 'deny', 'default deny'],
    ]);
  });

  it('gives each workflow step its own network policy', async () => {
    const fetch = `/usr/bin/python3 -S -c "import urllib.request; print(urllib.request.urlopen('http://allowed.test/wf', timeout=3).read().decode())"`;
    const yaml = [
      'version: 1',
      'name: net-policy',
      'onFailure: continue',
      'steps:',
      '  online:',
      `    run: ${JSON.stringify(fetch)}`,
      '    network:',
      '      allow: { domains: [allowed.test] }',
      `      resolve: { allowed.test: "127.0.0.1:${port}" }`,
      '  offline:',
      `    run: ${JSON.stringify(fetch)}`,
      '',
    ].join('\n');
    const started = await client.call('workflow.start', { text: yaml, file: '/tmp/net-policy.yaml' });
    let r = started;
    for (const deadline = Date.now() + 30_000; r.status === 'running' && Date.now() < deadline; ) {
      await new Promise((res) => setTimeout(res, 100));
      r = await client.call('workflow.get', { run: started.id });
    }
    expect(r.steps.map((st) => `${st.id}:${st.status}`)).toEqual(['online:succeeded', 'offline:failed']);
  });

  it('`ai-sandbox audit NAME --json` prints the decisions after the sandbox is gone', async () => {
    const sb = await startGated(client, "import urllib.request, urllib.error\ntry:\n    urllib.request.urlopen('http://nope.test/', timeout=5)\nexcept urllib.error.HTTPError as e:\n    print(e.code)", policy());
    await sb.send('go');
    expect(await sb.done).toContain('403');
    const r = await helper.cli(['audit', sb.name, '--json']);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { host: string; decision: string });
    expect(events).toEqual([expect.objectContaining({ host: 'nope.test', decision: 'deny' })]);
  });
});

function selfSigned(): { key: string; cert: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aisb-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`, '-days', '1', '-subj', '/CN=tls.wild.test'], { stdio: 'ignore' });
    return { key: fs.readFileSync(`${dir}/k.pem`, 'utf8'), cert: fs.readFileSync(`${dir}/c.pem`, 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Listening TCP and bound UDP sockets on addresses of the test range (10.232.0.0/16): proxy and DNS. */
function listenersInTestRange(): string[] {
  const found: string[] = [];
  for (const [file, state] of [['/proc/net/tcp', '0A'], ['/proc/net/udp', '07']] as const) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== state) continue;
      const [hex, portHex] = f[1]!.split(':');
      const ip = Buffer.from(hex!, 'hex').reverse().join('.');
      if (ip.startsWith('10.232.')) found.push(`${file.slice(10)} ${ip}:${parseInt(portHex!, 16)}`);
    }
  }
  return found;
}

describe('network leaks', () => {
  let helper: TestHelper;
  beforeAll(async () => {
    helper = await TestHelper.start();
  });
  afterAll(async () => helper?.destroy());

  it('300 networked sandboxes (half with the proxy) leave no veth, namespace, nft element or listener', async () => {
    const client = await helper.client();
    let ok = 0;
    for (let batch = 0; batch < 30; batch++) {
      const jobs = Array.from({ length: 10 }, async (_, j) => {
        const network: NetworkPolicyInput = j % 2 ? { allowPorts: [{ port: 443 }] } : { allowDomains: ['allowed.test'] };
        const res = await client.call('sandbox.create', { spec: { command: ['true'], network }, attach: true, autoRemove: true });
        await new Promise<void>((resolve) => client.onStream(res.stream!, (f) => void (f.event?.type === 'end' && resolve())));
        ok++;
      });
      await Promise.all(jobs);
    }
    client.close();
    expect(ok).toBe(300);
    const census = await helper.settledCensus();
    // the pool keeps its ready slots (made ahead of time, by design): 2 namespaces and their veths, nothing else
    const pooled = census.mounts.filter((m) => m.includes('/net/'));
    let net = await helper.netCensus();
    for (const deadline = Date.now() + 10_000; net.veths.length !== pooled.length && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      net = await helper.netCensus();
    }
    expect(pooled.length).toBeLessThanOrEqual(2);
    expect(net.veths.length).toBe(pooled.length);
    expect(net.elements).toBe(pooled.length); // only the ready slots' interfaces in the `ifaces` set
    expect(listenersInTestRange()).toEqual([]);
    await helper.stop();
    expect(await helper.settledNetCensus()).toEqual({ veths: [], table: false, elements: 0 });
    expect(helper.census().mounts).toEqual([]);
  }, 180_000);

  it('after kill -9 of the helper with networked sandboxes running, a restart leaves no veth, table entry or listener', async () => {
    await helper.stop(); // (stopped already when the test before ran)
    await helper.startProcess();
    const client = await helper.client();
    for (let i = 0; i < 6; i++) {
      const network: NetworkPolicyInput = i % 2 ? { allowPorts: [{ port: 443 }] } : { allowDomains: ['allowed.test'] };
      await client.call('sandbox.create', { spec: { name: `net${i}`, command: ['sleep', '300'], network }, autoRemove: false });
    }
    expect(listenersInTestRange().length).toBe(3 * 4); // 3 proxied sandboxes: 3 TCP listeners and DNS each
    client.close();
    await helper.kill9();
    expect((await helper.netCensus()).veths.length).toBeGreaterThanOrEqual(6);
    await helper.startProcess();
    await helper.stop();
    expect(await helper.settledNetCensus()).toEqual({ veths: [], table: false, elements: 0 });
    expect(listenersInTestRange()).toEqual([]);
    expect(helper.census()).toMatchObject({ mounts: [], processes: [] });
  }, 60_000);
});
