/*
 * DUMP: checkpoint a running sandbox of ours. A child of the launcher (the "dumper") runs
 * `criu dump --leave-stopped` on the sandbox's init, then archives its writable layer with tar, and
 * reports {stage, code, criu time, tar time} on a pipe; DUMPED carries that to the helper. The tree
 * is left stopped either way (the archive and the images are one point in time): the helper then
 * continues it (SIGCONT) or ends it (KILL).
 *
 * Why the launcher and not the helper: forking the helper (a Node process of ~150 MB) to exec criu
 * and then tar cost 10-15 ms per checkpoint on this host (page tables are copied by hypercalls); the
 * launcher forks in well under a millisecond.
 *
 * Threat model: the plan comes from the helper; the pid dumped is the TARGET sandbox's init as the
 * launcher knows it (never a pid from the plan), the upper layer archived is that sandbox's, CRIU
 * must be a root-owned executable only root can write, and every string reaching criu's command line
 * has a checked form (absolute paths, `mnt[/PATH]:KEY`, KEY [a-zA-Z0-9-]+).
 */
#include "launcher.h"
#include "sandbox.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <poll.h>
#include <unistd.h>

/* what the dumper writes once, at its end (32 bytes: one atomic pipe write) */
struct dump_result {
	uint32_t stage; /* DUMP_DONE, else ST_CRIU_DUMP or ST_ARCHIVE (or a setup stage) */
	int32_t code;   /* criu's / tar's run_wait result (status, 256 + signal, -errno), or a setup stage's errno */
	uint64_t criu_ns, tar_ns;
	uint32_t skeleton, pad; /* the upper layer was the skeleton (upper_is_skeleton) when archived */
};
static bool dumped_skeleton; /* in the dumper */
static int skeleton_archive_copy(const char *upper, const char *archive);
static void skeleton_archive_keep(const char *upper, const char *archive);

struct dumper_args {
	int res_w;
	const char *criu, *upper, *archive;
	char **criu_argv;
};

/* `mnt[/PATH]:KEY` (the dump form; restore's is `mnt[KEY]:/PATH`) */
static bool dump_external_ok(struct str e)
{
	if (e.len < 4 + 1 + 3 || e.len > 4200 || memcmp(e.p, "mnt[/", 5))
		return false;
	const char *close = memchr(e.p + 4, ']', e.len - 4);
	if (!close || close + 2 >= e.p + e.len || close[1] != ':')
		return false;
	for (const char *c = e.p + 4; c < close; c++)
		if (*c == '\n' || *c == '\0')
			return false;
	struct str key = { close + 2, (uint32_t)(e.p + e.len - close - 2) };
	return tlv_key_ok(key);
}

static void dump_report(int fd, uint32_t stage, int32_t code, uint64_t criu_ns, uint64_t tar_ns) __attribute__((noreturn));
static void dump_report(int fd, uint32_t stage, int32_t code, uint64_t criu_ns, uint64_t tar_ns)
{
	struct dump_result r = { stage, code, criu_ns, tar_ns, dumped_skeleton, 0 };
	(void)!write(fd, &r, sizeof r);
	_exit(0);
}

static void dumper_main(struct dumper_args *a) __attribute__((noreturn));
static void dumper_main(struct dumper_args *a)
{
	int fd = a->res_w;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		dump_report(fd, ST_PDEATHSIG, errno, 0, 0);
	struct pollfd pf = { .fd = G.self_pidfd, .events = POLLIN };
	if (poll(&pf, 1, 0) > 0)
		_exit(1);
	/* stderr (the launcher's log) stays for criu's and tar's complaints; stdin/stdout are protocol */
	int keep[2] = { 2, fd };
	close_fds_except(keep, 2);
	int nul = open("/dev/null", O_RDWR);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0)
		dump_report(fd, ST_STDIO, errno, 0, 0);
	if (nul > 2)
		close(nul);
	char *ev[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
	uint64_t t0 = now_ns();
	int r = run_wait(a->criu, a->criu_argv, ev);
	uint64_t t1 = now_ns();
	if (r != 0)
		dump_report(fd, ST_CRIU_DUMP, r, t1 - t0, 0);
	dumped_skeleton = upper_is_skeleton(a->upper); /* the tree is stopped: the layer cannot change now */
	if (dumped_skeleton && skeleton_archive_copy(a->upper, a->archive) == 0)
		dump_report(fd, DUMP_DONE, 0, t1 - t0, now_ns() - t1);
	/* the flags restore.c extracts with */
	char *tav[] = { "tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-C", (char *)a->upper,
			"-cf", (char *)a->archive, ".", NULL };
	r = run_tar(tav, ev);
	if (!r && dumped_skeleton)
		skeleton_archive_keep(a->upper, a->archive);
	dump_report(fd, r ? ST_ARCHIVE : DUMP_DONE, r, t1 - t0, now_ns() - t1);
}

