/** The one IPC channel between the preload and the main process; messages are the shared contract's. */
export const IPC_CHANNEL = 'ai-sandbox:api';
