/* The sandbox init's wait loop, shared by the launcher (fallback) and build/ai-sandbox-init. */
#ifndef AI_SANDBOX_INITLOOP_H
#define AI_SANDBOX_INITLOOP_H
#include <sys/types.h>
/* Path of the init binary inside every sandbox root (the launcher copies it into upper/). */
#define SANDBOX_INIT_DIR ".ai-sandbox"
#define SANDBOX_INIT_PATH "/.ai-sandbox/init"
/* An empty, immutable directory next to it: bound read-only over /proc/acpi, /proc/scsi, /proc/asound. */
#define SANDBOX_EMPTY_PATH "/.ai-sandbox/empty"
void init_loop(pid_t cmd, int status_fd) __attribute__((noreturn));
/* Sent by the helper to an init still in init_loop_for: re-exec now (a checkpoint waits for it). Ignored
 * after the re-exec; a command that sends it only brings forward what happens anyway. (SIGRTMAX - 1) */
#define INIT_SIG_SETTLE_NOW 63
/* The same loop for `ms` milliseconds, or until INIT_SIG_SETTLE_NOW; returns unless the command ended
 * first (then it _exits). */
void init_loop_for(pid_t cmd, int status_fd, unsigned ms);
#endif
