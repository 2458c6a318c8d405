import type { SandboxManager } from '../sandbox/manager.js';
import type { ConnectionStream } from '../server/stream.js';

/** What an operation handler may use: the manager, and its own connection's streams. */
export interface RpcContext {
  manager: SandboxManager;
  helper: { version: string; instance: string; capabilities: string[] };
  conn: {
    openStream(): ConnectionStream;
    /** run when the client disconnects (e.g. stop a sandbox that `run` attached to) */
    onClose(fn: () => void): void;
  };
}