/* criu dump ... as one allocation: the pointer array, then the strings it needs (one free()) */
static char **dump_argv(pid_t pid, const char *images, const char *log, char **externals, uint32_t n_external,
			const char *net_key, const char **why)
{
	char pidbuf[16], net[64] = "";
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
	if (net_key) {
		char p[64], link[64];
		snprintf(p, sizeof p, "/proc/%d/ns/net", (int)pid);
		ssize_t n = readlink(p, link, sizeof link - 1);
		unsigned long long ino = 0;
		if (n <= 0 || (link[n] = 0, sscanf(link, "net:[%llu]", &ino) != 1)) {
			*why = "cannot read the sandbox's network namespace";
			return NULL;
		}
		snprintf(net, sizeof net, "net[%llu]:%s", ino, net_key);
	}
	const char *fixed[] = { "criu", "dump", "-t", pidbuf, "--images-dir", images, "-o", log, "-v2",
				"--tcp-established", "--file-locks", "--manage-cgroups=ignore", "--leave-stopped",
				"--network-lock", "skip", "--no-hw-breakpoints" /* patch 0009, docs/criu-notes.md */ };
	size_t nf = sizeof fixed / sizeof *fixed, n = nf + 2 * n_external + (net_key ? 2 : 0), bytes = 0;
	for (size_t i = 0; i < nf; i++)
		bytes += strlen(fixed[i]) + 1;
	for (uint32_t i = 0; i < n_external; i++)
		bytes += strlen("--external") + 1 + strlen(externals[i]) + 1;
	if (net_key)
		bytes += strlen("--external") + 1 + strlen(net) + 1;
	char **argv = malloc((n + 1) * sizeof *argv + bytes);
	if (!argv) {
		*why = "out of memory";
		return NULL;
	}
	char *s = (char *)(argv + n + 1);
	size_t k = 0;
#define ARG(x) (argv[k++] = strcpy(s, (x)), s += strlen(s) + 1)
	for (size_t i = 0; i < nf; i++)
		ARG(fixed[i]);
	if (net_key) {
		ARG("--external");
		ARG(net);
	}
	for (uint32_t i = 0; i < n_external; i++) {
		ARG("--external");
		ARG(externals[i]);
	}
#undef ARG
	argv[k] = NULL;
	return argv;
}

static int dump_plan_check(const struct plan *pl, const char **why)
{
	if (!HAVE(pl, T_TARGET) || !HAVE(pl, T_CRIU) || !HAVE(pl, T_IMAGES_DIR) || !HAVE(pl, T_LOG) ||
	    !HAVE(pl, T_UPPER_ARCHIVE)) {
		*why = "DUMP needs TARGET, CRIU, IMAGES_DIR, LOG, UPPER_ARCHIVE";
		return -EINVAL;
	}
	if (!tlv_abs_path_ok(pl->criu) || !tlv_abs_path_ok(pl->images_dir) || !tlv_abs_path_ok(pl->log) ||
	    !tlv_abs_path_ok(pl->upper_archive)) {
		*why = "CRIU, IMAGES_DIR, LOG and UPPER_ARCHIVE must be absolute paths";
		return -EINVAL;
	}
	if (pl->n_external > 64) {
		*why = "too many EXTERNAL";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < pl->n_external; i++)
		if (!dump_external_ok(pl->external[i])) {
			*why = "EXTERNAL must be mnt[/PATH]:KEY";
			return -EINVAL;
		}
	if (HAVE(pl, T_NET_KEY) && !tlv_key_ok(pl->net_key)) {
		*why = "NET_KEY must be [a-zA-Z0-9-]+, at most 64";
		return -EINVAL;
	}
	return 0;
}

