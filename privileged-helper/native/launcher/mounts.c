/*
 * Mounts: the launcher's state-dir tmpfs, per-sandbox tmpfs, the sandbox root built inside the init,
 * and the control requests CLEANUP / UMOUNT / MARK.
 *
 * Threat model: the helper names host paths (SANDBOX_DIR, LOWER, MOUNT sources, PATH); it is trusted
 * for policy but a bug or a confused request must not make us mount over, unmount or write host paths
 * outside <state-dir>. So every host path we mount ON or remove is resolved with realpath() and must
 * be a direct child of <state-dir>/sb (SANDBOX_DIR), under <state-dir>/sb (UMOUNT) or under
 * <state-dir>/base (MARK), and the final component must not be a symlink. Paths INSIDE the sandbox
 * root (proc, dev, sys, tmp, MOUNT destinations) come from layers that may hold untrusted symlinks
 * (e.g. an image layer with /tmp -> /etc): they are resolved with openat2(RESOLVE_IN_ROOT) against the
 * new root and mounted through /proc/self/fd, so a symlink can never point a mount at a host path.
 * Everything inside the init happens before any sandboxed code runs.
 */
#include "launcher.h"
#include "initloop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
struct mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* ------------------------------------------------------------------ state dir (startup) */

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

/* Is the topmost mount at `path` a tmpfs? (last matching line of mountinfo is the top one) */
static int top_mount_is_tmpfs(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	while (getline(&line, &cap, f) > 0) {
		char *save, *fld[5] = { 0 };
		char *tok = strtok_r(line, " ", &save);
		for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " ", &save))
			fld[i] = tok;
		if (!fld[4])
			continue;
		unescape_octal(fld[4]);
		if (strcmp(fld[4], path) != 0)
			continue;
		while (tok && strcmp(tok, "-") != 0) /* optional fields end at "-" */
			tok = strtok_r(NULL, " ", &save);
		char *fstype = tok ? strtok_r(NULL, " ", &save) : NULL;
		found = fstype && strcmp(fstype, "tmpfs") == 0 ? 1 : 2;
	}
	free(line);
	fclose(f);
	return found == 1;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (strlen(path) >= sizeof buf)
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int ensure_private_tmpfs(const char *path, const char *opts)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	int t = top_mount_is_tmpfs(path);
	if (t < 0)
		return -errno;
	if (!t && mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	/* Private: sandbox tmpfs mounted below must not propagate to (or from) other namespaces. Only our
	 * own subtree is touched. */
	if (mount(NULL, path, NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	return 0;
}

int statedir_setup(const char *arg)
{
	int r;
	if (arg[0] != '/') {
		logmsg("--state-dir must be absolute");
		return -EINVAL;
	}
	if ((r = mkdir_p(arg, 0711)) < 0)
		return r;
	G.state_dir = realpath(arg, NULL);
	if (!G.state_dir)
		return -errno;
	if (strpbrk(G.state_dir, ":,\\")) {
		logmsg("state dir may not contain ':' ',' or '\\' (overlay option syntax)");
		return -EINVAL;
	}
	if (asprintf(&G.sb_dir, "%s/sb", G.state_dir) < 0 || asprintf(&G.base_dir, "%s/base", G.state_dir) < 0)
		return -ENOMEM;
	if ((r = ensure_private_tmpfs(G.sb_dir, "mode=0711,size=4m")) < 0)
		return r;
	if ((r = ensure_private_tmpfs(G.base_dir, "mode=0755,size=64m")) < 0)
		return r;
	return 0;
}

/* ------------------------------------------------------------------ host path validation */

static bool bad_component(const char *c, size_t n)
{
	return n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.');
}

/* `s` must name <sb>/<name>; the directory is created if missing. */
int validate_sandbox_dir(struct str s, char **out_real, const char **why)
{
	*out_real = NULL;
	char *p = str_dup0(s);
	if (!p)
		return -ENOMEM;
	int err = -EINVAL;
	char *slash = strrchr(p, '/');
	if (p[0] != '/' || !slash || strpbrk(p, ":,\\\n")) {
		*why = "SANDBOX_DIR must be absolute and free of ':' ',' '\\'";
		goto out;
	}
	*slash = 0;
	const char *name = slash + 1;
	if (bad_component(name, strlen(name))) {
		*why = "bad SANDBOX_DIR name";
		goto out;
	}
	char *parent = realpath(p[0] ? p : "/", NULL);
	if (!parent || strcmp(parent, G.sb_dir) != 0) {
		free(parent);
		*why = "SANDBOX_DIR is not a direct child of <state-dir>/sb";
		goto out;
	}
	free(parent);
	char *real;
	if (asprintf(&real, "%s/%s", G.sb_dir, name) < 0) {
		err = -ENOMEM;
		goto out;
	}
	if (mkdir(real, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		*why = "mkdir SANDBOX_DIR";
		free(real);
		goto out;
	}
	struct stat st, pst;
	if (lstat(real, &st) < 0 || !S_ISDIR(st.st_mode) || stat(G.sb_dir, &pst) < 0 || st.st_dev != pst.st_dev) {
		*why = "SANDBOX_DIR is not a plain directory (symlink or already a mount point)";
		err = -EBUSY;
		free(real);
		goto out;
	}
	*out_real = real;
	err = 0;
out:
	free(p);
	return err;
}

/* realpath of the parent must be `dir_real` or below it; the last component is not followed. */
int path_under(const char *path, const char *dir_real, char **out_real, const char **why)
{
	*out_real = NULL;
	char *slash = strrchr(path, '/');
	if (path[0] != '/' || !slash || bad_component(slash + 1, strlen(slash + 1))) {
		*why = "path must be absolute with a normal last component";
		return -EINVAL;
	}
	char *parent_s = strndup(path, (size_t)(slash - path));
	char *parent = parent_s ? realpath(parent_s[0] ? parent_s : "/", NULL) : NULL;
	free(parent_s);
	size_t dl = strlen(dir_real);
	if (!parent || (strcmp(parent, dir_real) != 0 && (strncmp(parent, dir_real, dl) != 0 || parent[dl] != '/'))) {
		free(parent);
		*why = "path is not under the allowed directory";
		return -EPERM;
	}
	int r = asprintf(out_real, "%s/%s", parent, slash + 1);
	free(parent);
	return r < 0 ? -ENOMEM : 0;
}

/* ------------------------------------------------------------------ per-sandbox tmpfs (launcher) */

int sandbox_tmpfs_create(const char *dir, uint64_t bytes)
{
	char opts[64];
	snprintf(opts, sizeof opts, "size=%llu,mode=0755", (unsigned long long)bytes);
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || mkdirat(fd, "upper", 0755) < 0 || mkdirat(fd, "work", 0755) < 0 || mkdirat(fd, "root", 0755) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		umount2(dir, MNT_DETACH);
		return -e;
	}
	close(fd);
	return 0;
}

/* SPAWN into a warm slot with another TMPFS_BYTES. size= is a superblock option, so remounting the
 * host-namespace mount also resizes the copy in the slot init's mount namespace. Same mount flags as
 * at creation: MS_REMOUNT replaces them. Fails (EINVAL) if the new size is below what is in use. */
int sandbox_tmpfs_resize(const char *dir, uint64_t bytes)
{
	char opts[64];
	snprintf(opts, sizeof opts, "size=%llu", (unsigned long long)bytes);
	return mount("tmpfs", dir, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) < 0 ? -errno : 0;
}

void sandbox_tmpfs_destroy(const char *dir)
{
	if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL)
		logmsg("umount %s: %s", dir, strerror(errno));
	if (rmdir(dir) < 0 && errno != ENOENT)
		logmsg("rmdir %s: %s", dir, strerror(errno));
}

/* ------------------------------------------------------------------ control requests */

/* UMOUNT: detach any mount at a path under <state-dir>/sb. CLEANUP: SANDBOX_DIR (a direct child of
 * <state-dir>/sb) unmounted if it still is, then removed; already gone is fine. */
static int sb_umount(struct str s, bool cleanup, const char **why)
{
	char *p = str_dup0(s), *real = NULL;
	if (!p)
		return -ENOMEM;
	int r = path_under(p, G.sb_dir, &real, why);
	free(p);
	if (r < 0)
		return r;
	if (cleanup && strrchr(real, '/') - real != (long)strlen(G.sb_dir)) {
		*why = "SANDBOX_DIR is not a direct child of <state-dir>/sb";
		r = -EPERM;
	} else if (umount2(real, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && (!cleanup || (errno != EINVAL && errno != ENOENT))) {
		r = -errno;
		*why = "umount";
	} else if (cleanup && rmdir(real) < 0 && errno != ENOENT) {
		r = -errno;
		*why = "rmdir";
	}
	free(real);
	return r;
}

int do_cleanup(struct str s, const char **why) { return sb_umount(s, true, why); }
int do_umount(struct str s, const char **why) { return sb_umount(s, false, why); }

/* Whiteouts and opaque dirs need mknod / trusted.* xattrs, which the Node helper cannot do. Missing
 * parents are created (0755) so the helper can mark paths of a skeleton it is still building. */
int do_mark(struct str s, uint64_t kind, const char **why)
{
	if (kind != 1 && kind != 2) {
		*why = "KIND must be 1 (whiteout) or 2 (opaque)";
		return -EINVAL;
	}
	char *p = str_dup0(s), *real = NULL;
	if (!p)
		return -ENOMEM;
	if (p[0] == '/') {
		/* create parents first, but only below base (checked component by component via path_under) */
		size_t bl = strlen(G.base_dir);
		if (strncmp(p, G.base_dir, bl) == 0 && p[bl] == '/' && !strstr(p, "/../") && !strstr(p, "/./")) {
			char *q = strdup(p);
			char *last = q ? strrchr(q, '/') : NULL;
			if (last && last > q + bl) {
				*last = 0;
				(void)mkdir_p(q, 0755);
			}
			free(q);
		}
	}
	int r = path_under(p, G.base_dir, &real, why);
	free(p);
	if (r < 0)
		return r;
	struct stat st;
	int have = lstat(real, &st) == 0;
	if (kind == 1) {
		if (have && S_ISCHR(st.st_mode) && st.st_rdev == 0)
			r = 0;
		else if (have) {
			r = -EEXIST;
			*why = "path exists and is not a whiteout";
		} else if (mknod(real, S_IFCHR | 0000, makedev(0, 0)) < 0) {
			r = -errno;
			*why = "mknod whiteout";
		}
	} else {
		if (!have && mkdir(real, 0755) < 0) {
			r = -errno;
			*why = "mkdir";
		} else if (have && !S_ISDIR(st.st_mode)) {
			r = -ENOTDIR;
			*why = "not a directory";
		} else if (lsetxattr(real, "trusted.overlay.opaque", "y", 1, 0) < 0) {
			r = -errno;
			*why = "setxattr trusted.overlay.opaque";
		}
	}
	free(real);
	return r;
}

/* ------------------------------------------------------------------ plan validation (launcher) */

int validate_lowers(const struct plan *pl, const char **why)
{
	for (uint32_t i = 0; i < pl->n_lower; i++) {
		struct str s = pl->lower[i];
		if (!s.len || s.p[0] != '/' || memchr(s.p, ':', s.len) || memchr(s.p, ',', s.len) ||
		    memchr(s.p, '\\', s.len) || memchr(s.p, '\n', s.len)) {
			*why = "LOWER must be absolute and free of ':' ',' '\\'";
			return -EINVAL;
		}
	}
	return 0;
}

char *overlay_options(const struct plan *pl, const char *dir, const char **why)
{
	const char *init_layer = initbin_layer(); /* NULL: host_setup_open fails with stage "init binary" */
	size_t n = 64 + 2 * strlen(dir) + (init_layer ? strlen(init_layer) + 1 : 0);
	for (uint32_t i = 0; i < pl->n_lower; i++)
		n += pl->lower[i].len + 1;
	if (n > 4000) { /* the kernel takes at most one page of options */
		*why = "overlay options longer than a page";
		return NULL;
	}
	char *o = malloc(n), *w = o;
	if (!o)
		return NULL;
	w += sprintf(w, "lowerdir=");
	if (init_layer) /* the top lower: /.ai-sandbox/{init,empty}, shared by every sandbox (initbin.c) */
		w += sprintf(w, "%s:", init_layer);
	for (uint32_t i = 0; i < pl->n_lower; i++) {
		if (i)
			*w++ = ':';
		memcpy(w, pl->lower[i].p, pl->lower[i].len);
		w += pl->lower[i].len;
	}
	sprintf(w, ",upperdir=%s/upper,workdir=%s/work", dir, dir);
	return o;
}

static bool sandbox_path_ok(const char *p, size_t n)
{
	if (!n || p[0] != '/')
		return false;
	size_t i = 1;
	while (i < n) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (j > i && bad_component(p + i, j - i))
			return false;
		i = j + 1;
	}
	return true;
}

/* MOUNT is "SRC\0DST\0ro|rw": SRC a host path that exists, DST absolute without . or .. */
static int split_mount(struct str m, const char **src, const char **dst, const char **mode)
{
	const char *a = m.p, *end = m.p + m.len;
	const char *z1 = memchr(a, 0, m.len);
	if (!z1)
		return -1;
	const char *z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
	if (!z2 || end - z2 - 1 != 2)
		return -1;
	*src = a;
	*dst = z1 + 1;
	*mode = z2 + 1;
	return 0;
}

int validate_mounts(const struct plan *pl, const char **why)
{
	for (uint32_t i = 0; i < pl->n_mount; i++) {
		const char *src, *dst, *mode;
		if (split_mount(pl->mount[i], &src, &dst, &mode) < 0 || (memcmp(mode, "ro", 2) && memcmp(mode, "rw", 2))) {
			*why = "MOUNT must be SRC\\0DST\\0ro|rw";
			return -EINVAL;
		}
		size_t dl = (size_t)(mode - 1 - dst);
		if (src[0] != '/' || !sandbox_path_ok(dst, dl) || dl == 1) {
			*why = "MOUNT SRC/DST must be absolute, DST without . or .. and not /";
			return -EINVAL;
		}
		struct stat st;
		if (stat(src, &st) < 0) {
			*why = "MOUNT SRC does not exist";
			return -errno;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ inside the init */

static char fdpath_buf[2][32];
static const char *fdpath(int slot, int fd)
{
	snprintf(fdpath_buf[slot], sizeof fdpath_buf[slot], "/proc/self/fd/%d", fd);
	return fdpath_buf[slot];
}

static int openat2_in(int rootfd, const char *path, int flags)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Open `path` inside the root (symlinks stay inside it), creating missing components: directories,
 * or a regular file for the last one when `file` is set. */
static int open_in_root(int rootfd, const char *path, bool file, int flags)
{
	int fd = openat2_in(rootfd, path, flags);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char buf[PATH_MAX];
	if (strlen(path) >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	char *p = buf;
	while (*p == '/')
		p++;
	int parent = -1;
	for (;;) {
		char *slash = strchr(p, '/');
		bool last = !slash || !slash[strspn(slash, "/")];
		if (slash)
			*slash = 0;
		int cur = openat2_in(rootfd, buf, O_PATH);
		if (cur < 0 && errno == ENOENT) {
			int dfd = parent >= 0 ? parent : rootfd;
			int r;
			if (last && file) {
				r = openat(dfd, p, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(dfd, p, 0755);
			}
			if (r < 0 && errno != EEXIST) {
				if (parent >= 0)
					close(parent);
				return -1;
			}
			cur = openat2_in(rootfd, buf, O_PATH);
		}
		if (parent >= 0)
			close(parent);
		if (cur < 0)
			return -1;
		if (last) {
			close(cur);
			return openat2_in(rootfd, path, flags);
		}
		parent = cur;
		*slash = '/';
		p = slash + 1;
		while (*p == '/')
			p++;
	}
}

#define CHECK(cond, stage)                                  \
	do {                                                \
		if (!(cond))                                \
			child_fail(setup_fd, (stage), errno); \
	} while (0)

static void mount_proc(int rootfd, int setup_fd)
{
	int fd = open_in_root(rootfd, "/proc", false, O_PATH | O_DIRECTORY);
	CHECK(fd >= 0, ST_MOUNT_PROC);
	CHECK(mount("proc", fdpath(0, fd), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0, ST_MOUNT_PROC);
	close(fd);
	int proc = openat2_in(rootfd, "/proc", O_PATH | O_DIRECTORY);
	CHECK(proc >= 0, ST_MOUNT_PROC);
	/* Kernel files that leak host state or poke the host: hide behind /dev/null or an empty directory. */
	static const char *const nulls[] = { "kcore", "keys", "timer_list", "sysrq-trigger", "latency_stats",
					     "sched_debug", "timer_stats" };
	for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++) {
		int f = openat(proc, nulls[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (f < 0 && errno == ENOENT)
			continue;
		CHECK(f >= 0 && mount("/dev/null", fdpath(0, f), NULL, MS_BIND, NULL) == 0, ST_MASK_PROC);
		close(f);
	}
	/* Directories to hide: a read-only bind of the root's own empty, immutable directory (a bind inside
	 * the root, so a CRIU dump has no tmpfs to archive for it). */
	static const char *const empties[] = { "acpi", "scsi", "asound" };
	int empty = -1;
	for (size_t i = 0; i < 3; i++) {
		int f = openat(proc, empties[i], O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		if (f < 0 && (errno == ENOENT || errno == ENOTDIR))
			continue;
		CHECK(f >= 0, ST_MASK_PROC);
		if (empty < 0)
			empty = openat2_in(rootfd, SANDBOX_EMPTY_PATH, O_PATH | O_DIRECTORY | O_NOFOLLOW);
		CHECK(empty >= 0 && mount(fdpath(0, empty), fdpath(1, f), NULL, MS_BIND, NULL) == 0, ST_MASK_PROC);
		close(f);
		f = openat(proc, empties[i], O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC); /* the new bind */
		CHECK(f >= 0 && mount(NULL, fdpath(0, f), NULL,
				      MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0,
		      ST_MASK_PROC);
		close(f);
	}
	if (empty >= 0)
		close(empty);
	static const char *const ro[] = { "sys", "irq", "bus", "fs" };
	for (size_t i = 0; i < 4; i++) {
		int f = openat(proc, ro[i], O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		if (f < 0 && errno == ENOENT)
			continue;
		CHECK(f >= 0 && mount(fdpath(0, f), fdpath(0, f), NULL, MS_BIND | MS_REC, NULL) == 0, ST_MASK_PROC);
		close(f);
		f = openat(proc, ro[i], O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC); /* the new bind */
		CHECK(f >= 0 && mount(NULL, fdpath(0, f), NULL,
				      MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0,
		      ST_MASK_PROC);
		close(f);
	}
	close(proc);
}

/* /dev is the directory upper/dev that the launcher filled before the overlay existed
 * (sandbox_upper_dev), bound onto itself: a bind mount inside the root (CRIU dumps it without a tar)
 * that, unlike the nodev root, honours device nodes. Only nodes in upper/dev can be opened: the
 * directory is opaque (no lower layer shows through), the sandbox cannot mknod one (no CAP_MKNOD),
 * and rename/link into it from the rest of the root fail with EXDEV (another mount), so a device node
 * a lower layer carries stays on the nodev root. /dev/shm is a plain directory of it (in the sandbox
 * tmpfs, bounded by TMPFS_BYTES); /dev/pts a new devpts instance. */
static void mount_dev(int rootfd, int setup_fd)
{
	int dev = openat2_in(rootfd, "/dev", O_PATH | O_DIRECTORY | O_NOFOLLOW);
	CHECK(dev >= 0 && mount(fdpath(0, dev), fdpath(0, dev), NULL, MS_BIND, NULL) == 0, ST_MOUNT_DEV);
	close(dev);
	dev = openat2_in(rootfd, "/dev", O_PATH | O_DIRECTORY | O_NOFOLLOW); /* the new bind */
	CHECK(dev >= 0 && mount(NULL, fdpath(0, dev), NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC, NULL) == 0,
	      ST_MOUNT_DEV);
	int pts = openat(dev, "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	CHECK(pts >= 0 && mount("devpts", fdpath(0, pts), "devpts", MS_NOSUID | MS_NOEXEC,
				"newinstance,ptmxmode=0666,mode=0620") == 0, ST_MOUNT_DEVPTS);
	close(pts);
	close(dev);
}

/* <dir>/<rel> as a directory fd (the last component not followed), or -errno */
static int open_dir_in(const char *dir, const char *rel, int flags)
{
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, rel) >= sizeof p)
		return -ENAMETOOLONG;
	int fd = open(p, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static const struct { const char *name; unsigned maj, min; } dev_nodes[] = {
	{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static const char *const dev_links[][2] = {
	{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
	{ "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" },
};

static const struct { const char *name; mode_t perm; } dev_dirs[] = { { "pts", 0755 }, { "shm", 01777 } };

/* Launcher, host namespace, before the overlay is mounted: <dir>/upper/dev with the device nodes,
 * links and directories the sandbox gets (see mount_dev). The sandbox tmpfs is nodev on the host, so
 * these nodes open nothing there. */
int sandbox_upper_dev(const char *dir)
{
	int up = open_dir_in(dir, "upper", O_PATH);
	if (up < 0)
		return up;
	int r = mkdirat(up, "dev", 0755) < 0 ? -errno : 0;
	int dev = r ? -1 : openat(up, "dev", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(up);
	if (r)
		return r;
	if (dev < 0)
		return -errno;
	for (size_t i = 0; !r && i < sizeof dev_nodes / sizeof *dev_nodes; i++)
		if (mknodat(dev, dev_nodes[i].name, S_IFCHR | 0666, makedev(dev_nodes[i].maj, dev_nodes[i].min)) < 0 ||
		    fchmodat(dev, dev_nodes[i].name, 0666, 0) < 0) /* past the umask */
			r = -errno;
	for (size_t i = 0; !r && i < sizeof dev_links / sizeof *dev_links; i++)
		if (symlinkat(dev_links[i][0], dev, dev_links[i][1]) < 0)
			r = -errno;
	for (size_t i = 0; !r && i < sizeof dev_dirs / sizeof *dev_dirs; i++)
		if (mkdirat(dev, dev_dirs[i].name, dev_dirs[i].perm) < 0 || fchmodat(dev, dev_dirs[i].name, dev_dirs[i].perm, 0) < 0)
			r = -errno; /* past the umask */
	if (!r && fsetxattr(dev, "trusted.overlay.opaque", "y", 1, 0) < 0)
		r = -errno;
	close(dev);
	return r;
}

/* ------------------------------------------------------------------ the skeleton writable layer */

/* `path` holds exactly the `n` entries `names` (n = 0: is empty) */
static bool only_entries(const char *path, const char *const *names, size_t n)
{
	DIR *d = opendir(path);
	if (!d)
		return false;
	size_t seen = 0;
	bool ok = true;
	struct dirent *e;
	while (ok && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		ok = false;
		for (size_t i = 0; i < n && !ok; i++)
			ok = !strcmp(e->d_name, names[i]);
		seen++;
	}
	closedir(d);
	return ok && seen == n;
}

/* every xattr of `path` is `exact` or starts with `prefix` (either may be NULL); none at all is fine */
static bool xattrs_only(const char *path, const char *exact, const char *prefix)
{
	char buf[1024];
	ssize_t n = llistxattr(path, buf, sizeof buf);
	if (n < 0)
		return false;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) {
		const char *x = buf + i;
		if (!(exact && !strcmp(x, exact)) && !(prefix && !strncmp(x, prefix, strlen(prefix))))
			return false;
	}
	return true;
}

static bool is_root_owned(const struct stat *st, mode_t type, mode_t perm)
{
	return (st->st_mode & S_IFMT) == type && (type == S_IFLNK || (st->st_mode & 07777) == perm) && !st->st_uid && !st->st_gid;
}

bool upper_is_skeleton(const char *upper)
{
	static const char *const top[] = { "dev", "tmp" };
	const char *dev_names[sizeof dev_nodes / sizeof *dev_nodes + sizeof dev_links / sizeof *dev_links +
			      sizeof dev_dirs / sizeof *dev_dirs];
	size_t nd = 0;
	for (size_t i = 0; i < sizeof dev_nodes / sizeof *dev_nodes; i++)
		dev_names[nd++] = dev_nodes[i].name;
	for (size_t i = 0; i < sizeof dev_links / sizeof *dev_links; i++)
		dev_names[nd++] = dev_links[i][1];
	for (size_t i = 0; i < sizeof dev_dirs / sizeof *dev_dirs; i++)
		dev_names[nd++] = dev_dirs[i].name;
	char p[PATH_MAX], t[PATH_MAX];
	struct stat st;
	if (!only_entries(upper, top, 2))
		return false;
	/* tmp: made by the init's chmod (a copy-up: overlayfs' own xattrs only) and still empty */
	snprintf(p, sizeof p, "%s/tmp", upper);
	if (lstat(p, &st) < 0 || !is_root_owned(&st, S_IFDIR, 01777) || !only_entries(p, NULL, 0) ||
	    !xattrs_only(p, NULL, "trusted.overlay."))
		return false;
	/* dev: exactly what sandbox_upper_dev makes, nothing added, changed or given an xattr */
	snprintf(p, sizeof p, "%s/dev", upper);
	if (lstat(p, &st) < 0 || !is_root_owned(&st, S_IFDIR, 0755) || !only_entries(p, dev_names, nd) ||
	    !xattrs_only(p, "trusted.overlay.opaque", NULL))
		return false;
	for (size_t i = 0; i < sizeof dev_nodes / sizeof *dev_nodes; i++) {
		snprintf(p, sizeof p, "%s/dev/%s", upper, dev_nodes[i].name);
		if (lstat(p, &st) < 0 || !is_root_owned(&st, S_IFCHR, 0666) ||
		    st.st_rdev != makedev(dev_nodes[i].maj, dev_nodes[i].min) || !xattrs_only(p, NULL, NULL))
			return false;
	}
	for (size_t i = 0; i < sizeof dev_links / sizeof *dev_links; i++) {
		snprintf(p, sizeof p, "%s/dev/%s", upper, dev_links[i][1]);
		ssize_t n = readlink(p, t, sizeof t - 1);
		if (n < 0 || lstat(p, &st) < 0 || !is_root_owned(&st, S_IFLNK, 0))
			return false;
		t[n] = 0;
		if (strcmp(t, dev_links[i][0]))
			return false;
	}
	for (size_t i = 0; i < sizeof dev_dirs / sizeof *dev_dirs; i++) {
		snprintf(p, sizeof p, "%s/dev/%s", upper, dev_dirs[i].name);
		if (lstat(p, &st) < 0 || !is_root_owned(&st, S_IFDIR, dev_dirs[i].perm) || !only_entries(p, NULL, 0) ||
		    !xattrs_only(p, NULL, NULL))
			return false;
	}
	return true;
}

int sandbox_upper_skeleton(const char *dir)
{
	int r = sandbox_upper_dev(dir);
	if (r < 0)
		return r;
	int up = open_dir_in(dir, "upper", O_PATH);
	if (up < 0)
		return up;
	r = mkdirat(up, "tmp", 01777) < 0 || fchmodat(up, "tmp", 01777, 0) < 0 ? -errno : 0;
	close(up);
	return r;
}

/* RESTORE: the archive's upper/dev (if any) may hold no device node but ours and whiteouts (0:0),
 * at any depth. The sandbox cannot create one there, but the archive is a file on the host. */
static int dev_tree_ok(int dfd, int depth)
{
	if (depth > 8)
		return -EPERM;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	int r = 0;
	struct dirent *e;
	while (!r && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
		} else if (S_ISBLK(st.st_mode)) {
			r = -EPERM;
		} else if (S_ISCHR(st.st_mode)) {
			bool ok = st.st_rdev == makedev(0, 0);
			for (size_t i = 0; !ok && depth == 0 && i < sizeof dev_nodes / sizeof *dev_nodes; i++)
				ok = !strcmp(e->d_name, dev_nodes[i].name) &&
				     st.st_rdev == makedev(dev_nodes[i].maj, dev_nodes[i].min);
			if (!ok)
				r = -EPERM;
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = sub < 0 ? -errno : dev_tree_ok(sub, depth + 1);
		}
	}
	closedir(d);
	return r;
}

int sandbox_upper_dev_verify(const char *dir)
{
	int fd = open_dir_in(dir, "upper/dev", O_RDONLY);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	return dev_tree_ok(fd, 0);
}

static void mount_binds(int rootfd, const struct root_spec *r, int setup_fd)
{
	for (uint32_t i = 0; i < r->n_mounts; i++) {
		const char *src, *dst, *mode;
		CHECK(split_mount(r->mounts[i], &src, &dst, &mode) == 0 || (errno = EINVAL, 0), ST_MOUNT_BIND);
		char dstbuf[PATH_MAX];
		size_t dl = (size_t)(mode - 1 - dst);
		CHECK(dl < sizeof dstbuf || (errno = ENAMETOOLONG, 0), ST_MOUNT_BIND);
		memcpy(dstbuf, dst, dl);
		dstbuf[dl] = 0;
		int s = open(src, O_PATH | O_CLOEXEC);
		struct stat st;
		CHECK(s >= 0 && fstat(s, &st) == 0, ST_MOUNT_BIND);
		int d = open_in_root(rootfd, dstbuf, !S_ISDIR(st.st_mode), O_PATH);
		CHECK(d >= 0, ST_MOUNT_BIND);
		CHECK(mount(fdpath(0, s), fdpath(1, d), NULL, MS_BIND | MS_REC, NULL) == 0, ST_MOUNT_BIND);
		close(d);
		d = openat2_in(rootfd, dstbuf, O_PATH); /* now the bind mount's root */
		CHECK(d >= 0, ST_MOUNT_BIND);
		struct mount_attr a = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
		if (mode[1] == 'o')
			a.attr_set |= MOUNT_ATTR_RDONLY;
		if (syscall(SYS_mount_setattr, d, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0) {
			/* pre-5.12 kernels: only the top mount becomes read-only */
			unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (mode[1] == 'o' ? MS_RDONLY : 0);
			CHECK(mount(NULL, fdpath(1, d), NULL, fl, NULL) == 0, ST_MOUNT_BIND);
		}
		close(d);
		close(s);
	}
}

void loopback_up(int setup_fd)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0, ST_LOOPBACK);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0, ST_LOOPBACK);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0, ST_LOOPBACK);
	close(s);
}

void build_root_base(struct root_spec *r, int setup_fd)
{
	char root[PATH_MAX];
	snprintf(root, sizeof root, "%s/root", r->dir);
	/* Nothing we mount from here on may propagate back to the host. */
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0, ST_MOUNT_RSLAVE);
	CHECK(mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV, r->overlay_opts) == 0, ST_MOUNT_OVERLAY);
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	CHECK(rootfd >= 0, ST_MOUNT_OVERLAY);
	TMARK(11);
	mount_proc(rootfd, setup_fd);
	TMARK(12);
	mount_dev(rootfd, setup_fd);
	r->rootfd = rootfd;
}

void build_root(struct root_spec *r, int setup_fd)
{
	if (r->rootfd < 0) {
		build_root_base(r, setup_fd);
	} else { /* done at PREPARE: the phases read 0 in a TIMING build */
		TMARK(11);
		TMARK(12);
	}
	int rootfd = r->rootfd;
	/* sysfs shows the network devices of the mounter's namespace: mounted only now, in the sandbox's */
	int sys = open_in_root(rootfd, "/sys", false, O_PATH | O_DIRECTORY);
	CHECK(sys >= 0 && mount("sysfs", fdpath(0, sys), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0,
	      ST_MOUNT_SYS);
	close(sys);
	TMARK(13);
	mount_binds(rootfd, r, setup_fd);
	int tmp = open_in_root(rootfd, "/tmp", false, O_RDONLY | O_DIRECTORY);
	CHECK(tmp >= 0 && fchmod(tmp, 01777) == 0, ST_MOUNT_TMP);
	close(tmp);
	TMARK(14);
	CHECK(sethostname(r->hostname, strlen(r->hostname)) == 0, ST_SETHOSTNAME);
	loopback_up(setup_fd);
	TMARK(15);
	CHECK(fchdir(rootfd) == 0 && syscall(SYS_pivot_root, ".", ".") == 0, ST_PIVOT_ROOT);
	/* the old root is stacked under the new one at "/": detach it so no host path stays reachable */
	CHECK(umount2(".", MNT_DETACH) == 0 && chdir("/") == 0, ST_UMOUNT_OLDROOT);
	close(rootfd);
}
