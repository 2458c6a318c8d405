import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { describe, expect, it } from 'vitest';
import { answer, startDns } from './dns.js';

describe('sandbox DNS', () => {
  it("answers a real resolver's A question with the gateway, and AAAA with nothing", async () => {
    const sock: dgram.Socket = await startDns('127.0.0.1', 0);
    const port = sock.address().port;
    try {
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([`127.0.0.1:${port}`]);
      expect(await r.resolve4('anything.example')).toEqual(['127.0.0.1']);
      await expect(r.resolve6('anything.example')).rejects.toThrow(/ENODATA/);
    } finally {
      sock.close();
    }
  });
  it('ignores what is not a question', () => {
    expect(answer(Buffer.alloc(5), '10.0.0.1')).toBeNull();
    const resp = Buffer.alloc(17);
    resp[2] = 0x80;
    expect(answer(resp, '10.0.0.1')).toBeNull();
  });
});
