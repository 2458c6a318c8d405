#!/usr/bin/env python3
"""Prototype: checkpoint / restore / fork of an ai-sandbox sandbox with CRIU (issue 3). See NOTES.md.

Starts a real sandbox with the real launcher (through launcher/tests/drive.py), dumps its tree from the
init pid, archives the overlay upper layer, and restores it into a fresh tmpfs + overlay with the
command's stdout arriving on a pipe we own (--inherit-fd). Prints what worked and the timings.

Everything lives in a private state dir (/run/ai-sandbox-criu-proto-PID) and private cgroups
(ai-sandbox-criu-proto/run-PID); all of it is killed (by pid), unmounted and removed at the end, also on
failure.

usage: proto.py [--launcher PATH] [--criu PATH] [--keep-images] [--bench N]
"""
import argparse, ctypes, os, select, shutil, signal, socket, struct, subprocess, sys, time, traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'launcher', 'tests'))
import drive  # noqa: E402  (the launcher protocol helpers)
from drive import T, tlv, SPAWNED, SPAWN_FAILED, OUTPUT, EXIT, KILL, ALLOW_LISTEN  # noqa: E402

PID = os.getpid()
drive.STATE = STATE = '/run/ai-sandbox-criu-proto-%d' % PID
drive.CG2 = CG2 = '/sys/fs/cgroup/unified/ai-sandbox-criu-proto/run-%d' % PID
drive.CGPIDS = CGPIDS = '/sys/fs/cgroup/pids/ai-sandbox-criu-proto/run-%d' % PID
WORK = STATE + '/criu'          # images, logs, archives (not under sb/: that is the launcher's)
CRIU_RUNDIR = '/run/criu'       # criu was built with RUNDIR=/run/criu (scripts/criu.sh)
libc = drive.libc
MS_NOSUID, MS_NODEV, MS_REC, MS_SLAVE, MS_PRIVATE = 2, 4, 0x4000, 0x80000, 0x40000
CLONE_NEWNS = 0x20000

# The sandboxed program: a counter in memory, a TCP listener that answers with the counter, a file
# written before the checkpoint. Ticks every 0.2 s so the test is quick.
COUNTER = r'''
import os, socket, select, sys, time
n = 0
state = {i: "v%d" % i for i in range(20000)}
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080)); s.listen(8)
open("/tmp/before", "w").write("written before\n")
while True:
    r, _, _ = select.select([s], [], [], 0.2)
    if r:
        c, _ = s.accept(); c.sendall(b"%d\n" % n); c.close(); continue
    n += 1
    print("count", n, "pid", os.getpid(), "len", len(state), flush=True)
'''

IDLE = 'import time\nwhile True: time.sleep(3600)\n'

SPAWN_EXTRA_FLAGS = int(os.environ.get('PROTO_FLAGS', '0'))  # e.g. 4 = NO_LANDLOCK
started_pids = []   # host pids of restored inits we own (killed by pid at the end)
our_mounts = []     # mount points we made outside the launcher's SANDBOX_DIRs
mounted_rundir = False


def log(*a):
    print(*a, flush=True)


def mount(src, dst, fstype, flags, data):
    if libc.mount(src.encode(), dst.encode(), fstype.encode() if fstype else None, flags,
                  data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, 'mount %s on %s: %s' % (fstype, dst, os.strerror(e)))