void handle_dump(uint32_t id, struct plan *pl)
{
	const char *why = "";
	unsigned stage = ST_PLAN;
	int err = EINVAL, r, res[2] = { -1, -1 };
	char *criu = NULL, *images = NULL, *log = NULL, *archive = NULL, *net_key = NULL, *upper = NULL;
	char **externals = NULL, **argv = NULL;
	struct sandbox *t;
	struct stat st;

	if (sb_find(id)) {
		err = EEXIST;
		why = "id already in use";
		goto fail;
	}
	if ((r = dump_plan_check(pl, &why)) < 0) {
		err = -r;
		goto fail;
	}
	t = sb_find((uint32_t)pl->target);
	if (!t || t->kind != K_SANDBOX || t->state != S_RUNNING || !t->dir) {
		stage = ST_TARGET;
		err = ESRCH;
		why = "TARGET is not a running sandbox";
		goto fail;
	}
	criu = str_dup0(pl->criu);
	images = str_dup0(pl->images_dir);
	log = str_dup0(pl->log);
	archive = str_dup0(pl->upper_archive);
	net_key = HAVE(pl, T_NET_KEY) ? str_dup0(pl->net_key) : NULL;
	externals = strv_from(pl->external, pl->n_external);
	if (!criu || !images || !log || !archive || !externals || (HAVE(pl, T_NET_KEY) && !net_key) ||
	    asprintf(&upper, "%s/upper", t->dir) < 0) {
		upper = NULL;
		err = ENOMEM;
		goto fail;
	}
	if (stat(criu, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) || !(st.st_mode & 0100)) {
		err = EPERM;
		why = "CRIU must be a root-owned executable file writable only by root";
		goto fail;
	}
	if (stat(images, &st) < 0 || !S_ISDIR(st.st_mode)) {
		err = ENOTDIR;
		why = "IMAGES_DIR is not a directory";
		goto fail;
	}
	if (!(argv = dump_argv(t->pid, images, log, externals, pl->n_external, net_key, &why))) {
		err = EINVAL;
		goto fail;
	}
	if (pipe2(res, O_CLOEXEC) < 0 || fcntl(res[0], F_SETFL, O_NONBLOCK) < 0) {
		err = errno;
		stage = ST_PIPES;
		why = "pipe";
		goto fail;
	}
	struct dumper_args a = { .res_w = res[1], .criu = criu, .upper = upper, .archive = archive, .criu_argv = argv };
	pid_t pid = fork();
	if (pid == 0)
		dumper_main(&a);
	if (pid < 0) {
		err = errno;
		stage = ST_CLONE3;
		why = "fork";
		goto fail;
	}
	close(res[1]);
	res[1] = -1;
	int pidfd = sys_pidfd_open(pid);
	if (pidfd < 0) { /* cannot watch it: wait for it here (criu is bounded by the tree it dumps) */
		waitpid(pid, NULL, 0);
		err = errno ? errno : ESRCH;
		stage = ST_CLONE3;
		why = "pidfd_open";
		goto fail;
	}
	/* the result pipe is read once the dumper has exited */
	struct sandbox *sb = sb_start(&(struct sb_start){ .id = id, .kind = K_DUMP, .state = S_DUMPING, .pid = pid,
							  .pidfd = pidfd, .setup_fd = res[0], .status_fd = -1,
							  .stdio = { -1, -1, -1 } });
	if (!sb) {
		err = ENOMEM;
		stage = ST_CLONE3;
		why = "launcher table";
		goto fail;
	}
	res[0] = -1;
	sb->restore_log = log; /* its tail explains a failed dump */
	log = NULL;
	sb->archive = archive;
	archive = NULL;
	goto out;

fail:
	ev_dumped(id, stage, err, why, 0, 0);
out:
	if (res[0] >= 0)
		close(res[0]);
	if (res[1] >= 0)
		close(res[1]);
	free(criu);
	free(images);
	free(log);
	free(archive);
	free(net_key);
	free(upper);
	free(externals);
	free(argv);
}

/*
 * The archive of a skeleton upper layer (upper_is_skeleton: exactly the entries sandbox_upper_skeleton
 * and the init make, nothing added or changed) is the same for every sandbox over the same lower layers,
 * so one tar made is kept as <base>/skeleton-upper.tar (root's, 0600, replaced atomically by the dumper)
 * and later skeleton dumps copy it instead of running tar again (~5 ms of fork, exec and tar's start per
 * checkpoint here). What differs: the entries' times (the canned archive carries the first sandbox's),
 * the overlay's trusted.overlay.uuid on the root (a restore reuses its snapshot's anyway, as every
 * restore of one snapshot does) and the copied-up /tmp's trusted.overlay.origin, which names the lower
 * /tmp (another rootfs, another value). The origin is kept on the canned file as an xattr: a skeleton
 * over other lower layers gets its own tar, and replaces the canned archive.
 */
#define ORIGIN_XATTR "trusted.overlay.origin"
#define CANNED_XATTR "trusted.ai-sandbox.origin"

static const char *canned_path(void)
{
	static char p[4096];
	if (!p[0])
		snprintf(p, sizeof p, "%s/skeleton-upper.tar", G.base_dir);
	return p;
}

/* copy src to dst (created 0600, replaced if it exists): 0 or -errno, dst removed on failure */
static int copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), out = -1, r = 0;
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = in < 0 ? -errno : -EINVAL;
		goto done;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		r = -errno;
		goto done;
	}
	for (off_t off = 0; off < st.st_size;) {
		ssize_t n = sendfile(out, in, &off, (size_t)(st.st_size - off));
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
	}
	if (close(out) < 0 && !r)
		r = -errno;
	if (r)
		unlink(dst);
