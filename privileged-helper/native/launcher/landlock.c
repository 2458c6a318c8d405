/*
 * Landlock for the sandboxed command: deny TCP bind (ABI >= 4) unless ALLOW_LISTEN, and scope
 * signals to the sandbox's own domain (ABI >= 6). No filesystem rules: the overlay root and mounts
 * already define what the command sees.
 *
 * No LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET: CRIU's parasite, injected into each dumped task, connects
 * to an abstract unix socket of criu's; the scope refuses that connect and every checkpoint would fail.
 * Abstract sockets are per network namespace and the sandbox's is private, so the scope only kept an
 * EXEC'd process and the command apart, which no policy needs. CRIU 4.2.1 does not restore Landlock
 * domains at all: a RESTOREd sandbox runs without this layer (its seccomp filters, namespaces,
 * capabilities and no_new_privs are restored; without ALLOW_LISTEN the seccomp filter still refuses
 * listen(), so a restored sandbox still cannot serve TCP).
 *
 * Threat model: applied in the command child after no_new_privs and before seccomp; the untrusted
 * command only runs after it. bookworm's headers (6.1) know ABI 1-2, so the newer constants are ours.
 */
#include "launcher.h"

#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};

int landlock_abi_version(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : (int)v;
}

int landlock_apply(bool allow_listen)
{
	struct ll_ruleset_attr a = { 0 };
	size_t size;
	if (G.landlock_abi >= 6) {
		size = sizeof a;
		a.scoped = LL_SCOPE_SIGNAL;
	} else if (G.landlock_abi >= 4) {
		size = offsetof(struct ll_ruleset_attr, scoped);
	} else {
		return 0; /* nothing we would restrict exists in this ABI */
	}
	if (!allow_listen)
		a.handled_access_net = LL_ACCESS_NET_BIND_TCP; /* handled with no rule: every TCP bind denied */
	if (!a.handled_access_net && !a.scoped)
		return 0;
	int fd = (int)syscall(SYS_landlock_create_ruleset, &a, size, 0);
	if (fd < 0)
		return -1;
	int r = (int)syscall(SYS_landlock_restrict_self, fd, 0);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}
