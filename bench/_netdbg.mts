import { NetworkService } from '../privileged-helper/src/network/network.js';
import { AuditLog } from '../privileged-helper/src/network/audit.js';
import fs from 'node:fs';
fs.mkdirSync('/run/aisb-dbg', { recursive: true });
const svc = new NetworkService({ range: '10.239.0.0/16', prefix: 'aisd', table: 'aisb_dbg', poolSize: 2 }, '/run/aisb-dbg', new AuditLog());
await svc.ready();
await new Promise((r) => setTimeout(r, 300));
const ts: number[] = [];
for (let i = 0; i < 30; i++) {
  const t0 = performance.now();
  const a = await svc.attach('x' + i, { allowPorts: [{ port: 443, proto: 'tcp' }], allowDomains: [], denyDomains: [], resolve: [] });
  ts.push(performance.now() - t0);
  await svc.detach(a);
  await new Promise((r) => setTimeout(r, 50));
}
ts.sort((a, b) => a - b);
console.log('attach p50', ts[15].toFixed(3), 'min', ts[0].toFixed(3));
await svc.shutdown();