def ensure_criu_rundir():
    """criu keeps its kernel-feature cache (criu.kdat) only on a tmpfs: the helper mounts one at start."""
    global mounted_rundir
    os.makedirs(CRIU_RUNDIR, exist_ok=True)
    if CRIU_RUNDIR not in drive.mounts_under(CRIU_RUNDIR):
        mount('tmpfs', CRIU_RUNDIR, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=0700,size=1m')
        mounted_rundir = True


def sandbox_pids(init):
    """The init and all its descendants (host pids), from /proc/PID/task/*/children."""
    out, todo = [], [init]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir('/proc/%d/task' % p):
                with open('/proc/%d/task/%s/children' % (p, t)) as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def fd_link(pid, fd):
    return os.readlink('/proc/%d/fd/%d' % (pid, fd))


def ns_inode(pid, ns):
    return os.stat('/proc/%d/ns/%s' % (pid, ns)).st_ino


def criu(args, logname, images, check=True, preexec=None, pass_fds=(), env=None):
    extra = os.environ.get('PROTO_%s_EXTRA' % args[0].upper(), '').split()  # timing variants
    cmd = [CRIU_BIN] + args + extra + ['--images-dir', images, '-o', logname,
                                       '-v' + os.environ.get('PROTO_VERBOSITY', '4')]
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=preexec,
                       pass_fds=pass_fds, env=env)
    dt = (time.monotonic() - t0) * 1000
    if check and p.returncode != 0:
        errs = []
        try:
            with open(os.path.join(images, logname)) as f:
                errs = [l.rstrip() for l in f if 'Error' in l or 'Warn' in l]
        except OSError:
            pass
        raise RuntimeError('criu %s failed (rc %d, %.1f ms): %s\n  %s\n  log %s' % (
            args[0], p.returncode, dt, ' '.join(cmd), '\n  '.join(errs[-15:]), os.path.join(images, logname)))
    return p.returncode, dt


def du(path):
    n = 0
    for d, _, fs in os.walk(path):
        for f in fs:
            n += os.lstat(os.path.join(d, f)).st_size
    return n


# ---- the dump ----------------------------------------------------------------------------------------
def mount_externals(init):
    """Mounts of the sandbox that CRIU must treat as external (key -> mount point inside the sandbox).

    Only the bind mounts of host /dev/null over /proc/{kcore,keys,...}: their root lives in the host's
    devtmpfs, which the sandbox's mount namespace does not contain. Everything else (overlay root,
    proc, the /dev tmpfs, devpts, shm, sysfs, the read-only /proc binds, the empty tmpfs masks) CRIU
    dumps and recreates by itself.
    """
    ext = {}
    with open('/proc/%d/mountinfo' % init) as f:
        for line in f:
            fl = line.split()
            mp = fl[4]
            fstype = fl[fl.index('-') + 1]
            if fstype == 'devtmpfs':
                ext['devnull' + mp.replace('/', '-')] = mp
    return ext


def dump(init, images, leave_running, netns_external, extra=()):
    os.makedirs(images, exist_ok=True)
    args = ['dump', '-t', str(init), '--tcp-established', '--file-locks', '--network-lock', 'nftables']
    for key, mp in mount_externals(init).items():
        args += ['--external', 'mnt[%s]:%s' % (mp, key)]
    if netns_external:
        args += ['--external', 'net[%d]:netns' % ns_inode(init, 'net')]
    if leave_running:
        args.append('--leave-running')
    args += list(extra)
    return criu(args, 'dump.log', images)


def archive_upper(sbdir, dest):
    t0 = time.monotonic()
    subprocess.run(['tar', '--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '-C', sbdir + '/upper',
                    '-cf', dest, '.'], check=True)
    return (time.monotonic() - t0) * 1000


# ---- the restore -------------------------------------------------------------------------------------
class Restored:
    def __init__(self, name):
        self.name, self.pid, self.out_r, self.status_r, self.buf = name, None, None, None, b''

    def read_output(self, want, timeout=5):
        end = time.time() + timeout
        while time.time() < end and want not in self.buf:
            r, _, _ = select.select([self.out_r], [], [], 0.2)
            if r:
                b = os.read(self.out_r, 65536)
                if not b:
                    break
                self.buf += b
        return self.buf


