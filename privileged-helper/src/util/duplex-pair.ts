/** Two connected in-memory duplex streams: what one writes, the other reads (like socketpair(2)). */
import { Duplex } from 'node:stream';

export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  // Mirror net.Socket: ending one side closes both once the data is through.
  a.on('end', () => a.destroy());
  b.on('end', () => b.destroy());
  return [a, b];
}
