/**
 * The DNS a sandbox with a domain policy sees: every A question is answered with the sandbox's own
 * gateway, so whatever name a program looks up, its connection reaches the auditing proxy (which
 * decides by the Host header or TLS server name, and resolves allowed names on the host). AAAA and
 * other types get an empty answer; malformed packets are ignored.
 */
import dgram from 'node:dgram';
import { ipToInt } from './addressing.js';

const TTL = 5;

/** The answer to one query packet, or null to ignore it. */
export function answer(query: Buffer, address: string): Buffer | null {
  if (query.length < 12 || query[2]! & 0x80) return null; // too short, or a response
  const qdcount = query.readUInt16BE(4);
  if (qdcount !== 1) return null;
  let p = 12;
  while (p < query.length && query[p] !== 0) {
    if (query[p]! & 0xc0) return null; // no compression in questions
    p += 1 + query[p]!;
  }
  if (p + 5 > query.length) return null;
  const qEnd = p + 5;
  const qtype = query.readUInt16BE(p + 1);
  const qclass = query.readUInt16BE(p + 3);
  const isA = qtype === 1 && qclass === 1;
  const head = Buffer.alloc(12);
  head.writeUInt16BE(query.readUInt16BE(0), 0); // id
  head.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x0100) | 0x0080, 2); // QR, RD copied, RA
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(isA ? 1 : 0, 6);
  const question = query.subarray(12, qEnd);
  if (!isA) return Buffer.concat([head, question]);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question's
  rr.writeUInt16BE(1, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(TTL, 6);
  rr.writeUInt16BE(4, 10);
  rr.writeUInt32BE(ipToInt(address) ?? 0, 12);
  return Buffer.concat([head, question, rr]);
}

export async function startDns(bind: string, port: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const a = answer(msg, bind);
    if (a) sock.send(a, rinfo.port, rinfo.address);
  });
  sock.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, bind, () => resolve());
  });
  return sock;
}