def restore(images, name, meta, sibling=True, netns_fd=None, logname='restore.log'):
    """Fresh tmpfs + upper from the archive, an overlay mounted in criu's own private mount namespace
    (never in the host's), new stdio/status pipes passed with --inherit-fd, `criu restore -d -S` so the
    restored init becomes OUR child (CLONE_PARENT) with its PDEATHSIG tied to us, as for a SPAWN."""
    r = Restored(name)
    sb = STATE + '/sb/' + name
    os.makedirs(sb)
    mount('tmpfs', sb, 'tmpfs', MS_NOSUID | MS_NODEV, 'size=64m,mode=0755')
    our_mounts.append(sb)
    t_fs = time.monotonic()
    for d in ('upper', 'work', 'root'):
        os.mkdir(sb + '/' + d)
    subprocess.run(['tar', '--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '-C', sb + '/upper',
                    '-xf', meta['upper_tar']], check=True)
    t_fs = (time.monotonic() - t_fs) * 1000
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    r.out_r, r.status_r, r.in_w, r.err_r = out_r, st_r, in_w, err_r
    # Fixed fd numbers in criu's process, matched to the dumped pipes' names.
    fdmap = {100: in_r, 101: out_w, 102: err_w, 103: st_w}
    keys = {100: meta['stdin'], 101: meta['stdout'], 102: meta['stderr'], 103: meta['status']}
    args = ['restore', '-d', '--root', sb + '/root', '--tcp-established', '--file-locks', '--network-lock', 'nftables',
            '--pidfile', os.path.join(images, name + '.pid')]
    if sibling:
        args.append('-S')
    for fd, key in keys.items():
        if key:
            args += ['--inherit-fd', 'fd[%d]:%s' % (fd, key)]
    for key, mp in meta['mnt_ext'].items():
        args += ['--external', 'mnt[%s]:/dev/null' % key]
    if netns_fd is not None:
        fdmap[104] = netns_fd
        args += ['--inherit-fd', 'fd[104]:netns']
    try:
        os.unlink(os.path.join(images, name + '.pid'))
    except FileNotFoundError:
        pass
    overlay = 'lowerdir=%s:/,upperdir=%s/upper,workdir=%s/work' % (STATE + '/base/host', sb, sb)

    def child_setup():
        # criu's own mount namespace: the fresh overlay exists only there and in the restored sandbox.
        if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b'/', None, MS_REC | MS_SLAVE, None) != 0:
            os._exit(120)
        if libc.mount(b'overlay', (sb + '/root').encode(), b'overlay', MS_NOSUID | MS_NODEV, overlay.encode()) != 0:
            os._exit(121)

    for fd, src in fdmap.items():  # fixed numbers in criu's process, named by --inherit-fd
        os.dup2(src, fd, inheritable=True)
    try:
        rc, ms = criu(args, logname, images, preexec=child_setup, pass_fds=tuple(fdmap))
    finally:
        for fd in fdmap:
            os.close(fd)
    for fd in (in_r, out_w, err_w, st_w):
        os.close(fd)
    with open(os.path.join(images, name + '.pid')) as f:
        r.pid = int(f.read())
    started_pids.append(r.pid)
    r.ms, r.fs_ms = ms, t_fs
    return r


