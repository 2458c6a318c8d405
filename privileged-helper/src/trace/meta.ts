/** What a stored trace says about itself: the shape on the socket and in the app (no node imports). */
export interface TraceMeta {
  sandbox: string;
  /** the workflow run a step's sandbox belongs to */
  run: string | null;
  cgid: string;
  startedAt: string;
  endedAt: string | null;
  /** wall-clock ns minus CLOCK_MONOTONIC ns, sampled when tracing started */
  wallOffsetNs: string;
  syscalls: string[] | null;
  rate: number;
  counters: TraceCounters | null;
}

export interface TraceCounters {
  /** records the kernel wrote */
  emitted: number;
  /** dropped in the kernel: the ring buffer was full */
  kernelDropped: number;
  /** over the sandbox's rate limit: counted by syscall in `aggregated`, not recorded one by one */
  rateLimited: number;
  aggregated: Record<string, number>;
  /** records the store could not keep (the disk lagged too far) */
  storeDropped: number;
}

/** One syscall as a subscriber sees it. */
export interface TraceEvent {
  sandbox: string;
  /** wall clock at entry, microseconds since the epoch */
  tsUs: number;
  /** entry to exit, nanoseconds (0 for exit/exit_group, which do not return) */
  durNs: number;
  pid: number;
  tid: number;
  nr: number;
  syscall: string;
  /** the return value; negative is -errno */
  ret: number;
  errno?: string | undefined;
  /** the path argument (open, exec, stat, ... families) */
  path?: string | undefined;
  /** the path was longer than 255 bytes and is cut */
  pathCut?: true | undefined;
  /** the sockaddr argument (connect, bind) */
  addr?: TraceAddr | undefined;
  /** the fd argument (first argument of fd calls; the dirfd of *at calls, AT_FDCWD = -100) */
  fd?: number | undefined;
  /** open flags, decoded (O_RDONLY|O_CLOEXEC) */
  flags?: string | undefined;
  /** exit/exit_group: reported at entry */
  noExit?: true | undefined;
  /** seen only at exit: refused by seccomp before it ran (or in flight when tracing started); no path/addr */
  noEntry?: true | undefined;
}

export type TraceAddr =
  | { family: 'inet' | 'inet6'; address: string; port: number }
  | { family: 'unix'; path: string }
  | { family: number };
