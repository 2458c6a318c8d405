/**
 * The auditing proxy of one sandbox with a domain policy, listening on its gateway only (so which
 * sandbox sent a request is known by the listener, never guessed from an address):
 *   :3128  HTTP forward proxy and CONNECT (what HTTP_PROXY / HTTPS_PROXY in the sandbox point at);
 *   :3129  plain HTTP redirected from port 80 by nftables, decided by the Host header;
 *   :3130  TLS redirected from port 443, decided by the ClientHello's server name; never decrypted.
 * A blocked HTTP request gets 403 with a body naming the rule; a blocked TLS connection is closed.
 *
 * Threat model: everything a sandbox sends here is untrusted. Names are checked against the policy
 * before anything is resolved; an allowed name is resolved on the host, and an address on the host
 * itself, link-local, or in our sandbox range is refused unless the user pinned it with --resolve
 * (so an allowed name cannot be pointed at the helper host's own services by its DNS).
 */
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import net from 'node:net';
import { inRange, ipToInt, type NetRange } from './addressing.js';
import type { AuditEvent, AuditSink } from './audit.js';
import { blockedMessage, decide, type DomainPolicy } from './domains.js';
import { PROXY_PORTS } from './rules.js';
import { readSni } from './sni.js';

export interface Pin {
  address: string;
  port?: number | undefined;
}

export interface ProxyOptions {
  sandbox: string;
  gateway: string;
  policy: DomainPolicy;
  pins: Map<string, Pin>;
  range: NetRange;
  audit: AuditSink;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const SNI_WAIT_MS = 5000;
/** larger stream buffers than Node's 16 KiB default: fewer, bigger reads and writes on the body path */
const HIGH_WATER_MARK = 1 << 20;
const SNI_MAX_BYTES = 20_000;
/** the reused read buffer of a CONNECT / TLS tunnel's download direction */
const TUNNEL_CHUNK = 256 << 10;

function forbiddenAddress(ip: string, range: NetRange): string | null {
  const n = ipToInt(ip);
  if (n === null) return 'not an IPv4 address';
  if (n >>> 24 === 127 || n >>> 24 === 0) return 'a loopback address of the host';
  if (n >>> 16 === 0xa9fe) return 'a link-local address';
  if (n >>> 28 === 0xe) return 'a multicast address';
  if (inRange(range, ip)) return 'an ai-sandbox address';
  return null;
}

export class SandboxProxy {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly o: ProxyOptions) {}

