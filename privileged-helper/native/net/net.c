/*
 * ai-sandbox-net: the helper's network hands. One long-lived root process, so a networked sandbox
 * costs no process start: it applies nftables batches through libnftables (one transaction each),
 * and makes and unmakes network slots with rtnetlink (a namespace held by a bind mount of ours, a veth
 * pair: eth0 inside with the sandbox's address and default route, <prefix><i> on the host with the
 * gateway address; IPv6 off on both ends; IPv4 forwarding on for the host end only).
 *
 * Protocol on stdin/stdout (little endian): request = u32 length, u8 op, payload;
 * reply = u32 status (0 ok, else an errno, or 1 for an nftables error), u32 length, text.
 *   op 0 NFT       payload: nft commands; reply text: their output (or libnftables' error)
 *   op 1 NFT_JSON  the same with JSON output
 *   op 2 SLOT_NEW  payload: "ifname\0address\0gateway\0nspath\0"; EEXIST if the interface name is
 *                  taken (another helper instance holds that slot): nothing is left behind
 *   op 3 SLOT_DEL  payload: "ifname\0nspath\0": deletes the veth pair, unmounts and removes nspath
 *
 * Threat model: only the helper (root) talks to this process, over pipes it created; names and
 * addresses come from the helper's allocator (our prefix, our range), nft text from validated numbers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQUEST (4u << 20)

enum { OP_NFT = 0, OP_NFT_JSON = 1, OP_SLOT_NEW = 2, OP_SLOT_DEL = 3 };

static int host_ns = -1;

/* ---- netlink ---------------------------------------------------------------------------------- */

/* A request buffer; requests are built through a pointer into `raw`, so the compiler's object-size
 * checks see the whole buffer. */
union nlreq {
	struct nlmsghdr h;
	char raw[2048];
};

static struct nlmsghdr *req_init(union nlreq *r, unsigned short type, unsigned short flags)
{
	memset(r, 0, sizeof *r);
	struct nlmsghdr *n = (struct nlmsghdr *)r->raw;
	n->nlmsg_type = type;
	n->nlmsg_flags = flags;
	return n;
}

static struct rtattr *attr(struct nlmsghdr *n, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

static void nest_end(struct nlmsghdr *n, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)n + n->nlmsg_len - (char *)nest);
}

static void *body(struct nlmsghdr *n, size_t len)
{
	void *b = NLMSG_DATA(n);
	n->nlmsg_len = NLMSG_LENGTH(len);
	return b;
}

/* Send one request and wait for its ACK: 0, or -errno from the kernel. */
static int talk(int fd, struct nlmsghdr *n)
{
	static uint32_t seq;
	n->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	n->nlmsg_seq = ++seq;
	if (send(fd, n, n->nlmsg_len, 0) < 0)
		return -errno;
	char buf[4096];
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)r); h = NLMSG_NEXT(h, r)) {
			if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
				continue;
			return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
	}
}

