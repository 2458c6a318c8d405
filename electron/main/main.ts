/**
 * The desktop app's main process: one helper link (hello, version, reconnect with a visible status),
 * one contract session per window, and a locked-down renderer (context isolation, sandbox, no Node, no
 * navigation, no new windows). Every IPC message is accepted only from a window we made, showing our
 * own renderer file, and then checked against the shared contract by the session before anything runs.
 */
import { app, BrowserWindow, ipcMain, type IpcMainEvent } from 'electron';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { daemonConfig } from '../../privileged-helper/src/config.js';
import { HelperLink } from '../../privileged-helper/src/ui/helper-link.js';
import { UiSession } from '../../privileged-helper/src/ui/session.js';
import { IPC_CHANNEL } from '../channel.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** electron/dist/main → the repository (or the packaged app's resources) */
const root = path.resolve(here, '../../..');
const rendererIndex = path.join(root, 'renderer/dist/index.html');
const preload = path.join(root, 'electron/dist/preload/preload.cjs');
const rendererUrl = pathToFileURL(rendererIndex).href;

const link = new HelperLink(daemonConfig().socketPath!, 'ai-sandbox-desktop');
const sessions = new Map<number, UiSession>();

function initialFile(): string | null {
  const i = process.argv.indexOf('--open');
  return i >= 0 && process.argv[i + 1] ? path.resolve(process.argv[i + 1]!) : null;
}

function createWindow(): void {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'ai-sandbox',
    webPreferences: { preload, contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, spellcheck: false },
  });
  const contents = win.webContents;
  contents.on('will-navigate', (e) => e.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  const session = new UiSession(link, { mode: 'electron', initialFile: initialFile() }, (msg) => {
    if (!contents.isDestroyed()) contents.send(IPC_CHANNEL, msg);
  });
  const id = contents.id;
  sessions.set(id, session);
  win.on('closed', () => {
    session.close();
    sessions.delete(id);
  });
  void win.loadFile(rendererIndex);
}

/** The sender check: our window, our top frame, our renderer file. */
function trusted(event: IpcMainEvent): UiSession | null {
  const session = sessions.get(event.sender.id);
  const frame = event.senderFrame;
  if (!session || !frame || frame !== event.sender.mainFrame) return null;
  if (frame.url.split(/[?#]/)[0] !== rendererUrl) return null;
  return session;
}

ipcMain.on(IPC_CHANNEL, (event, msg: unknown) => {
  const session = trusted(event);
  if (session) void session.handle(msg);
});

app.enableSandbox();
void app.whenReady().then(async () => {
  await link.start();
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});
app.on('window-all-closed', () => {
  link.close();
  app.quit();
});
