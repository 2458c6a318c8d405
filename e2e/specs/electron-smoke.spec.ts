/**
 * The desktop app itself, through Playwright's Electron support — where the Electron binary exists.
 * On machines where it cannot be downloaded (as on our CI hosts) this says so and skips.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { _electron as electron, expect, test } from '@playwright/test';

const require = createRequire(import.meta.url);

/**
 * Where the installed Electron binary is, read from the package's own files: `require('electron')`
 * would try to download a missing binary, and nothing is downloaded by a test.
 */
function electronBinary(): string | null {
  try {
    const dir = path.dirname(require.resolve('electron/package.json'));
    const rel = fs.readFileSync(path.join(dir, 'path.txt'), 'utf8').trim();
    const bin = path.join(dir, 'dist', rel);
    return fs.existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

test('the Electron app opens its window and shows the helper status', async () => {
  const bin = electronBinary();
  const main = path.resolve(import.meta.dirname, '../../electron/dist/main/main.js');
  const why = !bin
    ? 'the Electron binary is not installed here (its download is not reachable from this machine; npm skipped its install script)'
    : !fs.existsSync(main)
      ? `the Electron main process is not built (${main}): run npm run build:electron`
      : null;
  if (why) console.log(`SKIPPED: Electron smoke test: ${why}`);
  test.skip(why !== null, why ?? '');
  const app = await electron.launch({ executablePath: bin!, args: [main, '--no-sandbox'] });
  try {
    const win = await app.firstWindow();
    await expect(win.getByTestId('helper-status')).toBeVisible();
  } finally {
    await app.close();
  }
});
