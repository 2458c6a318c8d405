/*
 * Decoding of TLV request bodies into a struct plan.
 *
 * Threat model: the body comes from the helper (trusted for policy, not for well-formedness: a bug
 * there must not become memory corruption here). Every length is bounds-checked against the frame,
 * unknown tags and tags not allowed for the request type are rejected (EINVAL), single-valued tags
 * may appear once, and repeats are capped. Strings stay pointers into the frame; NUL-terminated
 * copies are made only where a syscall needs them (str_dup0 / strv_from).
 */
#include "launcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t allowed_tags(int type)
{
#define B(t) (1ULL << (t))
	switch (type) {
	case REQ_SPAWN:
		return B(T_ARG) | B(T_ENV) | B(T_LOWER) | B(T_SANDBOX_DIR) | B(T_TMPFS_BYTES) | B(T_HOSTNAME) |
		       B(T_WORKDIR) | B(T_UID) | B(T_GID) | B(T_MOUNT) | B(T_CGROUP2) | B(T_CGROUP_PROCS) |
		       B(T_FLAGS) | B(T_ROWS) | B(T_COLS) | B(T_NETNS) | B(T_NOTIFY_SOCKET) | B(T_NOTIFY_NRS);
	case REQ_EXEC:
		return B(T_TARGET) | B(T_ARG) | B(T_ENV) | B(T_WORKDIR) | B(T_UID) | B(T_GID) | B(T_FLAGS) |
		       B(T_ROWS) | B(T_COLS);
	case REQ_PREPARE:
		return B(T_SANDBOX_DIR) | B(T_TMPFS_BYTES) | B(T_CGROUP2) | B(T_CGROUP_PROCS) | B(T_NETNS) | B(T_LOWER);
	case REQ_RESTORE:
		return B(T_SANDBOX_DIR) | B(T_TMPFS_BYTES) | B(T_CGROUP2) | B(T_CGROUP_PROCS) | B(T_LOWER) |
		       B(T_IMAGES_DIR) | B(T_UPPER_ARCHIVE) | B(T_CRIU) | B(T_INHERIT) | B(T_EXTERNAL) | B(T_HOSTNAME) |
		       B(T_LOG) | B(T_NET_KEY);
	case REQ_DUMP:
		return B(T_TARGET) | B(T_CRIU) | B(T_IMAGES_DIR) | B(T_LOG) | B(T_UPPER_ARCHIVE) | B(T_EXTERNAL) |
		       B(T_NET_KEY);
	case REQ_CLEANUP:
		return B(T_SANDBOX_DIR);
	case REQ_UMOUNT:
		return B(T_PATH);
	case REQ_MARK:
		return B(T_PATH) | B(T_KIND);
	}
	return 0;
#undef B
}

static int push(struct str **arr, uint32_t *n, struct str s)
{
	if (*n >= PLAN_MAX_REPEAT)
		return -1;
	if ((*n & (*n - 1)) == 0 || *n == 0) { /* grow at powers of two */
		uint32_t cap = *n ? *n * 2 : 4;
		struct str *p = realloc(*arr, cap * sizeof *p);
		if (!p)
			return -1;
		*arr = p;
	}
	(*arr)[(*n)++] = s;
	return 0;
}

