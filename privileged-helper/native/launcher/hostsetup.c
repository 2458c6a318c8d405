/*
 * The launcher (host) side of a new sandbox, one code path for SPAWN (cold), PREPARE and RESTORE:
 * validate SANDBOX_DIR, open CGROUP2 and the v1 CGROUP_PROCS files, open NETNS (SPAWN/PREPARE), mount
 * the tmpfs (upper/ work/ root/), copy the init binary and make upper/dev (SPAWN/PREPARE: RESTORE
 * gets both from its archive), and create the setup and status pipes. EXEC opens its target's cgroups
 * with the same cgroup part, and every child joins its v1 cgroups with cgroup_fds_join.
 *
 * Threat model: the paths come from the helper's plan (EXEC: what SPAWN validated, checked again) and
 * are checked here before anything is mounted or written: SANDBOX_DIR via mounts.c (a direct child of
 * <state-dir>/sb), CGROUP2 must be a cgroup2 directory, each CGROUP_PROCS a cgroup.procs file on a
 * cgroup filesystem (opened O_NOFOLLOW), NETNS a network-namespace file. Nothing here reads what a
 * sandbox wrote. On failure host_setup_undo leaves nothing behind (tmpfs unmounted, directory removed).
 */
#include "sandbox.h"
#include "initloop.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static int open_cgroup2(const char *path, const char **why)
{
	struct statfs sf;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*why = "open CGROUP2";
		return -errno;
	}
	if (fstatfs(fd, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		*why = "CGROUP2 is not a cgroup2 directory";
		return -EINVAL;
	}
	return fd;
}

/*
 * CGROUP_PROCS names a cgroup.procs file; on a v1 hierarchy we open its sibling `tasks` instead. Every
 * joiner is a freshly forked child of this single-threaded launcher, so it is single-threaded and
 * writes "0" (itself): moving that one thread through `tasks` is the same move, but a write to v1
 * cgroup.procs takes cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period (5-24 ms
 * measured on this host, per join) where `tasks` with the current thread skips that lock (0.05 ms).
 */
static int open_cgroup_procs(const char *path, const char **why)
{
	const char *base = strrchr(path, '/');
	if (!base || strcmp(base, "/cgroup.procs") != 0) {
		*why = "CGROUP_PROCS must name a cgroup.procs file";
		return -EINVAL;
	}
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*why = "open CGROUP_PROCS";
		return -errno;
	}
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0 || (sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC)) {
		close(fd);
		*why = "CGROUP_PROCS is not on a cgroup filesystem";
		return -EINVAL;
	}
	if (sf.f_type != CGROUP_SUPER_MAGIC)
		return fd;
	char tasks[4096];
	if (snprintf(tasks, sizeof tasks, "%.*s/tasks", (int)(base - path), path) >= (int)sizeof tasks) {
		close(fd);
		*why = "CGROUP_PROCS path too long";
		return -ENAMETOOLONG;
	}
	int tfd = open(tasks, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (tfd < 0 || fstatfs(tfd, &sf) < 0 || sf.f_type != CGROUP_SUPER_MAGIC) {
		int e = tfd < 0 ? errno : EINVAL;
		if (tfd >= 0)
			close(tfd);
		close(fd);
		*why = "open the tasks file beside CGROUP_PROCS";
		return -e;
	}
	close(fd);
	return tfd;
}

int cgroup_fds_open(struct cgroup_fds *c, const char *cgroup2, char *const *procs, uint32_t n, unsigned *stage,
		    const char **why)
{
	c->n_procs = 0;
	*stage = ST_CGROUP2;
	if ((c->cg2 = open_cgroup2(cgroup2, why)) < 0) {
		int r = c->cg2;
		c->cg2 = -1;
		return r;
	}
	*stage = ST_CGROUP_PROCS_OPEN;
	if (n > MAX_CGROUP_PROCS) { /* the plan checks refuse this earlier */
		cgroup_fds_close(c);
		*why = "too many CGROUP_PROCS";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		int r = open_cgroup_procs(procs[i], why);
		if (r < 0) {
			cgroup_fds_close(c);
			return r;
		}
		c->procs[c->n_procs++] = r;
	}
	return 0;
}

void cgroup_fds_close(struct cgroup_fds *c)
{
	for (uint32_t i = 0; i < c->n_procs; i++)
		close(c->procs[i]);
	c->n_procs = 0;
	if (c->cg2 >= 0)
		close(c->cg2);
	c->cg2 = -1;
}

int cgroup_fds_keep(const struct cgroup_fds *c, int *keep, int n)
{
	for (uint32_t i = 0; i < c->n_procs; i++)
		keep[n++] = c->procs[i];
	return n;
}