  async start(): Promise<void> {
    const explicit = http.createServer({ highWaterMark: HIGH_WATER_MARK }, (req, res) => void this.onRequest(req, res, 'proxy'));
    explicit.on('connect', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => void this.onConnect(req, sock, head));
    const transparent = http.createServer({ highWaterMark: HIGH_WATER_MARK }, (req, res) => void this.onRequest(req, res, 'transparent-http'));
    const tls = net.createServer((s) => this.onTls(s));
    const all: Array<[net.Server, number]> = [[explicit, PROXY_PORTS.explicit], [transparent, PROXY_PORTS.http], [tls, PROXY_PORTS.tls]];
    try {
      for (const [srv, port] of all) {
        srv.on('connection', (s: net.Socket) => this.trackSocket(s));
        if (srv instanceof http.Server) srv.on('clientError', (_e, s: net.Socket) => s.destroy());
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(port, this.o.gateway, () => resolve());
        });
        this.servers.push(srv);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await Promise.all(this.servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private trackSocket(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
  }

  private event(e: Omit<AuditEvent, 'sandbox' | 'time'>): void {
    this.o.audit.append({ sandbox: this.o.sandbox, time: new Date().toISOString(), ...e });
  }

  /** Where to connect for `host`: a --resolve pin, or the host's resolver with unsafe answers refused. */
  private async upstream(host: string, port: number): Promise<{ address: string; port: number }> {
    const pin = this.o.pins.get(host);
    if (pin) return { address: pin.address, port: pin.port ?? port };
    const address = net.isIPv4(host) ? host : (await lookup(host, { family: 4 })).address;
    const bad = forbiddenAddress(address, this.o.range);
    if (bad) throw new Error(`${host} resolves to ${address}, ${bad}: pin it with --resolve ${host}=ADDR if that is intended`);
    return { address, port };
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse, via: 'proxy' | 'transparent-http'): Promise<void> {
    let host: string;
    let port: number;
    let path: string;
    try {
      if (req.url && /^http:\/\//i.test(req.url)) {
        const u = new URL(req.url);
        host = u.hostname;
        port = u.port ? Number(u.port) : 80;
        path = `${u.pathname}${u.search}`;
      } else {
        const h = (req.headers.host ?? '').toLowerCase();
        const m = /^([^:]+)(?::(\d+))?$/.exec(h);
        if (!m) throw new Error('no Host header');
        host = m[1]!;
        port = via === 'proxy' && m[2] ? Number(m[2]) : 80;
        path = req.url ?? '/';
      }
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('ai-sandbox proxy: the request names no host\n');
      return;
    }
    host = host.toLowerCase();
    const d = decide(this.o.policy, host);
    const base = { via, method: req.method ?? 'GET', host, port, path };
    if (!d.allowed) {
      const body = blockedMessage(host, d);
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-ai-sandbox-rule': d.rule }).end(body);
      this.event({ ...base, decision: 'deny', rule: d.rule, status: 403, bytesUp: 0, bytesDown: 0 });
      return;
    }
    let bytesUp = 0;
    let bytesDown = 0;
    let target;
    try {
      target = await this.upstream(host, port);
    } catch (err) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`ai-sandbox proxy: ${(err as Error).message}\n`);
      this.event({ ...base, decision: 'allow', rule: d.rule, status: 502, bytesUp, bytesDown, error: (err as Error).message });
      return;
    }
    const headers = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    // highWaterMark is honoured by http.request (Node ≥ 20) but missing from @types/node's RequestOptions
    const opts: http.RequestOptions & { highWaterMark: number } = { host: target.address, port: target.port, method: req.method, path, headers, agent: this.agent, setHost: false, highWaterMark: HIGH_WATER_MARK };
    const up = http.request(opts);
    req.on('data', (c: Buffer) => (bytesUp += c.length));
    up.on('response', (ur) => {
      const out = { ...ur.headers };
      for (const h of HOP_BY_HOP) delete out[h];
      res.writeHead(ur.statusCode ?? 502, out);
      ur.on('data', (c: Buffer) => (bytesDown += c.length));
      ur.pipe(res);
      ur.on('end', () => this.event({ ...base, decision: 'allow', rule: d.rule, status: ur.statusCode ?? null, bytesUp, bytesDown }));
    });
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`ai-sandbox proxy: ${host}: ${err.message}\n`);
      else res.destroy();
      this.event({ ...base, decision: 'allow', rule: d.rule, status: 502, bytesUp, bytesDown, error: err.message });
    });
    req.pipe(up);
  }

  private async onConnect(req: http.IncomingMessage, sock: net.Socket, head: Buffer): Promise<void> {
    const m = /^([^:\s]+):(\d{1,5})$/.exec(req.url ?? '');
    if (!m) {
      sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    const host = m[1]!.toLowerCase();
    const port = Number(m[2]);
    const d = decide(this.o.policy, host);
    const base = { via: 'connect' as const, method: 'CONNECT', host, port, path: null };
    if (!d.allowed) {
      const body = blockedMessage(host, d);
      sock.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Ai-Sandbox-Rule: ${d.rule}\r\nConnection: close\r\n\r\n${body}`);
      this.event({ ...base, decision: 'deny', rule: d.rule, status: 403, bytesUp: 0, bytesDown: 0 });
      return;
    }
    this.tunnel(sock, host, port, head, base, d.rule, () => sock.write('HTTP/1.1 200 Connection Established\r\n\r\n'), (msg) =>
      sock.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nai-sandbox proxy: ${msg}\n`),
    );
  }

  private onTls(sock: net.Socket): void {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(null, 'no TLS ClientHello within 5 s'), SNI_WAIT_MS);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const r = readSni(buf);
      if (r.kind === 'need-more' && buf.length < SNI_MAX_BYTES) return;
      if (r.kind === 'done' && r.serverName) finish(r.serverName, null);
      else finish(null, r.kind === 'done' ? 'no server name (SNI) in the ClientHello' : 'not TLS on port 443');
    };
    const finish = (serverName: string | null, problem: string | null) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.pause();
      const base = { via: 'transparent-tls' as const, method: 'TLS', host: serverName ?? '?', port: 443, path: null };
      const d = serverName ? decide(this.o.policy, serverName) : { allowed: false, rule: problem ?? 'default deny' };
      if (!d.allowed || !serverName) {
        sock.destroy();
        this.event({ ...base, decision: 'deny', rule: d.rule, status: null, bytesUp: 0, bytesDown: 0 });
        return;
      }
      this.tunnel(sock, serverName, 443, buf, base, d.rule, () => {}, () => sock.destroy());
    };
    sock.on('data', onData);
  }

  /** Bytes both ways between the sandbox's socket and the upstream, audited when both ends close. */
  private tunnel(
    sock: net.Socket,
    host: string,
    port: number,
    head: Buffer,
    base: Pick<AuditEvent, 'via' | 'method' | 'host' | 'port' | 'path'>,
    rule: string,
    onOpen: () => void,
    onFail: (msg: string) => void,
  ): void {
    let bytesUp = head.length;
    let bytesDown = 0;
    let done = false;
    const end = (error?: string) => {
      if (done) return;
      done = true;
      this.event({ ...base, decision: 'allow', rule, status: null, bytesUp, bytesDown, error });
    };
    this.upstream(host, port).then(
      (target) => {
        // Downloads (upstream -> sandbox) are read into one reused buffer per tunnel instead of a fresh
        // 64 KiB Buffer per read: no garbage per chunk, fewer and larger reads. A write that does not
        // complete at once still points into the buffer, so reading waits until it has.
        const buffer = Buffer.allocUnsafe(TUNNEL_CHUNK);
        let held = false;
        const up = net.connect({
          port: target.port,
          host: target.address,
          onread: {
            buffer,
            callback: (n: number, b: Buffer) => {
              bytesDown += n;
              sock.write(b.subarray(0, n), () => {
                if (held) {
                  held = false;
                  up.resume();
                }
              });
              if (sock.writableLength === 0) return true;
              held = true;
              return false;
            },
          },
        });
        this.trackSocket(up);
        up.on('connect', () => {
          onOpen();
          if (head.length) up.write(head);
          sock.on('data', (c: Buffer) => (bytesUp += c.length));
          sock.pipe(up);
          sock.resume();
        });
        up.on('end', () => sock.end());
        up.on('error', (err) => {
          if (!up.readyState || up.connecting) onFail(`${host}: ${err.message}`);
          sock.destroy();
          end(err.message);
        });
        // a clean close lets what is still queued for the sandbox go out (sock.end() above)
        up.on('close', (hadError: boolean) => {
          if (hadError) sock.destroy();
          end();
        });
        sock.on('close', () => up.destroy());
      },
      (err: Error) => {
        onFail(err.message);
        end(err.message);
      },
    );
  }
}
