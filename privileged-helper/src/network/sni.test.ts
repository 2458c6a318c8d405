import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { readSni } from './sni.js';

/** The first bytes a real TLS client (Node's OpenSSL) sends for `servername`. */
async function clientHello(servername: string): Promise<Buffer> {
  let got = Buffer.alloc(0);
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (readSni(got).kind !== 'need-more') s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => {
    const c = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    c.on('error', () => resolve());
    c.on('close', () => resolve());
  });
  server.close();
  return got;
}

describe('readSni', () => {
  it('reads the server name of a real ClientHello, also when it arrives in pieces', async () => {
    const hello = await clientHello('Allowed.Test');
    expect(readSni(hello)).toEqual({ kind: 'done', serverName: 'allowed.test' });
    expect(readSni(hello.subarray(0, 3))).toEqual({ kind: 'need-more' });
    expect(readSni(hello.subarray(0, 40))).toEqual({ kind: 'need-more' });
  });
  it('tells plain text from TLS', () => {
    expect(readSni(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toEqual({ kind: 'not-tls' });
  });
});