int plan_decode(int type, const uint8_t *body, uint32_t len, struct plan *pl, const char **why)
{
	memset(pl, 0, sizeof *pl);
	uint64_t ok = allowed_tags(type);
	uint32_t off = 0;
	while (off < len) {
		if (len - off < 5) {
			*why = "truncated TLV header";
			return -EINVAL;
		}
		uint8_t tag = body[off];
		uint32_t l;
		memcpy(&l, body + off + 1, 4);
		off += 5;
		if (l > len - off) {
			*why = "TLV length past end of frame";
			return -EINVAL;
		}
		struct str s = { (const char *)body + off, l };
		uint64_t v = 0;
		off += l;
		if (tag >= 64 || !((ok >> tag) & 1)) {
			*why = "unknown or unexpected tag";
			return -EINVAL;
		}
		int repeat = tag == T_ARG || tag == T_ENV || tag == T_LOWER || tag == T_MOUNT || tag == T_CGROUP_PROCS ||
			     tag == T_INHERIT || tag == T_EXTERNAL;
		if (!repeat) {
			if (HAVE(pl, tag)) {
				*why = "tag repeated";
				return -EINVAL;
			}
			pl->have |= 1ULL << tag;
		}
		int is_int = tag == T_TMPFS_BYTES || tag == T_UID || tag == T_GID || tag == T_FLAGS || tag == T_ROWS ||
			     tag == T_COLS || tag == T_TARGET || tag == T_KIND;
		if (is_int) {
			if (l != 8) {
				*why = "integer tag with length != 8";
				return -EINVAL;
			}
			memcpy(&v, s.p, 8); /* little-endian host (x86_64/arm64) */
		} else if (tag != T_MOUNT && tag != T_NOTIFY_NRS && str_has_nul(s)) {
			*why = "NUL byte in string";
			return -EINVAL;
		}
		int r = 0;
		switch (tag) {
		case T_ARG: r = push(&pl->arg, &pl->n_arg, s); break;
		case T_ENV: r = push(&pl->env, &pl->n_env, s); break;
		case T_LOWER: r = push(&pl->lower, &pl->n_lower, s); break;
		case T_MOUNT: r = push(&pl->mount, &pl->n_mount, s); break;
		case T_CGROUP_PROCS: r = push(&pl->procs, &pl->n_procs, s); break;
		case T_INHERIT: r = push(&pl->inherit, &pl->n_inherit, s); break;
		case T_EXTERNAL: r = push(&pl->external, &pl->n_external, s); break;
		case T_IMAGES_DIR: pl->images_dir = s; break;
		case T_UPPER_ARCHIVE: pl->upper_archive = s; break;
		case T_CRIU: pl->criu = s; break;
		case T_LOG: pl->log = s; break;
		case T_NET_KEY: pl->net_key = s; break;
		case T_SANDBOX_DIR: pl->sandbox_dir = s; break;
		case T_HOSTNAME: pl->hostname = s; break;
		case T_WORKDIR: pl->workdir = s; break;
		case T_CGROUP2: pl->cgroup2 = s; break;
		case T_NETNS: pl->netns = s; break;
		case T_NOTIFY_SOCKET: pl->notify_socket = s; break;
		case T_NOTIFY_NRS: pl->notify_nrs = s; break;
		case T_PATH: pl->path = s; break;
		case T_TMPFS_BYTES: pl->tmpfs_bytes = v; break;
		case T_UID: pl->uid = v; break;
		case T_GID: pl->gid = v; break;
		case T_FLAGS: pl->flags = v; break;
		case T_ROWS: pl->rows = v; break;
		case T_COLS: pl->cols = v; break;
		case T_TARGET: pl->target = v; break;
		case T_KIND: pl->kind = v; break;
		}
		if (r) {
			*why = "too many repeated tags";
			return -EINVAL;
		}
	}
	return 0;
}

/* Everything about a SPAWN plan that can be checked without touching host state (except stat() of
 * MOUNT sources). Shared by the launcher (cold SPAWN and SPAWN into a warm slot) and by a warm
 * slot's init, which re-checks the plan it receives instead of trusting the channel. */
int spawn_plan_check(const struct plan *pl, const char **why)
{
	if (!pl->n_arg || !pl->n_lower || !HAVE(pl, T_SANDBOX_DIR) || !HAVE(pl, T_TMPFS_BYTES) ||
	    !HAVE(pl, T_HOSTNAME) || !HAVE(pl, T_WORKDIR) || !HAVE(pl, T_UID) || !HAVE(pl, T_GID) ||
	    !HAVE(pl, T_CGROUP2) || !HAVE(pl, T_FLAGS)) {
		*why = "SPAWN needs ARG, LOWER, SANDBOX_DIR, TMPFS_BYTES, HOSTNAME, WORKDIR, UID, GID, CGROUP2, FLAGS";
		return -EINVAL;
	}
	if (pl->flags & ~FLAGS_KNOWN || pl->uid >= 0xffffffffu || pl->gid >= 0xffffffffu || pl->hostname.len > 64 ||
	    !pl->workdir.len || pl->workdir.p[0] != '/' || pl->n_procs > MAX_CGROUP_PROCS || pl->rows > 0xffff ||
	    pl->cols > 0xffff || pl->tmpfs_bytes == 0) {
		*why = "bad FLAGS, UID, GID, HOSTNAME, WORKDIR, ROWS, COLS, TMPFS_BYTES or too many CGROUP_PROCS";
		return -EINVAL;
	}
	int r;
	if ((r = validate_lowers(pl, why)) < 0 || (r = validate_mounts(pl, why)) < 0)
		return r;
	return 0;
}

void plan_free(struct plan *pl)
{
	free(pl->arg);
	free(pl->env);
	free(pl->lower);
	free(pl->mount);
	free(pl->procs);
	free(pl->inherit);
	free(pl->external);
	memset(pl, 0, sizeof *pl);
}

bool str_has_nul(struct str s) { return memchr(s.p, 0, s.len) != NULL; }

char *str_dup0(struct str s)
{
	char *p = malloc((size_t)s.len + 1);
	if (p) {
		memcpy(p, s.p, s.len);
		p[s.len] = 0;
	}
	return p;
}

/* One allocation holding the pointer array and the strings: freed with a single free(). */
char **strv_from(const struct str *v, uint32_t n)
{
	size_t total = (n + 1) * sizeof(char *);
	for (uint32_t i = 0; i < n; i++)
		total += v[i].len + 1;
	char **out = malloc(total);
	if (!out)
		return NULL;
	char *p = (char *)(out + n + 1);
	for (uint32_t i = 0; i < n; i++) {
		out[i] = p;
		memcpy(p, v[i].p, v[i].len);
		p[v[i].len] = 0;
		p += v[i].len + 1;
	}
	out[n] = NULL;
	return out;
}
