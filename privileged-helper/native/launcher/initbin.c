/*
 * The in-sandbox init binary (build/ai-sandbox-init, see init.c): opened once at startup, copied into
 * each sandbox's upper layer as /.ai-sandbox/init before the overlay is mounted, and compared with
 * what a RESTORE's archive brings.
 *
 * Threat model: the file we copy runs as every sandbox's pid 1 (euid 0, no capabilities, no seccomp),
 * so at startup it must be a regular root-owned file nobody else may write; we keep that fd and never
 * re-open the path. In the sandbox the directory and file are root:root 0555 and FS_IMMUTABLE_FL (a
 * uid-0 command owns them but has no CAP_LINUX_IMMUTABLE, so it can neither rewrite nor swap the file
 * its init maps). An archive brought to RESTORE was written by the helper from an upper layer, but a
 * sandbox could have changed it before a launcher without the immutable flag: so its copy must be
 * byte-identical to ours, or the restore is refused (CRIU would map it as pid 1's text).
 * The same directory holds `empty/` (root:root 0555, immutable, no entries): the sandbox binds it
 * read-only over the /proc directories it masks. It lives on the sandbox's own overlay so CRIU dumps
 * those masks as bind mounts inside the root (no tmpfs to tar); a RESTORE's copy must be an empty
 * root-owned directory (or absent: an image made before it existed still has tmpfs masks).
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
#include <dirent.h>
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

int initbin_fd(void) { return init_fd; }

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

int initbin_install(const char *sandbox_dir)
{
	if (init_fd < 0)
		return -init_err;
	char p[4096];
	if ((size_t)snprintf(p, sizeof p, "%s/upper", sandbox_dir) >= sizeof p)
		return -ENAMETOOLONG;
	int up = open(p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (up < 0)
		return -errno;
	int r = 0;
	if (mkdirat(up, SANDBOX_INIT_DIR, 0555) < 0) {
		r = -errno;
		close(up);
		return r;
	}
	int d = openat(up, SANDBOX_INIT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(up);
	if (d < 0)
		return -errno;
	if (fchown(d, 0, 0) < 0 || fchmod(d, 0555) < 0 || (r = install_at(d)) < 0) {
		r = r ? r : -errno;
		close(d);
		return r;
	}
	int e = mkdirat(d, "empty", 0555) < 0 ? -1 : openat(d, "empty", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (e < 0 || fchown(e, 0, 0) < 0 || fchmod(e, 0555) < 0) {
		r = -errno;
		if (e >= 0)
			close(e);
		close(d);
		return r;
	}
	make_immutable(e);
	close(e);
	make_immutable(d); /* after the file is in: nothing may be added, removed or renamed */
	close(d);
	return 0;
}

/* RESTORE: upper/.ai-sandbox/init from the archive must be our binary, byte for byte, root-owned and
 * not writable by others; then both are made immutable like a fresh install. */
int initbin_verify(const char *sandbox_dir)
{
	if (init_fd < 0)
		return -init_err;
	char p[4096];
	if ((size_t)snprintf(p, sizeof p, "%s/upper/" SANDBOX_INIT_DIR, sandbox_dir) >= sizeof p)
		return -ENAMETOOLONG;
	int d = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return -errno;
	int f = openat(d, "init", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	int r = 0;
	if (f < 0 || fstat(f, &st) < 0) {
		r = -errno;
	} else if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) || st.st_size != init_size) {
		r = -EPERM;
	} else {
		static char a[65536], b[65536];
		for (off_t off = 0; off < init_size && !r;) {
			size_t k = init_size - off < (off_t)sizeof a ? (size_t)(init_size - off) : sizeof a;
			if (pread(init_fd, a, k, off) != (ssize_t)k || pread(f, b, k, off) != (ssize_t)k)
				r = -EIO;
			else if (memcmp(a, b, k))
				r = -EPERM;
			off += (off_t)k;
		}
	}
	int e = -1;
	if (!r && (e = openat(d, "empty", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
		int dup = fcntl(e, F_DUPFD_CLOEXEC, 0);
		DIR *dd = dup < 0 ? NULL : fdopendir(dup);
		int entries = 0;
		for (struct dirent *de; dd && (de = readdir(dd));)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				entries++;
		if (dd)
			closedir(dd);
		else if (dup >= 0)
			close(dup);
		if (!dd || fstat(e, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) || entries)
			r = -EPERM;
	} else if (!r && errno != ENOENT) {
		r = -errno;
	}
	if (!r) {
		if (e >= 0)
			make_immutable(e);
		make_immutable(f);
		make_immutable(d);
	}
	if (e >= 0)
		close(e);
	if (f >= 0)
		close(f);
	close(d);
	return r;
}