/* In the child, before its setup continues: "0" = the writing thread, the child's only one (v1: through
 * `tasks`, see open_cgroup_procs), so it is in every v1 cgroup before it runs anything else (CGROUP2 it
 * entered at clone3). */
void cgroup_fds_join(const struct cgroup_fds *c, int setup_fd)
{
	for (uint32_t i = 0; i < c->n_procs; i++) {
		if (write_file_str(c->procs[i], "0") < 0)
			child_fail(setup_fd, ST_CGROUP_PROCS, errno);
		close(c->procs[i]);
	}
}

void host_setup_init(struct host_setup *h)
{
	memset(h, 0, sizeof *h);
	h->cg.cg2 = h->netns_fd = -1;
	h->setup[0] = h->setup[1] = h->status[0] = h->status[1] = -1;
}

int host_setup_dir(struct host_setup *h, const struct plan *pl, unsigned *stage, const char **why)
{
	*stage = ST_SANDBOX_DIR;
	int r = validate_sandbox_dir(pl->sandbox_dir, &h->dir, why);
	if (r < 0)
		return r;
	*stage = ST_PLAN;
	h->cgroup2 = str_dup0(pl->cgroup2);
	h->procs = strv_from(pl->procs, pl->n_procs);
	h->n_procs = pl->n_procs;
	return h->cgroup2 && h->procs ? 0 : -ENOMEM;
}

int host_setup_open(struct host_setup *h, const struct plan *pl, const char *netns, bool install_init,
		    unsigned *stage, const char **why)
{
	int r = cgroup_fds_open(&h->cg, h->cgroup2, h->procs, h->n_procs, stage, why);
	if (r < 0)
		return r;
	if (netns) {
		*stage = ST_NETNS_OPEN;
		h->netns_fd = open(netns, O_RDONLY | O_CLOEXEC);
		if (h->netns_fd < 0 || !is_netns_fd(h->netns_fd)) {
			*why = "NETNS is not a network namespace file";
			return h->netns_fd < 0 ? -errno : -EINVAL;
		}
	}
	*stage = ST_MOUNT_TMPFS;
	if ((r = sandbox_tmpfs_create(h->dir, pl->tmpfs_bytes)) < 0) {
		*why = "tmpfs on SANDBOX_DIR";
		return r;
	}
	h->mounted = true;
	h->tmpfs_bytes = pl->tmpfs_bytes;
	*stage = ST_INIT_BINARY; /* the shared top lower layer (initbin.c), made once at startup */
	if (!initbin_layer()) {
		*why = "init binary unavailable";
		return -initbin_err();
	}
	if (install_init) { /* not for RESTORE: its archive brings upper/dev, checked there */
		*stage = ST_MOUNT_DEV;
		if ((r = sandbox_upper_dev(h->dir)) < 0) {
			*why = "create upper/dev";
			return r;
		}
	}
	*stage = ST_PIPES;
	if (pipe2(h->setup, O_CLOEXEC) < 0 || pipe2(h->status, O_CLOEXEC) < 0)
		return -errno;
	fcntl(h->setup[0], F_SETFL, O_NONBLOCK);
	fcntl(h->status[0], F_SETFL, O_NONBLOCK);
	return 0;
}

pid_t host_setup_clone(struct host_setup *h, uint64_t flags, int *pidfd, void (*child)(void *), void *arg)
{
	pid_t pid = sys_clone3(flags | CLONE_INTO_CGROUP | CLONE_PIDFD, pidfd, h->cg.cg2);
	if (pid == 0)
		child(arg); /* does not return */
	if (pid < 0)
		return -errno;
	close(h->setup[1]);
	close(h->status[1]);
	h->setup[1] = h->status[1] = -1;
	return pid;
}

void host_setup_commit(struct host_setup *h, struct sandbox *sb)
{
	sb->dir = h->dir;
	sb->cgroup2 = h->cgroup2;
	sb->procs = h->procs;
	sb->n_procs = h->n_procs;
	sb->tmpfs_bytes = h->tmpfs_bytes;
	h->dir = h->cgroup2 = NULL;
	h->procs = NULL;
	cgroup_fds_close(&h->cg);
	if (h->netns_fd >= 0)
		close(h->netns_fd);
	h->netns_fd = -1;
}

void host_setup_undo(struct host_setup *h)
{
	for (int i = 0; i < 2; i++) {
		if (h->setup[i] >= 0)
			close(h->setup[i]);
		if (h->status[i] >= 0)
			close(h->status[i]);
	}
	cgroup_fds_close(&h->cg);
	if (h->netns_fd >= 0)
		close(h->netns_fd);
	if (h->mounted)
		sandbox_tmpfs_destroy(h->dir);
	else if (h->dir)
		rmdir(h->dir);
	free(h->dir);
	free(h->cgroup2);
	free(h->procs);
	host_setup_init(h);
}