done:
	if (in >= 0)
		close(in);
	return r;
}

/* the origin xattr of <upper>/tmp (length 0 when there is none), -1 on another error */
static ssize_t tmp_origin(const char *upper, char *buf, size_t size)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/tmp", upper);
	ssize_t n = lgetxattr(p, ORIGIN_XATTR, buf, size);
	return n >= 0 ? n : errno == ENODATA ? 0 : -1;
}

/* 0 when the canned archive fits this skeleton upper layer and was copied to archive */
static int skeleton_archive_copy(const char *upper, const char *archive)
{
	char want[256], have[256];
	ssize_t nw = tmp_origin(upper, want, sizeof want), nh = getxattr(canned_path(), CANNED_XATTR, have, sizeof have);
	if (nw < 0 || nh != nw || memcmp(want, have, (size_t)nw))
		return -ENOENT;
	return copy_file(canned_path(), archive);
}

/* at start: a canned archive of an earlier launcher (maybe another version's skeleton) is not ours */
void skeleton_archive_reset(void) { unlink(canned_path()); }

/* in the dumper, after tar archived a skeleton layer: keep that archive as the canned one */
static void skeleton_archive_keep(const char *upper, const char *archive)
{
	char origin[256], part[PATH_MAX + 16];
	ssize_t n = tmp_origin(upper, origin, sizeof origin);
	snprintf(part, sizeof part, "%s.%d", canned_path(), (int)getpid());
	if (n < 0 || copy_file(archive, part) < 0)
		return;
	if (setxattr(part, CANNED_XATTR, origin, (size_t)n, 0) < 0 || rename(part, canned_path()) < 0)
		unlink(part);
}

#define SKELETON_MEMO 64
static struct skel_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
} skel[SKELETON_MEMO];
static unsigned skel_next;

static bool skel_id_of(const char *path, struct skel_id *id)
{
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	*id = (struct skel_id){ st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim };
	return true;
}

void skeleton_archive_remember(const char *path)
{
	struct skel_id id;
	if (skel_id_of(path, &id))
		skel[skel_next++ % SKELETON_MEMO] = id;
}

bool skeleton_archive_known(const char *path)
{
	struct skel_id id;
	if (!skel_id_of(path, &id))
		return false;
	for (unsigned i = 0; i < SKELETON_MEMO && i < skel_next; i++) {
		const struct skel_id *k = &skel[i];
		if (k->dev == id.dev && k->ino == id.ino && k->size == id.size && k->mtim.tv_sec == id.mtim.tv_sec &&
		    k->mtim.tv_nsec == id.mtim.tv_nsec && k->ctim.tv_sec == id.ctim.tv_sec && k->ctim.tv_nsec == id.ctim.tv_nsec)
			return true;
	}
	return false;
}

/* "<what> exited with N" / "killed by signal N" / "could not run, errno N" for a run_wait result */
static void run_result_text(char *out, size_t cap, const char *what, int32_t code)
{
	snprintf(out, cap, "%s %s %d", what, code >= 256 ? "killed by signal" : code < 0 ? "could not run, errno" : "exited with",
		 code >= 256 ? code - 256 : code < 0 ? -code : code);
}

/* The dumper exited: DUMPED with its record (or why there is none). */
void dump_done(struct sandbox *sb, int st)
{
	struct dump_result r;
	ssize_t n = read(sb->setup_fd, &r, sizeof r);
	char text[512] = "";
	if (n != (ssize_t)sizeof r) {
		snprintf(text, sizeof text, "the dumper ended without a result (status %d)", st);
		ev_dumped_text(sb->id, ST_CRIU_DUMP, EIO, text, 0, 0);
	} else if (r.stage == ST_CRIU_DUMP) {
		char tail[400], how[64];
		criu_log_tail(sb->restore_log, tail, sizeof tail);
		run_result_text(how, sizeof how, "criu dump", r.code);
		snprintf(text, sizeof text, "%s: %s", how, tail);
		ev_dumped_text(sb->id, r.stage, EIO, text, r.criu_ns, r.tar_ns);
	} else if (r.stage == ST_ARCHIVE) {
		run_result_text(text, sizeof text, "tar of the upper layer", r.code);
		ev_dumped_text(sb->id, r.stage, EIO, text, r.criu_ns, r.tar_ns);
	} else if (r.stage != DUMP_DONE) {
		ev_dumped(sb->id, r.stage, r.code, "dumper", r.criu_ns, r.tar_ns);
	} else {
		if (r.skeleton && sb->archive)
			skeleton_archive_remember(sb->archive);
		ev_dumped_text(sb->id, DUMP_DONE, 0, "", r.criu_ns, r.tar_ns);
	}
	sb_release(sb);
}
