/*
 * Approvals (seccomp user notification), the launcher's part: connect to the supervisor on the host
 * side, and in the command install a filter that hands the chosen syscalls to it.
 *
 * Threat model: the supervisor's socket path comes from the helper (root) and must be a root-owned
 * socket; the connection is made by the launcher before clone3 and announces the sandbox id, so a
 * sandbox cannot claim another's identity. The command installs the notify filter itself (the listener
 * fd is returned to the installing task), sends the listener over that connection and closes both
 * before any untrusted code runs: the sandboxed program never holds its own listener, so it cannot
 * answer its own requests. The filter is installed after the connection exists (a filter first would
 * trap the connect) and before the allowlist: the allowlist's KILL/ERRNO still win over USER_NOTIF
 * (seccomp takes the most restrictive action of all filters).
 */
#include "launcher.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define NOTIFY_MAX_NRS 64

int notify_connect(uint32_t id, const struct plan *pl, const char **why)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (pl->notify_socket.len == 0 || pl->notify_socket.len >= sizeof sa.sun_path || pl->notify_socket.p[0] != '/') {
		*why = "NOTIFY_SOCKET must be an absolute path shorter than 108 bytes";
		return -EINVAL;
	}
	if (pl->notify_nrs.len == 0 || pl->notify_nrs.len % 4 || pl->notify_nrs.len / 4 > NOTIFY_MAX_NRS) {
		*why = "NOTIFY_NRS must be 1-64 u32 syscall numbers";
		return -EINVAL;
	}
	memcpy(sa.sun_path, pl->notify_socket.p, pl->notify_socket.len);
	struct stat st;
	if (stat(sa.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
		*why = "NOTIFY_SOCKET is not a root-only socket";
		return -EPERM;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || write(fd, &id, 4) != 4) {
		int e = errno;
		close(fd);
		*why = "connect to the approvals supervisor";
		return -e;
	}
	return fd;
}

int notify_install(const struct cmd_spec *c)
{
	struct sock_filter f[4 + NOTIFY_MAX_NRS];
	uint32_t n = c->n_notify > NOTIFY_MAX_NRS ? NOTIFY_MAX_NRS : c->n_notify, k = 0;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	/* other architectures: not ours to decide here (the allowlist refuses them) */
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t nr;
		memcpy(&nr, c->notify_nrs + i, 4);
		/* match: fall through to the next instruction pair below (jt = 0 skips nothing, so build as
		 * JEQ nr -> RET USER_NOTIF placed at the end) */
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, (uint8_t)(n - i), 0);
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	struct sock_fprog prog = { .len = (unsigned short)k, .filter = f };
	int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0)
		return -1;
	char one = 1;
	struct iovec iov = { .iov_base = &one, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &listener, sizeof(int));
	int r = sendmsg(c->notify_fd, &m, MSG_NOSIGNAL) == 1 ? 0 : -1;
	int e = errno;
	close(listener);
	/* the supervisor confirms it holds the listener: a notification before that would wait unseen */
	if (r == 0 && read(c->notify_fd, &one, 1) != 1) {
		r = -1;
		e = errno ? errno : EPIPE;
	}
	close(c->notify_fd);
	errno = e;
	return r;
}