static int nl_socket(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

static int link_up(int fd, int index)
{
	union nlreq r;
	struct nlmsghdr *n = req_init(&r, RTM_NEWLINK, 0);
	struct ifinfomsg *i = body(n, sizeof *i);
	i->ifi_index = index;
	i->ifi_flags = i->ifi_change = IFF_UP;
	return talk(fd, n);
}

static int addr_add(int fd, int index, const struct in_addr *a, unsigned char prefix)
{
	union nlreq r;
	struct nlmsghdr *n = req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *m = body(n, sizeof *m);
	m->ifa_family = AF_INET;
	m->ifa_prefixlen = prefix;
	m->ifa_index = (unsigned)index;
	attr(n, IFA_LOCAL, a, 4);
	attr(n, IFA_ADDRESS, a, 4);
	return talk(fd, n);
}

static int default_route(int fd, int index, const struct in_addr *gw)
{
	union nlreq r;
	struct nlmsghdr *n = req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *m = body(n, sizeof *m);
	m->rtm_family = AF_INET;
	m->rtm_table = RT_TABLE_MAIN;
	m->rtm_protocol = RTPROT_BOOT;
	m->rtm_scope = RT_SCOPE_UNIVERSE;
	m->rtm_type = RTN_UNICAST;
	m->rtm_flags = RTNH_F_ONLINK;
	attr(n, RTA_GATEWAY, gw, 4);
	attr(n, RTA_OIF, &index, 4);
	return talk(fd, n);
}

/* eth0 here, its peer `peer` in the host namespace. */
static int veth_add(int fd, const char *peer)
{
	union nlreq r;
	struct nlmsghdr *n = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	body(n, sizeof(struct ifinfomsg));
	attr(n, IFLA_IFNAME, "eth0", 5);
	struct rtattr *li = attr(n, IFLA_LINKINFO, NULL, 0);
	attr(n, IFLA_INFO_KIND, "veth", 4);
	struct rtattr *data = attr(n, IFLA_INFO_DATA, NULL, 0);
	struct rtattr *p = attr(n, VETH_INFO_PEER, NULL, 0);
	n->nlmsg_len += NLMSG_ALIGN(sizeof(struct ifinfomsg)); /* the peer's (zeroed) ifinfomsg */
	attr(n, IFLA_IFNAME, peer, strlen(peer) + 1);
	attr(n, IFLA_NET_NS_FD, &host_ns, 4);
	nest_end(n, p);
	nest_end(n, data);
	nest_end(n, li);
	return talk(fd, n);
}

static int link_del(int fd, const char *name)
{
	union nlreq r;
	struct nlmsghdr *n = req_init(&r, RTM_DELLINK, 0);
	body(n, sizeof(struct ifinfomsg));
	attr(n, IFLA_IFNAME, name, strlen(name) + 1);
	return talk(fd, n);
}

static void sysctl_write(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* IPv6 compiled out, or no such knob: nothing to switch */
	(void)!write(fd, value, strlen(value));
	close(fd);
}

/* ---- slots ------------------------------------------------------------------------------------ */

/* The veth pair goes at once (RTM_DELLINK; it waits for RCU grace periods, tens of ms, which is why
 * the helper sends slot work to a process of its own, never the one on a sandbox's start path), then
 * the namespace's last reference, the bind mount. Left to the kernel's namespace teardown alone, the
 * pair can outlive its sandbox by seconds when many namespaces end at once. */
static int slot_del(const char *ifname, const char *nspath)
{
	int fd = nl_socket();
	if (fd >= 0) {
		link_del(fd, ifname); /* ENODEV when it is already gone */
		close(fd);
	}
	umount2(nspath, MNT_DETACH);
	unlink(nspath);
	return 0;
}

/* Everything inside the new namespace; the caller returns to the host namespace whatever happens. */
static int slot_inside(const char *ifname, const char *nspath, const struct in_addr *addr, const struct in_addr *gw)
{
	int r, fd = open(nspath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	if (mount("/proc/self/ns/net", nspath, NULL, MS_BIND, NULL) < 0)
		return -errno;
	sysctl_write("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	sysctl_write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	if ((fd = nl_socket()) < 0)
		return -errno;
	int lo = (int)if_nametoindex("lo");
	if ((r = veth_add(fd, ifname)) == 0 && (r = link_up(fd, lo)) == 0) {
		int eth0 = (int)if_nametoindex("eth0");
		if (!eth0)
			r = -ENODEV;
		else if ((r = addr_add(fd, eth0, addr, 30)) == 0 && (r = link_up(fd, eth0)) == 0)
			r = default_route(fd, eth0, gw);
	}
	close(fd);
	return r;
}

static int slot_new(const char *ifname, const char *addr_s, const char *gw_s, const char *nspath)
{
	struct in_addr addr, gw;
	if (strlen(ifname) >= IFNAMSIZ || inet_pton(AF_INET, addr_s, &addr) != 1 || inet_pton(AF_INET, gw_s, &gw) != 1)
		return -EINVAL;
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	int r = slot_inside(ifname, nspath, &addr, &gw);
	if (setns(host_ns, CLONE_NEWNET) < 0) {
		fprintf(stderr, "ai-sandbox-net: cannot return to the host network namespace: %s\n", strerror(errno));
		exit(1); /* never serve another request from the wrong namespace */
	}
	if (r < 0) {
		slot_del(ifname, nspath);
		return r;
	}
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	sysctl_write(path, "1");
	snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/forwarding", ifname);
	sysctl_write(path, "1");
	int fd = nl_socket(), index = (int)if_nametoindex(ifname);
	if (fd < 0)
		r = -errno;
	else if (!index)
		r = -ENODEV;
	else if ((r = addr_add(fd, index, &gw, 30)) == 0)
		r = link_up(fd, index);
	if (fd >= 0)
		close(fd);
	if (r < 0)
		slot_del(ifname, nspath);
	return r;
}

/* ---- the loop --------------------------------------------------------------------------------- */

static int read_full(void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = read(0, (char *)buf + off, n - off);
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int write_full(const void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = write(1, (const char *)buf + off, n - off);
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int reply(uint32_t status, const char *text)
{
	uint32_t hdr[2] = { status, (uint32_t)(text ? strlen(text) : 0) };
	return write_full(hdr, sizeof hdr) < 0 || (hdr[1] && write_full(text, hdr[1]) < 0) ? -1 : 0;
}

/* The payload's n NUL-terminated strings, or -1 when it is not exactly that. */
static int split(char *p, uint32_t len, const char **out, int n)
{
	uint32_t off = 0;
	for (int i = 0; i < n; i++) {
		out[i] = p + off;
		char *z = memchr(p + off, 0, len - off);
		if (!z || z == p + off)
			return -1;
		off = (uint32_t)(z - p) + 1;
	}
	return off == len ? 0 : -1;
}

int main(void)
{
	/* Die with the helper, kill -9 included: a request still queued in our stdin must not make a slot
	 * after the next helper has reconciled this instance (nothing would remove it then). An orderly
	 * stop ends us by EOF, after its last request. */
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		return 1;
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!ctx || host_ns < 0 || nft_ctx_buffer_output(ctx) || nft_ctx_buffer_error(ctx)) {
		fprintf(stderr, "ai-sandbox-net: cannot set up (libnftables context, host namespace)\n");
		return 1;
	}
	for (;;) {
		uint32_t len;
		uint8_t op;
		if (read_full(&len, 4) < 0)
			return 0; /* the helper closed the pipe */
		if (len > MAX_REQUEST || read_full(&op, 1) < 0)
			return 1;
		char *p = malloc(len + 1);
		if (!p || read_full(p, len) < 0)
			return 1;
		p[len] = 0;
		int rc = 0;
		const char *s[4];
		if (op == OP_NFT || op == OP_NFT_JSON) {
			nft_ctx_output_set_flags(ctx, op == OP_NFT_JSON ? NFT_CTX_OUTPUT_JSON : 0);
			int bad = nft_run_cmd_from_buffer(ctx, p);
			const char *out = bad ? nft_ctx_get_error_buffer(ctx) : nft_ctx_get_output_buffer(ctx);
			rc = reply(bad ? 1u : 0u, out);
			/* each get_*_buffer call rewinds its buffer; read the other one so it does not pile up */
			(void)(bad ? nft_ctx_get_output_buffer(ctx) : nft_ctx_get_error_buffer(ctx));
		} else if (op == OP_SLOT_NEW && split(p, len, s, 4) == 0) {
			int r = slot_new(s[0], s[1], s[2], s[3]);
			rc = reply((uint32_t)-r, r ? strerror(-r) : NULL);
		} else if (op == OP_SLOT_DEL && split(p, len, s, 2) == 0) {
			rc = reply((uint32_t)-slot_del(s[0], s[1]), NULL);
		} else {
			rc = reply(EINVAL, "bad request");
		}
		free(p);
		if (rc < 0)
			return 1;
	}
}
