/*
 * The in-sandbox init binary (build/ai-sandbox-init, see init.c): opened once at startup and copied
 * ONCE into a small read-only layer on the launcher's own tmpfs, <state-dir>/base/init-layer, holding
 * .ai-sandbox/init and .ai-sandbox/empty. That directory is the TOP lower layer of every sandbox
 * overlay (SPAWN, PREPARE, RESTORE), so each sandbox sees /.ai-sandbox/init without a per-sandbox copy
 * in its tmpfs upper layer.
 *
 * Threat model: the file runs as every sandbox's pid 1 (euid 0, no capabilities, no seccomp), so at
 * startup it must be a regular root-owned file nobody else may write; we copy from that fd and never
 * re-open the path. In the layer, init-layer/, .ai-sandbox/, init and empty/ are root:root 0555 and
 * FS_IMMUTABLE_FL. A sandbox cannot write the lower layer itself (it is not in its mount namespace);
 * on the overlay the merged inodes carry the lower inode's S_IMMUTABLE (overlayfs copies it, and keeps
 * it across copy-up), so the VFS refuses open-for-write, truncate, chmod/chown/utimes, link, rename
 * and unlink of init and of the directory, and any creation inside it, before overlayfs would copy
 * anything up: a uid-0 command (no CAP_LINUX_IMMUTABLE) can neither rewrite nor shadow the file its
 * init maps (tests: uid0_command_cannot_change_its_init). Nothing can be added to init-layer/ either
 * (immutable), so the shared layer cannot be used to shadow paths of the image below it.
 * A RESTORE's archive (an upper layer) may not contain any .ai-sandbox entry: it would shadow the
 * shared layer (an opaque dir, a whiteout, or another binary that CRIU would map as pid 1's text).
 * `empty/` (no entries) is what the sandbox binds read-only over the /proc directories it masks. It
 * lives on the sandbox's own overlay so CRIU dumps those masks as bind mounts inside the root.
 */
#include "launcher.h"
#include "initloop.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

static int init_fd = -1;
static off_t init_size;
static int init_err = ENOENT;

int initbin_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		init_err = errno;
		if (fd >= 0)
			close(fd);
		return -init_err;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) || !(st.st_mode & 0100) || st.st_size <= 0) {
		close(fd);
		init_err = EPERM;
		return -EPERM;
	}
	init_fd = fd;
	init_size = st.st_size;
	return 0;
}

/* Make a file or directory immutable; best effort where the filesystem has no such flag. */
static void make_immutable(int fd)
{
	int fl = 0;
	if (ioctl(fd, FS_IOC_GETFLAGS, &fl) < 0)
		return;
	fl |= FS_IMMUTABLE_FL;
	(void)ioctl(fd, FS_IOC_SETFLAGS, &fl);
}

static int install_at(int dfd)
{
	int out = openat(dfd, "init", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0555);
	if (out < 0)
		return -errno;
	off_t off = 0;
	while (off < init_size) {
		ssize_t n = sendfile(out, init_fd, &off, (size_t)(init_size - off));
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(out);
			return -e;
		}
	}
	if (fchown(out, 0, 0) < 0 || fchmod(out, 0555) < 0) {
		int e = errno;
		close(out);
		return -e;
	}
	make_immutable(out);
	close(out);
	return 0;
}

/* Clear the immutable flag of <dfd>/<name> (best effort) so a stale layer can be removed. */
static void clear_immutable_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), fl = 0;
	if (fd < 0)
		return;
	if (ioctl(fd, FS_IOC_GETFLAGS, &fl) == 0 && (fl & FS_IMMUTABLE_FL)) {
		fl &= ~FS_IMMUTABLE_FL;
		(void)ioctl(fd, FS_IOC_SETFLAGS, &fl);
	}
	close(fd);
}

/* A layer left on <base> by an earlier launcher (base/ outlives us): removed and made again from the
 * binary this launcher opened. Only the names we create are touched. */
static int remove_stale_layer(const char *layer)
{
	int l = open(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (l < 0)
		return errno == ENOENT ? 0 : -errno;
	clear_immutable_at(AT_FDCWD, layer);
	int d = openat(l, SANDBOX_INIT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d >= 0) {
		clear_immutable_at(l, SANDBOX_INIT_DIR);
		clear_immutable_at(d, "init");
		clear_immutable_at(d, "empty");
		(void)unlinkat(d, "init", 0);
		(void)unlinkat(d, "empty", AT_REMOVEDIR);
		close(d);
		(void)unlinkat(l, SANDBOX_INIT_DIR, AT_REMOVEDIR);
	}
	close(l);
	return rmdir(layer) < 0 ? -errno : 0;
}

static char *layer_path;

/* <base>/init-layer/.ai-sandbox/{init,empty}: every directory root:root 0555 and immutable, the file
 * a copy of the binary opened by initbin_open. Made once, before any sandbox. */
int initbin_layer_setup(const char *base_dir)
{
	if (init_fd < 0)
		return -init_err;
	char *p = NULL;
	if (asprintf(&p, "%s/init-layer", base_dir) < 0)
		return -ENOMEM;
	int r = remove_stale_layer(p), l = -1, d = -1, e = -1;
	if (r < 0)
		goto out;
	if (mkdir(p, 0555) < 0 || (l = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fchown(l, 0, 0) < 0 || fchmod(l, 0555) < 0 || mkdirat(l, SANDBOX_INIT_DIR, 0555) < 0 ||
	    (d = openat(l, SANDBOX_INIT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fchown(d, 0, 0) < 0 || fchmod(d, 0555) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = install_at(d)) < 0)
		goto out;
	if (mkdirat(d, "empty", 0555) < 0 || (e = openat(d, "empty", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fchown(e, 0, 0) < 0 || fchmod(e, 0555) < 0) {
		r = -errno;
		goto out;
	}
	/* after everything is in: nothing may be added, removed or renamed in any of them */
	make_immutable(e);
	make_immutable(d);
	make_immutable(l);
	layer_path = p;
	p = NULL;
	close(init_fd); /* the copy is what sandboxes run; the host path is never opened again */
	init_fd = -1;
out:
	if (e >= 0)
		close(e);
	if (d >= 0)
		close(d);
	if (l >= 0)
		close(l);
	if (r < 0)
		init_err = -r;
	free(p);
	return r;
}

const char *initbin_layer(void) { return layer_path; }
int initbin_err(void) { return init_err; }

/* RESTORE: the archive's upper layer may hold no .ai-sandbox entry at all (file, directory, whiteout):
 * the shared layer's /.ai-sandbox must be what every sandbox sees. */
int initbin_archive_check(const char *sandbox_dir)
{
	char p[4096];
	struct stat st;
	if ((size_t)snprintf(p, sizeof p, "%s/upper/" SANDBOX_INIT_DIR, sandbox_dir) >= sizeof p)
		return -ENAMETOOLONG;
	if (lstat(p, &st) == 0)
		return -EPERM;
	return errno == ENOENT ? 0 : -errno;
}
