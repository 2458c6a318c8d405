/*
 * Capabilities: bounding set, securebits, and the final clear before execve.
 *
 * Threat model: runs in the sandbox init / command child before any untrusted code executes. The goal
 * is that the command, even as uid 0, holds no capability now and can never gain one: the bounding
 * set is emptied (no file caps at execve), securebits NOROOT (uid 0 gets nothing at execve),
 * NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE are set and locked, and permitted/effective/inheritable/
 * ambient are cleared explicitly.
 */
#include "launcher.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int drop_bounding_set(void)
{
	for (int c = 0; c <= G.cap_last_cap; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -1;
	return 0;
}

int lock_securebits(void)
{
	unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
			     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED;
#ifdef SECBIT_NO_CAP_AMBIENT_RAISE
	bits |= SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
#endif
	return prctl(PR_SET_SECUREBITS, bits, 0, 0, 0);
}

static int capset_mask(uint64_t eff_perm)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = { 0 };
	d[0].effective = d[0].permitted = (uint32_t)eff_perm;
	d[1].effective = d[1].permitted = (uint32_t)(eff_perm >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

int clear_capabilities(void)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return capset_mask(0);
}

int keep_only_cap_kill(void) { return capset_mask(1ULL << CAP_KILL); }
