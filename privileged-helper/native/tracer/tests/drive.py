#!/usr/bin/env python3
"""Root tests for ai-sandbox-tracer (docs/tracer-protocol.md), in the style of launcher/tests/drive.py.

Processes run in private cgroup2 directories (ai-sandbox-test/tracer-PID/{a,b} under the cgroup2
mount), removed at the end, also on failure. The tracer is our child: when it ends (or is killed) its
links close, so no BPF program stays attached; the last test checks that it detaches on its own.

usage: drive.py --tracer PATH --loop PATH
"""
import argparse, os, shutil, signal, socket, struct, subprocess, sys, threading, time, traceback

ADD, REMOVE, COUNTERS = 1, 2, 3
ACK, EVENTS, EV_COUNTERS = 101, 102, 103
HDR = 96
NR_AT, LEN_AT = struct.Struct('<H'), struct.Struct('<HB')
NR = dict(getpid=39, openat=257, connect=42, execve=59, exit_group=231)


def cgroup2_root():
    for line in open('/proc/self/mountinfo'):
        f = line.split()
        sep = f.index('-')
        if f[sep + 1] == 'cgroup2':
            return f[4]
    raise SystemExit('no cgroup2 mount')


PID = os.getpid()
TOP = os.path.join(cgroup2_root(), 'ai-sandbox-test', 'tracer-%d' % PID)
CG_A, CG_B = TOP + '/a', TOP + '/b'


