/*
 * RESTORE: continue a CRIU image set (dumped from a sandbox's init by the helper) as a new sandbox
 * that the launcher owns exactly like a SPAWNed one (OUTPUT / STDIN / KILL / EXIT / EXEC work the same).
 *
 * Launcher side: validate, mount the tmpfs (upper/ work/ root/) and create the status pipe (hostsetup.c,
 * as for SPAWN, minus the init binary), create new stdio pipes (our ends kept as for SPAWN), and clone3 a *restorer* into CGROUP2 (CLONE_INTO_CGROUP). The restorer
 * joins the v1 CGROUP_PROCS, extracts UPPER_ARCHIVE into upper/ (tar; an archive this launcher dumped
 * from a skeleton layer is made again instead, see dump.c), refuses it if it brought any
 * /.ai-sandbox entry (the init binary is the shared top lower layer's, initbin.c), unshares a private mount namespace (rslave) and mounts the
 * fresh overlay on root/ there (the host never sees it), puts the new pipes' sandbox ends on fds
 * 100-103 and execs `criu restore -d -S --manage-cgroups=ignore ...`. With -S (restore-sibling) criu
 * creates the restored init with CLONE_PARENT: it is the launcher's child, its restored PDEATHSIG is
 * tied to us, and we wait for it like any init. With --manage-cgroups=ignore the restored tasks stay
 * in the cgroups criu runs in: the ones we cloned the restorer into (and in the cgroup namespace the
 * restorer unshares there). When criu exits 0 we read its
 * pidfile, open a pidfd, check the init is our child, set HOSTNAME in its UTS namespace and send
 * SPAWNED with the new pipes' names. Several RESTOREs (of one image or not) run at once: each is an
 * independent restorer, and the event loop never waits for one.
 *
 * Threat model: the helper is trusted for policy; its paths are checked for shape here (CRIU must be a
 * root-owned executable nobody else can write: we exec it as root in the sandbox's cgroups; IMAGES_DIR
 * a directory, UPPER_ARCHIVE a regular file, LOG absolute; INHERIT / EXTERNAL values in exactly the
 * forms we generate, so nothing else reaches criu's option parser). The archive and the images were
 * produced from a sandbox and may carry whatever the sandbox wrote: tar (GNU, as root) refuses
 * absolute and `..` members and defers symlinks; it may hold no .ai-sandbox entry at all (which would
 * shadow the shared, immutable init layer), and its upper/dev may hold no device node but the six
 * the launcher makes (the root overlay is nodev, /dev is not: see mount_dev). NET_KEY is checked for
 * shape like EXTERNAL keys; the namespace behind it is always one we made (pool or unshare), never a
 * path from the request, and we enter it only to raise lo. The restored processes come back with their dumped seccomp filters, namespaces, capabilities
 * and no_new_privs; CRIU 4.2.1 does not restore Landlock domains, so a restored sandbox runs without
 * its Landlock layer. The restorer holds no host fds but stderr and the new pipes; criu gets /dev/null
 * as stdin/stdout. On any failure the event goes out only once nothing is left: restored tasks killed
 * and reaped, tmpfs unmounted, directory removed.
 */
#include "sandbox.h"
#include "initloop.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#define INHERIT_FD0 100 /* criu sees stdin, stdout, stderr, status pipe on 100..103 */
#define NETNS_FD 104    /* and with NET_KEY the fresh network namespace on 104 */
#define PIDFILE "restore.pid"
static const char *const roles[4] = { "stdin", "stdout", "stderr", "status" };

struct restorer_args {
	int setup_w, pipe[4]; /* the new pipes' sandbox ends: stdin read, stdout/stderr/status write */
	int netns_fd;         /* NET_KEY: a pooled netns, or -1 (NET_KEY: make one; none: criu restores the image's) */
	bool net_key;
	bool skeleton;        /* the archive holds only the skeleton layer: make it, skip tar (dump.c) */
	struct cgroup_fds cg; /* the v1 cgroup.procs files to join (CGROUP2: joined at clone3) */
	const char *dir, *archive, *overlay_opts, *criu;
	char **criu_argv;
};

