/**
 * Typed errors with codes (one closed list), after Temporal's ApplicationFailure. Every error that crosses
 * the socket is an AppError; anything else is reported as INTERNAL with its message.
 */
export const ERROR_CODES = [
  'BAD_REQUEST', // malformed frame or a request that fails the schema
  'UNSUPPORTED_PROTOCOL',
  'UNKNOWN_OPERATION',
  'INVALID_ARGUMENT', // well-formed but meaningless: a path outside the policy, a limit out of range
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'INVALID_STATE', // `cannot checkpoint sandbox "x" in state stopped`
  'FAILED_TO_START',
  'RESOURCE_EXHAUSTED',
  'CGROUP_UNAVAILABLE',
  'KERNEL_FEATURE_MISSING',
  'LAUNCHER_FAILED',
  'HELPER_UNAVAILABLE',
  'PERMISSION_DENIED',
  'DATA_CORRUPT', // a snapshot whose files do not match their checksums
  'SNAPSHOT_FAILED', // CRIU refused a dump or restore; the message has its log's last words
  'UNSUPPORTED', // a feature this host (or build) cannot do: said, never faked
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorShape {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown> | undefined;
  retryable: boolean;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: Record<string, unknown>; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = opts.details;
    this.retryable = opts.retryable ?? false;
  }

  toShape(): ErrorShape {
    return { code: this.code, message: this.message, details: this.details, retryable: this.retryable };
  }

  static from(err: unknown): AppError {
    if (err instanceof AppError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new AppError('INTERNAL', message, { cause: err });
  }
}