def mask_of(names=None):
    m = [0] * 8
    if names is None:
        return [2 ** 64 - 1] * 8
    for n in names:
        nr = NR[n]
        m[nr // 64] |= 1 << (nr % 64)
    return m


class Tracer:
    def __init__(self, path):
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self.cv = threading.Condition()
        # EVENTS bodies are kept raw and decoded only when a test reads them (events()): decoding a
        # million records in the reader thread would make the tracer's ACKs wait behind Python.
        self.acks, self.counters, self.bodies, self.log = {}, {}, [], []
        self.received = 0  # bytes read from the tracer: a request is late only while nothing arrives
        self.periodic = []
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()

    def _err(self):
        for line in self.p.stderr:
            self.log.append(line.decode(errors='replace').rstrip())

    def _read(self):
        f = self.p.stdout
        buf = b''
        while True:
            c = f.read(1 << 20)
            if not c:
                break
            buf += c
            with self.cv:
                self.received += len(c)
            off = 0
            while len(buf) - off >= 4:
                (ln,) = struct.unpack_from('<I', buf, off)
                if len(buf) - off - 4 < ln:
                    break
                typ, ident = struct.unpack_from('<BI', buf, off + 4)
                self._frame(typ, ident, buf[off + 9: off + 4 + ln])
                off += 4 + ln
            buf = buf[off:]
        with self.cv:
            self.cv.notify_all()

    def _frame(self, typ, ident, body):
        with self.cv:
            if typ == ACK:
                err, flags, took, attach = struct.unpack('<iIQQ', body)
                self.acks[ident] = dict(err=err, attached=bool(flags & 1), took=took, attach=attach)
            elif typ == EVENTS:
                self.bodies.append(body)
            elif typ == EV_COUNTERS:
                c = parse_counters(body)
                if ident:
                    self.counters[ident] = c
                else:
                    self.periodic.append(c)
            self.cv.notify_all()

    def request(self, typ, body=b''):
        ident = self.next_id
        self.next_id += 1
        self.p.stdin.write(struct.pack('<IBI', len(body) + 5, typ, ident) + body)
        with self.cv:
            # A REMOVE after a million events is answered after all of them: wait while data flows,
            # fail after 10 s with nothing from the tracer.
            seen = -1
            while ident not in self.acks and seen != self.received:
                seen = self.received
                self.cv.wait_for(lambda: ident in self.acks, timeout=10)
            if ident not in self.acks:
                raise AssertionError('no ACK for request %d (nothing from the tracer for 10 s); log: %s' % (ident, self.log[-5:]))
            return self.acks[ident], self.counters.get(ident)

    def mark(self):
        with self.cv:
            return len(self.bodies)

    def events(self, since=0):
        with self.cv:
            bodies = self.bodies[since:]
        return [e for b in bodies for e in parse_events(b)]

    def count_nr(self, nr, since=0):
        """how many events of syscall nr arrived after mark `since` (no dicts: a million are counted)"""
        with self.cv:
            bodies = self.bodies[since:]
        n = 0
        for body in bodies:
            off = 0
            while off + HDR <= len(body):
                (rec_nr,) = NR_AT.unpack_from(body, off + 88)
                plen, alen = LEN_AT.unpack_from(body, off + 92)
                n += rec_nr == nr
                off += HDR + ((alen + 7) & ~7) + ((plen + 7) & ~7)
        return n

    def add(self, cg, names=None, rate=0):
        cgid = os.stat(cg).st_ino
        ack, _ = self.request(ADD, struct.pack('<QII8Q', cgid, rate, 0, *mask_of(names)))
        assert ack['err'] == 0, ack
        return cgid, ack

    def remove(self, cgid):
        ack, c = self.request(REMOVE, struct.pack('<Q', cgid))
        assert ack['err'] == 0, ack
        return ack, c[cgid]

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()
            self.p.wait()


def parse_events(body):
    out, off = [], 0
    while off + HDR <= len(body):
        ts, cgid, dur, ret = struct.unpack_from('<QQQq', body, off)
        args = struct.unpack_from('<6Q', body, off + 32)
        pid, tid, nr, flags, plen, alen, kind = struct.unpack_from('<IIHHHBB', body, off + 80)
        p = off + HDR
        apad, ppad = (alen + 7) & ~7, (plen + 7) & ~7
        addr = body[p:p + alen]
        path = body[p + apad:p + apad + plen].rstrip(b'\0').decode(errors='replace') if plen else None
        out.append(dict(ts=ts, cgid=cgid, dur=dur, ret=ret, args=args, pid=pid, tid=tid, nr=nr, flags=flags, addr=addr, path=path))
        off = p + apad + ppad
    assert off == len(body), 'trailing bytes in EVENTS'
    return out


def parse_counters(body):
    (n, _) = struct.unpack_from('<II', body, 0)
    off, out = 8, {}
    for _ in range(n):
        cgid, emitted, rbd, rl, nagg, _pad = struct.unpack_from('<QQQQII', body, off)
        off += 40
        agg = {}
        for _ in range(nagg):
            nr, _p, cnt = struct.unpack_from('<IIQ', body, off)
            agg[nr] = cnt
            off += 16
        out[cgid] = dict(emitted=emitted, ringbuf_dropped=rbd, rate_limited=rl, agg=agg)
    return out


def run_in(cg, argv):
    def join():
        with open(cg + '/cgroup.procs', 'w') as f:
            f.write('0')
    r = subprocess.run(argv, preexec_fn=join, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return r.returncode


def link_fds(pid):
    n = 0
    for fd in os.listdir('/proc/%d/fdinfo' % pid):
        try:
            if 'link_type:' in open('/proc/%d/fdinfo/%s' % (pid, fd)).read():
                n += 1
        except OSError:
            pass
    return n


def refused_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    return port


# ---- tests ----------------------------------------------------------------------------------------
def t_decoded_events(t, loop):
    cgid, ack = t.add(CG_A)
    assert ack['attached'], 'not attached after the first ADD'
    marker = '/tmp/ai-sandbox-tracer-marker-%d' % PID
    open(marker, 'w').close()
    try:
        port = refused_port()
        base = t.mark()
        assert run_in(CG_A, [loop, 'open', marker]) == 0
        run_in(CG_A, [loop, 'connect', str(port)])
        assert run_in(CG_A, [loop, 'exec', '/bin/true']) == 0
        # untraced: cgroup b, and the host (this process)
        run_in(CG_B, [loop, 'open', marker])
        open(marker).close()
        _, c = t.remove(cgid)
    finally:
        os.unlink(marker)
    evs = t.events(base)
    assert all(e['cgid'] == cgid for e in evs), 'an event from outside the traced cgroup'
    opens = [e for e in evs if e['path'] == marker]
    assert len(opens) == 1, 'expected exactly one open of the marker (traced child only): %r' % opens
    o = opens[0]
    assert o['nr'] == NR['openat'] and o['ret'] >= 0 and o['dur'] > 0, o
    assert o['args'][2] & 0o2000000, 'O_CLOEXEC in the flags argument'
    conns = [e for e in evs if e['nr'] == NR['connect']]
    assert len(conns) == 1, conns
    a = conns[0]['addr']
    fam, prt = struct.unpack_from('<H', a, 0)[0], struct.unpack_from('>H', a, 2)[0]
    assert fam == socket.AF_INET and prt == port and a[4:8] == bytes([127, 0, 0, 1]), a
    assert conns[0]['ret'] == -111, 'ECONNREFUSED expected, got %d' % conns[0]['ret']
    execs = [e for e in evs if e['nr'] == NR['execve'] and e['path'] == '/bin/true']
    assert len(execs) == 1 and execs[0]['ret'] == 0, execs
    exits = [e for e in evs if e['nr'] == NR['exit_group']]
    assert len(exits) >= 3 and all(e['flags'] & 1 for e in exits), 'exit_group reported at entry'
    assert c['emitted'] == len(evs) and c['ringbuf_dropped'] == 0, (c, len(evs))
    return 'open/connect/execve decoded, %d events, none from cgroup b or the host' % len(evs)


def t_million(t, loop):
    n = 1_000_000
    cgid, _ = t.add(CG_A, ['getpid'])
    base = t.mark()
    t0 = time.monotonic()
    assert run_in(CG_A, [loop, 'getpid', str(n)]) == 0
    _, c = t.remove(cgid)
    dt = time.monotonic() - t0
    got = t.count_nr(NR['getpid'], base)
    total = c['emitted'] + c['ringbuf_dropped'] + c['rate_limited']
    assert got == c['emitted'], (got, c)
    assert total == n, 'emitted %d + dropped %d + rate-limited %d != %d' % (c['emitted'], c['ringbuf_dropped'], c['rate_limited'], n)
    return '%d getpid: %d delivered, %d dropped (ring buffer), sum matches; %.0f k events/s' % (n, got, c['ringbuf_dropped'], got / dt / 1000)


def t_rate_limit(t, loop):
    n = 200_000
    cgid, _ = t.add(CG_A, ['getpid'], rate=1000)
    base = t.mark()
    assert run_in(CG_A, [loop, 'getpid', str(n)]) == 0
    _, c = t.remove(cgid)
    got = t.count_nr(NR['getpid'], base)
    assert c['rate_limited'] > 0 and c['agg'].get(NR['getpid']) == c['rate_limited'], c
    assert got == c['emitted'] and c['emitted'] + c['ringbuf_dropped'] + c['rate_limited'] == n, (got, c)
    return 'rate 1000/s: %d reported one by one, %d aggregated as getpid×N' % (got, c['rate_limited'])


def t_add_time_and_detach(t, loop):
    cgid_a, ack1 = t.add(CG_A)
    cgid_b, ack2 = t.add(CG_B)
    assert ack1['attached'] and ack2['attached']
    assert link_fds(t.p.pid) == 2, 'two links (sys_enter, sys_exit) while attached'
    ack, _ = t.remove(cgid_a)
    assert ack['attached'], 'still attached while b is traced'
    ack, _ = t.remove(cgid_b)
    assert not ack['attached'], 'detached after the last REMOVE'
    assert link_fds(t.p.pid) == 0, 'no link left after the last REMOVE'
    assert ack2['took'] < 1_000_000, 'add took %d ns' % ack2['took']
    return 'add %.3f ms; detached when the last sandbox went (0 links)' % (ack2['took'] / 1e6)


def t_bad_requests(t, loop):
    ack, _ = t.request(ADD, b'short')
    assert ack['err'] == 22
    ack, _ = t.request(REMOVE, struct.pack('<Q', 12345))
    assert ack['err'] == 2
    ack, _ = t.request(99)
    assert ack['err'] == 22
    return 'malformed ADD, unknown REMOVE, unknown type refused'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tracer', required=True)
    ap.add_argument('--loop', required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print('SKIPPED: tracer tests need root')
        return 0
    os.makedirs(CG_A)
    os.makedirs(CG_B)
    t = Tracer(os.path.abspath(a.tracer))
    failed = passed = 0
    try:
        for name, fn in [('decoded events, untraced silent', t_decoded_events), ('1M getpid sum', t_million),
                         ('rate limit aggregation', t_rate_limit), ('add time, detach', t_add_time_and_detach),
                         ('bad requests', t_bad_requests)]:
            try:
                print('ok   tracer: %s: %s' % (name, fn(t, os.path.abspath(a.loop))))
                passed += 1
            except Exception:
                failed += 1
                print('FAIL tracer: %s' % name)
                traceback.print_exc()
                print('\n'.join(t.log[-10:]))
    finally:
        t.close()
        for d in (CG_A, CG_B, TOP):
            try:
                os.rmdir(d)
            except OSError as e:
                print('cleanup %s: %s' % (d, e))
    print('tracer: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
