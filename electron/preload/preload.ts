/**
 * The preload: exposes one typed API, `window.aiSandbox`, built from the shared contract — calls are
 * checked against the contract here (a mistake fails in the page, in words) and again in the main
 * process (which trusts nothing from the renderer). No Node built-ins: this runs sandboxed.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { checkCall, METHODS, type UiApi, type UiServerMessage } from '../../privileged-helper/src/ui/contract.js';
import { IPC_CHANNEL } from '../channel.js';

type Incoming = Exclude<UiServerMessage, { type: 'result' }>;

let nextId = 1;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
const handlers = new Set<(m: Incoming) => void>();

ipcRenderer.on(IPC_CHANNEL, (_event, msg: UiServerMessage) => {
  if (msg.type === 'result') {
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
  } else for (const h of handlers) h(msg);
});

const api: UiApi & { methods: readonly string[] } = {
  methods: METHODS,
  call(method, params) {
    const checked = checkCall(method, params);
    if (!checked.ok) return Promise.reject(Object.assign(new Error(checked.error.message), { code: checked.error.code }));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ipcRenderer.send(IPC_CHANNEL, { type: 'call', id, method, params });
    });
  },
  onMessage(handler) {
    handlers.add(handler);
    return () => handlers.delete(handler);
  },
  ack(stream, seq) {
    ipcRenderer.send(IPC_CHANNEL, { type: 'ack', stream, seq });
  },
};

contextBridge.exposeInMainWorld('aiSandbox', api);
