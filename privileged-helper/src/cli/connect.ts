/**
 * How the CLI reaches a helper: the daemon's socket when one is listening; for `run`, otherwise an
 * embedded helper in this very process (as root), so one command works with no daemon installed.
 */
import type { Socket } from 'node:net';
import { daemonConfig, embeddedConfig } from '../config.js';
import { AppError } from '../errors/app-error.js';
import { Helper } from '../helper/helper.js';
import { HelperClient } from '../protocol/client.js';
import { Connection } from '../server/connection.js';
import { duplexPair } from '../util/duplex-pair.js';

export interface Session {
  client: HelperClient;
  close(): Promise<void>;
}

function socketPath(): string {
  return daemonConfig().socketPath!;
}

export async function connectDaemon(): Promise<Session> {
  const path = socketPath();
  try {
    const client = await HelperClient.connect(path);
    return { client, close: async () => client.close() };
  } catch (err) {
    if (err instanceof AppError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') throw new AppError('PERMISSION_DENIED', `cannot open ${path}: run as root or join the ai-sandbox group (sudo usermod -aG ai-sandbox $USER, then log in again)`);
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      throw new AppError('HELPER_UNAVAILABLE', `no helper is running at ${path} (${code}): start one with \`sudo ai-sandbox helper\` (or \`npm start\`)`, { details: { noHelper: true } });
    }
    // anything else (a reset, a full listen backlog) is not "no helper": say what it was
    throw new AppError('HELPER_UNAVAILABLE', `cannot talk to the helper at ${path}: ${code ?? (err as Error).message}; \`ai-sandbox doctor\` checks it`);
  }
}

export async function connectOrEmbed(): Promise<Session> {
  try {
    return await connectDaemon();
  } catch (err) {
    // embed only when no helper is there at all, never beside one that is merely unreachable
    if (!(err instanceof AppError) || err.details?.noHelper !== true || process.getuid?.() !== 0) throw err;
  }
  const helper = await Helper.start(embeddedConfig());
  const [clientSide, helperSide] = duplexPair();
  new Connection(helperSide as unknown as Socket, helper.services, { version: helper.info.version, instance: helper.info.instance, capabilities: helper.info.capabilities });
  const client = await HelperClient.over(clientSide);
  return {
    client,
    close: async () => {
      client.close();
      await helper.stop();
    },
  };
}

/** Run `fn` with a session, and close it whatever happens. */
export async function withSession<T>(connect: () => Promise<Session>, fn: (s: Session) => Promise<T>): Promise<T> {
  const s = await connect();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

export function withDaemon<T>(fn: (s: Session) => Promise<T>): Promise<T> {
  return withSession(connectDaemon, fn);
}