def kill_restored(r):
    try:
        os.kill(r.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(r.pid, 0)  # ours when restored with -S
    except ChildProcessError:
        pass
    for _ in range(100):
        if not os.path.exists('/proc/%d' % r.pid):
            break
        time.sleep(0.01)
    if r.pid in started_pids:
        started_pids.remove(r.pid)


def cleanup_restored_dirs():
    for mp in reversed(our_mounts):
        drive.umount(mp)
    our_mounts.clear()


# ---- experiments ------------------------------------------------------------------------------------
def spawn(c, argv, name, flags=ALLOW_LISTEN | SPAWN_EXTRA_FLAGS):
    i, _ = c.spawn(argv, name=name, flags=flags)
    evs = c.L.wait_for(i, {SPAWNED, SPAWN_FAILED})
    assert evs[-1][0] == SPAWNED, evs
    init = evs[-1][1]['PID']
    return i, init


def meta_of(init, sbname, images):
    """What the helper must record at checkpoint time to restore later (snapshot metadata)."""
    kids = [p for p in sandbox_pids(init) if p != init]
    cmd = kids[0]
    st = [l for l in os.listdir('/proc/%d/fd' % init)]
    status = [fd_link(init, int(fd)) for fd in st if fd_link(init, int(fd)).startswith('pipe:')]
    return {'stdin': fd_link(cmd, 0), 'stdout': fd_link(cmd, 1), 'stderr': fd_link(cmd, 2),
            'status': status[0] if status else None, 'init_fds': [fd_link(init, int(fd)) for fd in st],
            'mnt_ext': mount_externals(init), 'upper_tar': images + '/upper.tar', 'cmd': cmd}


def wait_count(c, i, at_least, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        out = b''.join(e[2] for e in c.L.events.get(i, []) if e[0] == OUTPUT and e[1] == 1)
        lines = [l for l in out.split(b'\n') if l.startswith(b'count')]
        if lines and int(lines[-1].split()[1]) >= at_least:
            return int(lines[-1].split()[1])
        time.sleep(0.05)
    raise AssertionError('counter did not reach %d: %r' % (at_least, out[-200:]))


def last_count(buf):
    lines = [l for l in buf.split(b'\n') if l.startswith(b'count')]
    return int(lines[-1].split()[1]) if lines else None


def tcp_query(pid):
    """Connect to 127.0.0.1:8080 inside the netns of `pid` (setns in a throw-away child)."""
    p = subprocess.run(['nsenter', '-t', str(pid), '-n', 'python3', '-S', '-c',
                        'import socket; s=socket.create_connection(("127.0.0.1",8080),2); print(s.recv(100).decode().strip())'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    return p.stdout.decode().strip()


def exp_counter(c, results):
    log('\n== 1. dump (kill) -> restore of a counter with a TCP listener, stdout via --inherit-fd')
    i, init = spawn(c, ['/usr/bin/python3', '-u', '-c', COUNTER], 'orig')
    n0 = wait_count(c, i, 3)
    images = WORK + '/img1'
    os.makedirs(images)
    meta = meta_of(init, 'orig', images)
    log('init', init, 'cmd', meta['cmd'], 'init fds', meta['init_fds'])
    log('mountinfo of the sandbox:\n  ' + '\n  '.join(
        ' '.join(l.split()[4:5] + l.split()[l.split().index('-') + 1:l.split().index('-') + 3])
        for l in open('/proc/%d/mountinfo' % init)))
    log('tcp before dump:', tcp_query(init))
    rc, ms = dump(init, images, leave_running=False, netns_external=False)
    log('dump ok %.1f ms, images %d bytes' % (ms, du(images)))
    results['dump_counter_ms'] = ms
    ev = c.L.wait_for(i, {EXIT}, 5)
    out = b''.join(e[2] for e in ev if e[0] == OUTPUT and e[1] == 1)
    before = last_count(out)
    log('original ended at count', before, 'exit', ev[-1][1])
    archive_upper(STATE + '/sb/orig', meta['upper_tar'])
    c.L.pop(i)
    c.cleanup('orig')
    r = restore(images, 'r1', meta)
    log('restore ok %.1f ms (fs from archive %.1f ms), restored init pid %d, its parent %s' % (
        r.ms, r.fs_ms, r.pid, open('/proc/%d/stat' % r.pid).read().split(')')[1].split()[1]))
    results['restore_counter_ms'] = r.ms
    buf = r.read_output(b'count %d ' % (before + 3))
    after = [int(l.split()[1]) for l in buf.split(b'\n') if l.startswith(b'count')]
    log('restored output first/last count:', after[:1], after[-1:], '(original stopped at %s)' % before)
    assert after and after[0] == before + 1, (before, after[:5])
    log('tcp after restore:', tcp_query(r.pid))
    p = subprocess.run(['nsenter', '-t', str(r.pid), '-m', 'cat', '/tmp/before'], stdout=subprocess.PIPE)
    log('/tmp/before after restore:', p.stdout)
    pdeath = open('/proc/%d/status' % r.pid).read()
    log('restored init parent is us:', os.getppid() != 0 and
        int(open('/proc/%d/stat' % r.pid).read().split(')')[1].split()[1]) == os.getpid())
    # the status pipe: SIGTERM -> init forwards -> command exits -> 4 bytes on our status pipe
    os.kill(r.pid, signal.SIGTERM)
    rr, _, _ = select.select([r.status_r], [], [], 5)
    st = os.read(r.status_r, 4) if rr else b''
    log('status pipe after SIGTERM:', st and os.WTERMSIG(struct.unpack('<I', st)[0]))
    _, wst = os.waitpid(r.pid, 0)
    log('waitpid(restored init) ->', wst, '(we are its parent)')
    started_pids.remove(r.pid)
    results['counter'] = 'ok'
    return images, meta


def exp_forks(images, meta, results, n=2):
    log('\n== 2. %d restores of one image at once, each in its own pid ns and netns' % n)
    rs = [restore(images, 'f%d' % k, meta, logname='restore-f%d.log' % k) for k in range(n)]
    for r in rs:
        buf = r.read_output(b'count', 5)
        log(r.name, 'pid', r.pid, 'pidns', ns_inode(r.pid, 'pid'), 'netns', ns_inode(r.pid, 'net'),
            'count', last_count(buf), 'tcp', tcp_query(r.pid), 'restore %.1f ms' % r.ms)
    assert len({ns_inode(r.pid, 'pid') for r in rs}) == n and len({ns_inode(r.pid, 'net') for r in rs}) == n
    for r in rs:
        kill_restored(r)
    results['forks'] = n


def exp_leave_running(c, results):
    log('\n== 3. dump --leave-running, the original keeps counting, the copy restores beside it')
    i, init = spawn(c, ['/usr/bin/python3', '-u', '-c', COUNTER], 'lr')
    wait_count(c, i, 2)
    images = WORK + '/img-lr'
    os.makedirs(images)
    meta = meta_of(init, 'lr', images)
    rc, ms = dump(init, images, leave_running=True, netns_external=False)
    archive_upper(STATE + '/sb/lr', meta['upper_tar'])
    n1 = wait_count(c, i, 0)
    n2 = wait_count(c, i, n1 + 2)
    log('leave-running dump %.1f ms; original still counting: %d -> %d' % (ms, n1, n2))
    r = restore(images, 'lr-copy', meta)
    buf = r.read_output(b'count', 5)
    log('copy restored (%.1f ms), counting: %s; original tcp: %s, copy tcp: %s' % (
        r.ms, last_count(buf), tcp_query(init), tcp_query(r.pid)))
    kill_restored(r)
    c.L.send(KILL, i, struct.pack('<Q', 9))
    c.L.wait_for(i, {EXIT}, 5)
    c.L.pop(i)
    c.cleanup('lr')
    results['leave_running'] = 'ok'


def exp_no_sibling(images, meta, results):
    log('\n== 4. restore -d WITHOUT -S: who is the parent, does PDEATHSIG kill the restored init?')
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as the launcher does
    r = restore(images, 'ns1', meta, sibling=False, logname='restore-nosib.log')
    time.sleep(0.3)
    alive = os.path.exists('/proc/%d' % r.pid)
    try:
        stat = open('/proc/%d/stat' % r.pid).read()
        state, ppid = stat.split(')')[1].split()[:2]
    except OSError:
        state, ppid = 'gone', '-'
    log('without -S: restored init alive=%s state=%s ppid=%s (we are %d)' % (alive, state, ppid, os.getpid()))
    try:
        pid, st = os.waitpid(r.pid, os.WNOHANG)
        log('  waitpid ->', pid, st, 'signal' if pid and os.WIFSIGNALED(st) else '', pid and os.WIFSIGNALED(st) and os.WTERMSIG(st))
    except ChildProcessError:
        log('  not our child')
    results['no_sibling'] = {'alive': alive, 'ppid': ppid}
    kill_restored(r)
    libc.prctl(36, 0, 0, 0, 0)


def exp_bench(c, results, n):
    log('\n== 5. idle python3 (-S, sleeping): dump + restore timings, image size (n=%d)' % n)
    dumps, rests, sizes = [], [], []
    for k in range(n):
        name = 'b%d' % k
        i, init = spawn(c, ['/usr/bin/python3', '-c', IDLE], name, flags=SPAWN_EXTRA_FLAGS)
        time.sleep(0.15)
        images = WORK + '/bench%d' % k
        os.makedirs(images)
        meta = meta_of(init, name, images)
        rc, ms = dump(init, images, leave_running=False, netns_external=False)
        dumps.append(ms)
        sizes.append(du(images))
        c.L.wait_for(i, {EXIT}, 5)
        archive_upper(STATE + '/sb/' + name, meta['upper_tar'])
        c.L.pop(i)
        c.cleanup(name)
        r = restore(images, 'br%d' % k, meta)
        rests.append(r.ms)
        kill_restored(r)
        if not KEEP:
            shutil.rmtree(images)
    cleanup_restored_dirs()
    q = lambda v, p: sorted(v)[min(len(v) - 1, int(len(v) * p))]
    log('dump    p50 %.1f ms p90 %.1f ms' % (q(dumps, .5), q(dumps, .9)))
    log('restore p50 %.1f ms p90 %.1f ms (criu restore only; +tar of the upper layer +overlay mount)' % (
        q(rests, .5), q(rests, .9)))
    log('images  p50 %.2f MB' % (q(sizes, .5) / 1e6))
    results['bench'] = {'dump_p50': q(dumps, .5), 'dump_p90': q(dumps, .9), 'restore_p50': q(rests, .5),
                        'restore_p90': q(rests, .9), 'image_mb': q(sizes, .5) / 1e6}


def main():
    global CRIU_BIN
    ap = argparse.ArgumentParser()
    ap.add_argument('--launcher', default=os.path.join(HERE, 'build', 'ai-sandbox-launcher-reexec'),
                    help='default: the patched copy from build-reexec-launcher.py (built when missing)')
    ap.add_argument('--criu', default='/opt/ai-sandbox/criu/sbin/criu')
    ap.add_argument('--bench', type=int, default=10)
    ap.add_argument('--keep-images', action='store_true')
    ap.add_argument('--only', default='')
    args = ap.parse_args()
    CRIU_BIN = args.criu
    global KEEP
    KEEP = args.keep_images
    results = {}
    L = None
    ok = True
    try:
        for d in (CG2, CGPIDS):
            os.makedirs(d)
        os.makedirs(WORK)
        ensure_criu_rundir()
        if not os.path.exists(args.launcher):
            subprocess.run([sys.executable, os.path.join(HERE, 'build-reexec-launcher.py')], check=True)
        L = drive.Launcher(os.path.abspath(args.launcher), STATE)
        skel = drive.build_skeleton(L)
        # The init re-executes itself from here, inside the sandbox (see build-reexec-launcher.py).
        os.makedirs(skel + '/.ai-sandbox', exist_ok=True)
        shutil.copy(args.launcher, skel + '/.ai-sandbox/launcher')
        c = drive.Ctx(L, skel)
        only = args.only.split(',') if args.only else ['counter', 'forks', 'lr', 'nosib', 'bench']
        images = meta = None
        if 'counter' in only:
            images, meta = exp_counter(c, results)
            cleanup_restored_dirs()
        if 'forks' in only and images:
            exp_forks(images, meta, results)
            cleanup_restored_dirs()
        if 'lr' in only:
            exp_leave_running(c, results)
            cleanup_restored_dirs()
        if 'nosib' in only and images:
            exp_no_sibling(images, meta, results)
            cleanup_restored_dirs()
        if 'bench' in only and args.bench:
            exp_bench(c, results, args.bench)
    except Exception:
        ok = False
        traceback.print_exc()
        if L:
            log('launcher log tail:\n  ' + '\n  '.join(L.log[-10:]))
    finally:
        for p in list(started_pids):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(p, 0)
            except ChildProcessError:
                for _ in range(100):
                    if not os.path.exists('/proc/%d' % p):
                        break
                    time.sleep(0.01)
        if L is not None:
            try:
                L.p.stdin.close()
                L.p.wait(10)
            except Exception:
                L.p.kill()
        if args.keep_images and os.path.isdir(WORK):
            keep = '/var/tmp/ai-sandbox-criu-proto-images-%d' % PID
            shutil.copytree(WORK, keep, symlinks=True)
            log('images and logs kept in', keep)
        cleanup_restored_dirs()
        drive.cleanup_env()
        for d in (os.path.dirname(CG2), os.path.dirname(CGPIDS)):
            try:
                os.rmdir(d)
            except OSError:
                pass
        if mounted_rundir:
            drive.umount(CRIU_RUNDIR)
    log('\nresults:', results)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
