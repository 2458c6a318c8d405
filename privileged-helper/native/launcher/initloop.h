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
/* The same loop for `ms` milliseconds; returns unless the command ended first (then it _exits). */
void init_loop_for(pid_t cmd, int status_fd, unsigned ms);
#endif
