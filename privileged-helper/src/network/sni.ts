/**
 * The server name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), read without decrypting or
 * answering anything: the transparent proxy decides on it and then passes the bytes on untouched.
 */
export type SniResult = { kind: 'need-more' } | { kind: 'not-tls' } | { kind: 'done'; serverName: string | null };

export function readSni(buf: Buffer): SniResult {
  if (buf.length < 5) return { kind: 'need-more' };
  if (buf[0] !== 0x16 || buf[1] !== 0x03) return { kind: 'not-tls' };
  const recordLen = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLen) return recordLen > 16384 + 2048 ? { kind: 'not-tls' } : { kind: 'need-more' };
  const hs = buf.subarray(5, 5 + recordLen);
  // handshake header: type 1 (client_hello), u24 length
  if (hs.length < 4 || hs[0] !== 0x01) return { kind: 'not-tls' };
  let p = 4 + 2 + 32; // version, random
  const need = (n: number) => p + n <= hs.length;
  if (!need(1)) return { kind: 'not-tls' };
  p += 1 + hs[p]!; // session id
  if (!need(2)) return { kind: 'not-tls' };
  p += 2 + hs.readUInt16BE(p); // cipher suites
  if (!need(1)) return { kind: 'not-tls' };
  p += 1 + hs[p]!; // compression methods
  if (!need(2)) return { kind: 'done', serverName: null }; // no extensions
  const extEnd = p + 2 + hs.readUInt16BE(p);
  p += 2;
  if (extEnd > hs.length) return { kind: 'not-tls' };
  while (p + 4 <= extEnd) {
    const type = hs.readUInt16BE(p);
    const len = hs.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extEnd) return { kind: 'not-tls' };
    if (type === 0) {
      // server_name_list: u16 length, then entries (u8 type, u16 length, name)
      let q = p + 2;
      while (q + 3 <= p + len) {
        const nameType = hs[q]!;
        const nameLen = hs.readUInt16BE(q + 1);
        if (q + 3 + nameLen > p + len) return { kind: 'not-tls' };
        if (nameType === 0) return { kind: 'done', serverName: hs.subarray(q + 3, q + 3 + nameLen).toString('ascii').toLowerCase() };
        q += 3 + nameLen;
      }
    }
    p += len;
  }
  return { kind: 'done', serverName: null };
}