/* `pipe:[N]` with N decimal, nothing else */
static bool pipe_name_ok(const char *s, size_t n)
{
	if (n < 8 || n > 30 || memcmp(s, "pipe:[", 6) || s[n - 1] != ']')
		return false;
	for (size_t i = 6; i < n - 1; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* `mnt[KEY]:PATH`, KEY [a-zA-Z0-9-]+, PATH absolute: what the sandbox had bound from the host, the
 * /proc masks (PATH /dev/null) and the user's --mount sources, which the helper checked against its
 * mount policy before asking. */
static bool external_ok(struct str e)
{
	size_t i = 4;
	if (e.len < 4 + 1 + 3 || e.len > 4200 || memcmp(e.p, "mnt[", 4))
		return false;
	while (i < e.len && (isalnum((unsigned char)e.p[i]) || e.p[i] == '-'))
		i++;
	if (i == 4 || i + 2 >= e.len || e.p[i] != ']' || e.p[i + 1] != ':' || e.p[i + 2] != '/')
		return false;
	for (size_t j = i + 2; j < e.len; j++)
		if (e.p[j] == ']' || e.p[j] == '\n' || e.p[j] == '\0')
			return false;
	return true;
}

/* NET_KEY: [a-zA-Z0-9-]+, at most 64 */
bool tlv_key_ok(struct str k)
{
	if (!k.len || k.len > 64)
		return false;
	for (uint32_t i = 0; i < k.len; i++)
		if (!isalnum((unsigned char)k.p[i]) && k.p[i] != '-')
			return false;
	return true;
}

bool tlv_abs_path_ok(struct str s)
{
	return s.len > 1 && s.len < 4000 && s.p[0] == '/' && !memchr(s.p, '\n', s.len);
}

/* Everything a RESTORE plan must satisfy before we touch host state. inherit[i] gets the pipe name
 * for roles[i]. */
static int restore_plan_check(const struct plan *pl, const char *inherit[4], const char **why)
{
	if (!pl->n_lower || !HAVE(pl, T_SANDBOX_DIR) || !HAVE(pl, T_TMPFS_BYTES) || !HAVE(pl, T_CGROUP2) ||
	    !HAVE(pl, T_IMAGES_DIR) || !HAVE(pl, T_UPPER_ARCHIVE) || !HAVE(pl, T_CRIU) || !HAVE(pl, T_HOSTNAME) ||
	    !HAVE(pl, T_LOG)) {
		*why = "RESTORE needs SANDBOX_DIR, TMPFS_BYTES, CGROUP2, LOWER, IMAGES_DIR, UPPER_ARCHIVE, CRIU, "
		       "INHERIT, HOSTNAME, LOG";
		return -EINVAL;
	}
	if (pl->tmpfs_bytes == 0 || pl->n_procs > MAX_CGROUP_PROCS || pl->hostname.len > 64 || pl->n_external > 64) {
		*why = "bad TMPFS_BYTES, HOSTNAME, or too many CGROUP_PROCS / EXTERNAL";
		return -EINVAL;
	}
	if (!tlv_abs_path_ok(pl->images_dir) || !tlv_abs_path_ok(pl->upper_archive) || !tlv_abs_path_ok(pl->criu) ||
	    !tlv_abs_path_ok(pl->log)) {
		*why = "IMAGES_DIR, UPPER_ARCHIVE, CRIU and LOG must be absolute paths";
		return -EINVAL;
	}
	for (int i = 0; i < 4; i++)
		inherit[i] = NULL;
	for (uint32_t k = 0; k < pl->n_inherit; k++) {
		struct str s = pl->inherit[k];
		const char *eq = memchr(s.p, '=', s.len);
		int role = -1;
		for (int i = 0; eq && i < 4; i++)
			if ((size_t)(eq - s.p) == strlen(roles[i]) && !memcmp(s.p, roles[i], strlen(roles[i])))
				role = i;
		if (role < 0 || inherit[role] || !pipe_name_ok(eq + 1, s.len - (size_t)(eq + 1 - s.p))) {
			*why = "INHERIT must be stdin=, stdout=, stderr=, status=pipe:[N], each once";
			return -EINVAL;
		}
		inherit[role] = eq + 1;
	}
	for (int i = 0; i < 4; i++)
		if (!inherit[i]) {
			*why = "INHERIT must name all of stdin, stdout, stderr, status";
			return -EINVAL;
		}
	if (HAVE(pl, T_NET_KEY) && !tlv_key_ok(pl->net_key)) {
		*why = "NET_KEY must be [a-zA-Z0-9-]+, at most 64 bytes";
		return -EINVAL;
	}
	for (uint32_t k = 0; k < pl->n_external; k++)
		if (!external_ok(pl->external[k])) {
			*why = "EXTERNAL must be mnt[KEY]:/absolute/path with KEY of [a-zA-Z0-9-]";
			return -EINVAL;
		}
	return validate_lowers(pl, why);
}

/* Host paths, now that the plan has the right shape. */
static int restore_paths_check(const char *images, const char *archive, const char *criu, const char *log,
			       const char **why)
{
	struct stat st;
	if (stat(criu, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) ||
	    !(st.st_mode & 0100)) {
		*why = "CRIU must be a root-owned executable file writable only by root";
		return -EPERM;
	}
	if (stat(images, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*why = "IMAGES_DIR is not a directory";
		return -ENOTDIR;
	}
	if (stat(archive, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = "UPPER_ARCHIVE is not a regular file";
		return -ENOENT;
	}
	if (lstat(log, &st) == 0 && !S_ISREG(st.st_mode)) {
		*why = "LOG exists and is not a regular file";
		return -EINVAL;
	}
	return 0;
}

static void restorer_main(void *arg) __attribute__((noreturn));
static void restorer_main(void *arg)
{
	struct restorer_args *a = arg;
	int sfd = a->setup_w;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(sfd, ST_PDEATHSIG, errno);
	struct pollfd pf = { .fd = G.self_pidfd, .events = POLLIN };
	if (poll(&pf, 1, 0) > 0)
		_exit(1);
	/* stderr (the launcher's log) stays for tar's and criu's complaints; stdin/stdout are the protocol
	 * pipes and must not reach them */
	int keep[8 + MAX_CGROUP_PROCS] = { 2, sfd, a->pipe[0], a->pipe[1], a->pipe[2], a->pipe[3], a->netns_fd };
	close_fds_except(keep, cgroup_fds_keep(&a->cg, keep, a->netns_fd >= 0 ? 7 : 6));
	int nul = open("/dev/null", O_RDWR);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0)
		child_fail(sfd, ST_STDIO, errno);
	if (nul > 2)
		close(nul);
	cgroup_fds_join(&a->cg, sfd);
	/* With --manage-cgroups=ignore criu leaves cgroup namespaces alone too: the restored tasks keep
	 * ours. Rooted here, after the joins, it shows the sandbox its own cgroups as "/" like a SPAWN. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		child_fail(sfd, ST_CGROUP_PROCS, errno);

	/* the writable layer as it was at checkpoint time (flags as the helper's archive step) */
	char upper[4096];
	snprintf(upper, sizeof upper, "%s/upper", a->dir);
	char *av[] = { "tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-xf", (char *)a->archive,
		       "-C", upper, NULL };
	char *tar_ev[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
	TMARK(31);
	int r = a->skeleton ? sandbox_upper_skeleton(a->dir) : run_tar(av, tar_ev);
	TMARK(32);
	if (r < 0)
		child_fail(sfd, ST_ARCHIVE, -r);
	if (r != 0)
		child_fail(sfd, ST_ARCHIVE, r == 127 ? ENOENT : EIO);
	/* the init binary is not in the archive (the shared top lower layer provides it): an archive that
	 * brings any .ai-sandbox entry would shadow it, and is refused */
	if ((r = initbin_archive_check(a->dir)) < 0)
		child_fail(sfd, ST_ARCHIVE, -r);
	if ((r = sandbox_upper_dev_verify(a->dir)) < 0)
		child_fail(sfd, ST_ARCHIVE, -r);

	/* NET_KEY: the sandbox's network namespace is a fresh one (pooled, else made here) with `lo` up
	 * before criu binds the restored sockets in it (127.0.0.1 is not local while lo is down). We
	 * enter it only to raise lo and come back: criu itself runs in ours, as without NET_KEY. */
	if (a->net_key) {
		int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			child_fail(sfd, ST_SETNS_NETNS, errno);
		if (a->netns_fd < 0) {
			if (unshare(CLONE_NEWNET) < 0 || (a->netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
				child_fail(sfd, ST_SETNS_NETNS, errno);
		} else if (setns(a->netns_fd, CLONE_NEWNET) < 0) {
			child_fail(sfd, ST_SETNS_NETNS, errno);
		}
		loopback_up(sfd);
		if (setns(self, CLONE_NEWNET) < 0)
			child_fail(sfd, ST_SETNS_NETNS, errno);
		close(self);
	}

	/* criu's own mount namespace: the fresh overlay exists only there and in the restored sandbox */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		child_fail(sfd, ST_MOUNT_RSLAVE, errno);
	char root[4096];
	snprintf(root, sizeof root, "%s/root", a->dir);
	if (mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV, a->overlay_opts) < 0)
		child_fail(sfd, ST_MOUNT_OVERLAY, errno);

	/* the pipes onto 100..103 (and the netns onto 104); moved above that range first, so no dup2
	 * clobbers a source */
	if (a->netns_fd >= 0) {
		int t = fcntl(a->netns_fd, F_DUPFD_CLOEXEC, NETNS_FD + 1);
		if (t < 0)
			child_fail(sfd, ST_SETNS_NETNS, errno);
		close(a->netns_fd);
		a->netns_fd = t;
	}
	int tmp[4];
	for (int i = 0; i < 4; i++)
		if ((tmp[i] = fcntl(a->pipe[i], F_DUPFD_CLOEXEC, NETNS_FD + 1)) < 0)
			child_fail(sfd, ST_PIPES, errno);
	for (int i = 0; i < 4; i++) {
		close(a->pipe[i]);
		if (dup2(tmp[i], INHERIT_FD0 + i) < 0) /* dup2: the new fd is not CLOEXEC */
			child_fail(sfd, ST_PIPES, errno);
		close(tmp[i]);
	}
	if (a->netns_fd >= 0) {
		if (dup2(a->netns_fd, NETNS_FD) < 0) /* moved above 104 with the pipes; dup2: not CLOEXEC */
			child_fail(sfd, ST_SETNS_NETNS, errno);
		close(a->netns_fd);
	}
	if (sfd < 3 || (sfd >= INHERIT_FD0 && sfd <= NETNS_FD)) /* cannot be: 0-2 and 100-104 are taken */
		_exit(127);
	char *ev[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
	TMARK(33);
	execve(a->criu, a->criu_argv, ev); /* success closes the CLOEXEC setup pipe: criu's exit status rules */
	child_fail(sfd, ST_CRIU_RESTORE, errno);
}

/* criu restore -d -S ... : the pointer array and the strings it needs in one allocation (one free()).
 * Every other string is owned by the caller and outlives the restorer's exec. */
static char **criu_argv(const char *dir, const char *images, const char *log, const char *inherit[4],
			char **externals, uint32_t n_external, const char *net_key)
{
	size_t nptr = 32 + 2 * (size_t)n_external, nstr = 2 * (strlen(dir) + 16) + 5 * 48 + 64;
	char **v = malloc(nptr * sizeof *v + nstr);
	if (!v)
		return NULL;
	char *b = (char *)(v + nptr);
	size_t k = 0;
#define ARG(s) (v[k++] = (char *)(s))
#define FMT(...) (v[k++] = b, b += sprintf(b, __VA_ARGS__) + 1)
	ARG("criu"), ARG("restore"), ARG("-d"), ARG("-S");
	ARG("--root"), FMT("%s/root", dir);
	ARG("--images-dir"), ARG(images), ARG("-o"), ARG(log), ARG("-v2");
	ARG("--pidfile"), FMT("%s/" PIDFILE, dir);
	/* No --network-lock: criu restore ignores it and uses the method recorded by the dump (see
	 * docs/launcher-protocol.md, "Restore"). */
	ARG("--tcp-established"), ARG("--file-locks");
	ARG("--manage-cgroups=ignore");
	/* our patch 0009: trace the restorer to its sigreturn instead of a hardware breakpoint, whose
	 * first use after ~1 s costs the kernel 6-12 ms here (docs/criu-notes.md) */
	ARG("--no-hw-breakpoints");
	for (int i = 0; i < 4; i++) /* the names are checked: pipe:[digits], at most 30 bytes */
		ARG("--inherit-fd"), FMT("fd[%d]:%.*s", INHERIT_FD0 + i, (int)(strchr(inherit[i], ']') - inherit[i] + 1),
					 inherit[i]);
	for (uint32_t i = 0; i < n_external; i++)
		ARG("--external"), ARG(externals[i]);
	if (net_key) /* checked: [a-zA-Z0-9-]{1,64} */
		ARG("--inherit-fd"), FMT("fd[%d]:%s", NETNS_FD, net_key);
#undef ARG
#undef FMT
	v[k] = NULL;
	return v;
}

void handle_restore(uint32_t id, struct plan *pl, uint64_t recv_ns)
{
	const char *why = "", *inherit[4];
	unsigned stage = ST_PLAN;
	int err = EINVAL, r, par[3] = { -1, -1, -1 }, chi[3] = { -1, -1, -1 };
	char *opts = NULL, *images = NULL, *archive = NULL, *criu = NULL, *log = NULL, *hostname = NULL,
	     *net_key = NULL, **externals = NULL, **argv = NULL;
	struct host_setup h;
	host_setup_init(&h);
	struct restorer_args a;
	memset(&a, 0, sizeof a);
	a.netns_fd = -1;

	if (sb_find(id)) {
		err = EEXIST;
		why = "id already in use";
		goto fail;
	}
	if ((r = restore_plan_check(pl, inherit, &why)) < 0) {
		err = -r;
		goto fail;
	}
	images = str_dup0(pl->images_dir);
	archive = str_dup0(pl->upper_archive);
	criu = str_dup0(pl->criu);
	log = str_dup0(pl->log);
	hostname = str_dup0(pl->hostname);
	externals = strv_from(pl->external, pl->n_external);
	net_key = HAVE(pl, T_NET_KEY) ? str_dup0(pl->net_key) : NULL;
	if (!images || !archive || !criu || !log || !hostname || !externals || (HAVE(pl, T_NET_KEY) && !net_key)) {
		err = ENOMEM;
		goto fail;
	}
	if ((r = restore_paths_check(images, archive, criu, log, &why)) < 0) {
		err = -r;
		goto fail;
	}
	if ((r = host_setup_dir(&h, pl, &stage, &why)) < 0) {
		err = -r;
		goto fail;
	}
	if (!(opts = overlay_options(pl, h.dir, &why)) ||
	    !(argv = criu_argv(h.dir, images, log, inherit, externals, pl->n_external, net_key))) {
		err = opts ? ENOMEM : EINVAL;
		goto fail;
	}
	/* no upper/dev made: the archive brings it; the init binary is the shared lower layer's */
	if ((r = host_setup_open(&h, pl, NULL, false, &stage, &why)) < 0 ||
	    (r = make_stdio(false, 0, 0, par, chi)) < 0) {
		err = -r;
		goto fail;
	}
	a.setup_w = h.setup[1];
	a.pipe[0] = chi[0];
	a.pipe[1] = chi[1];
	a.pipe[2] = chi[2];
	a.pipe[3] = h.status[1];
	a.cg = h.cg;
	a.dir = h.dir;
	a.archive = archive;
	if ((a.skeleton = skeleton_archive_known(archive)))
		logmsg("RESTORE %u: the archive is a skeleton layer this launcher dumped: made, not extracted", id);
	a.overlay_opts = opts;
	a.criu = criu;
	a.criu_argv = argv;
	a.net_key = net_key != NULL;
	if (a.net_key)
		a.netns_fd = h.netns_fd = netns_pool_take(); /* -1: the restorer makes one */
	int pidfd = -1;
	TMARK(30);
	pid_t pid = host_setup_clone(&h, 0, &pidfd, restorer_main, &a);
	if (pid < 0) {
		stage = ST_CLONE3;
		err = -pid;
		why = "clone3";
		goto fail;
	}
	close_stdio(chi);
	/* the setup pipe is not watched: read once the restorer has exited */
	struct sandbox *sb = sb_start(&(struct sb_start){
		.id = id, .kind = K_SANDBOX, .state = S_RESTORING, .pid = pid, .pidfd = pidfd, .setup_fd = h.setup[0],
		.status_fd = h.status[0], .stdio = { par[0], par[1], par[2] }, .recv_ns = recv_ns });
	if (!sb) {
		err = ENOMEM;
		stage = ST_CLONE3;
		goto fail;
	}
	sb->restore_log = log;
	sb->restore_hostname = hostname;
	log = hostname = NULL;
	host_setup_commit(&h, sb); /* also closes the pooled netns: the restorer's now, never reused */
	goto out;

fail:
	close_stdio(par);
	close_stdio(chi);
	host_setup_undo(&h);
	ev_spawn_failed(id, stage, err, why);
out:
	free(opts);
	free(images);
	free(archive);
	free(criu);
	free(log);
	free(hostname);
	free(externals);
	free(net_key);
	free(argv);
}

/* ------------------------------------------------------------------ after the restorer exited */

/* The last error lines of criu's log, "(00.012345) Error (...): text" -> "Error (...): text", joined
 * with " | ", into out (bounded). */
void criu_log_tail(const char *path, char *out, size_t cap)
{
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(out, cap, "no criu log at %s", path);
		return;
	}
	static char buf[32768];
	off_t end = lseek(fd, 0, SEEK_END), off = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
	ssize_t n = pread(fd, buf, sizeof buf - 1, off);
	close(fd);
	if (n <= 0) {
		snprintf(out, cap, "empty criu log %s", path);
		return;
	}
	buf[n] = 0;
	const char *lines[3] = { NULL, NULL, NULL };
	size_t lens[3] = { 0, 0, 0 };
	int k = 0;
	for (char *l = buf, *nl; l && *l; l = nl ? nl + 1 : NULL) {
		nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (!memmem(l, len, "Error", 5) && !memmem(l, len, "rror (", 6))
			continue;
		if (l[0] == '(') { /* drop the timestamp */
			char *p = memchr(l, ')', len);
			if (p) {
				len -= (size_t)(p + 1 - l);
				l = p + 1;
				while (len && *l == ' ')
					l++, len--;
			}
		}
		lines[k % 3] = l;
		lens[k % 3] = len;
		k++;
	}
	size_t o = 0;
	for (int i = k > 3 ? k - 3 : 0; i < k && o + 4 < cap; i++) {
		int w = snprintf(out + o, cap - o, "%s%.*s", o ? " | " : "", (int)lens[i % 3], lines[i % 3]);
		o += w > 0 ? (size_t)w : 0;
	}
	if (!k)
		snprintf(out, cap, "criu failed without an error line; log %s", path);
	else if (o + 8 < cap)
		snprintf(out + o, cap - o, " (log %s)", path);
}

static pid_t parent_of(pid_t pid)
{
	char p[64], b[512];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return -1;
	b[n] = 0;
	char *rp = strrchr(b, ')'); /* comm may contain anything but ends at the last ')' */
	int ppid;
	return rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/* Does /proc/PID/cgroup put pid in the cgroup2 directory `dir` (a path under the cgroup2 mount)? */
static bool in_cgroup2(pid_t pid, const char *dir)
{
	char p[64], b[4096];
	snprintf(p, sizeof p, "/proc/%d/cgroup", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return false;
	b[n] = 0;
	char *l = strstr(b, "\n0::");
	l = l ? l + 1 : (strncmp(b, "0::", 3) ? NULL : b);
	if (!l)
		return false;
	l += 3;
	char *e = strchr(l, '\n');
	if (e)
		*e = 0;
	size_t dl = strlen(dir), ll = strlen(l);
	return ll > 1 && dl >= ll && !strcmp(dir + dl - ll, l) && (dl == ll || dir[dl - ll - 1] == '/' || l[0] == '/');
}

/*
 * A failed or interrupted restore may leave restored tasks behind: criu kills its tree on failure,
 * but with -S the root task is OUR child (a zombie to reap) and a criu killed mid-restore leaves its
 * tasks waiting forever. Kill and reap every child of ours in this restore's cgroup2 directory that is
 * not a known sandbox/exec/restorer; skipped while another RESTORE into the same directory is running
 * (its tasks would look the same).
 */
void restore_kill_strays(const struct sandbox *sb)
{
	if (!sb->cgroup2)
		return;
	char p[64], b[8192];
	snprintf(p, sizeof p, "/proc/self/task/%d/children", (int)getpid());
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return;
	b[n] = 0;
	for (char *s = b, *e; *s; s = e) {
		long pid = strtol(s, &e, 10);
		if (e == s)
			break;
		if (pid <= 0 || pid == sb->pid || sb_pid_known((pid_t)pid) || !in_cgroup2((pid_t)pid, sb->cgroup2))
			continue;
		logmsg("RESTORE %u: killing left-over restored task %ld", sb->id, pid);
		int pfd = sys_pidfd_open((pid_t)pid);
		if (pfd >= 0) {
			sys_pidfd_send_signal(pfd, SIGKILL);
			close(pfd);
		}
		waitpid((pid_t)pid, NULL, 0); /* a pid-ns init: returns once its namespace is gone */
	}
}

static bool other_restore_into(const struct sandbox *sb);

static void restore_fail(struct sandbox *sb, unsigned stage, int err, const char *text)
{
	if (!other_restore_into(sb))
		restore_kill_strays(sb);
	if (sb->dir)
		sandbox_tmpfs_destroy(sb->dir); /* MNT_DETACH: gone from the host even if a dying task holds it */
	logmsg("RESTORE %u failed at %s: %s", sb->id, stage_name(stage), text);
	ev_spawn_failed_text(sb->id, stage, err, text);
	sb_release(sb);
}

static bool other_restore_into(const struct sandbox *sb) { return sb_restoring_into(sb, sb->cgroup2); }

void restore_done(struct sandbox *sb, int st)
{
	TMARK(34);
	char text[512];
	uint32_t rec[2];
	ssize_t n = read(sb->setup_fd, rec, sizeof rec);
	sb_close(&sb->setup_fd);
	sb_close(&sb->pidfd); /* the restorer's */
	if (n == (ssize_t)sizeof rec) { /* the restorer failed before exec'ing criu */
		snprintf(text, sizeof text, "%s: %s", stage_name(rec[0]), strerror((int)rec[1]));
		restore_fail(sb, rec[0], (int)rec[1], text);
		return;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char tail[400];
		criu_log_tail(sb->restore_log, tail, sizeof tail);
		if (WIFEXITED(st))
			snprintf(text, sizeof text, "criu restore exited with %d: %s", WEXITSTATUS(st), tail);
		else
			snprintf(text, sizeof text, "criu restore killed by signal %d: %s", WTERMSIG(st), tail);
		restore_fail(sb, ST_CRIU_RESTORE, EIO, text);
		return;
	}
	/* criu exited 0: its pidfile names the restored init, which -S made our child */
	char p[4096], b[32];
	snprintf(p, sizeof p, "%s/" PIDFILE, sb->dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t k = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
	if (fd >= 0)
		close(fd);
	long pid = 0;
	if (k > 0) {
		b[k] = 0;
		pid = strtol(b, NULL, 10);
	}
	int pidfd = pid > 0 ? sys_pidfd_open((pid_t)pid) : -1;
	if (pidfd < 0 || parent_of((pid_t)pid) != getpid()) {
		snprintf(text, sizeof text, "restored init %ld: %s", pid,
			 pidfd < 0 ? "no pidfile or no such process" : "is not the launcher's child");
		if (pidfd >= 0)
			close(pidfd);
		restore_fail(sb, ST_RESTORED_INIT, ESRCH, text);
		return;
	}
	unlink(p);
	sb->pid = (pid_t)pid;
	sb->pidfd = pidfd;
	/* HOSTNAME: enter the restored UTS namespace and come back (single thread; nothing else runs in
	 * between). Fatal for us if we cannot come back: later sandboxes would see the wrong namespace. */
	int herr = 0;
	if (setns(pidfd, CLONE_NEWUTS) < 0) {
		herr = errno;
	} else {
		if (sethostname(sb->restore_hostname, strlen(sb->restore_hostname)) < 0)
			herr = errno;
		if (setns(G.self_utsns_fd, CLONE_NEWUTS) < 0) {
			logmsg("fatal: cannot return to our UTS namespace: %s", strerror(errno));
			_exit(1);
		}
	}
	if (herr) {
		snprintf(text, sizeof text, "sethostname in the restored sandbox: %s", strerror(herr));
		sys_pidfd_send_signal(pidfd, SIGKILL);
		waitpid(sb->pid, NULL, 0);
		restore_fail(sb, ST_SETHOSTNAME, herr, text);
		return;
	}
	sb_set_state(sb, S_RUNNING);
	sb_watch(sb, sb->pidfd, R_PIDFD, EPOLLIN);
	sb_watch(sb, sb->status_fd, R_STATUS, EPOLLIN);
	ev_spawned(sb);
#ifdef LAUNCHER_TIMING
	logmsg("timing: restore clone %.3f joins %.3f tar %.3f prep %.3f criu+exit %.3f after %.3f", (tmark[30] - sb->recv_ns) / 1e6, (tmark[31] - tmark[30]) / 1e6, (tmark[32] - tmark[31]) / 1e6, (tmark[33] - tmark[32]) / 1e6, (tmark[34] - tmark[33]) / 1e6, (now_ns() - tmark[34]) / 1e6);
#endif
}
