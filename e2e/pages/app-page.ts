/** The app's frame: open it, switch views, read the helper status, save a screenshot of a view. */
import path from 'node:path';
import { expect, type Page } from '@playwright/test';
import { ARTIFACTS } from '../fixtures/app.js';

export class AppPage {
  constructor(readonly page: Page) {}

  async open(url: string): Promise<void> {
    await this.page.goto(url);
    await expect(this.page.getByTestId('helper-status')).toHaveText('helper: connected');
  }

  async view(name: 'Author' | 'Run' | 'Time travel'): Promise<void> {
    await this.page.getByRole('tab', { name }).click();
  }

  async screenshot(name: string): Promise<void> {
    await this.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  }

  /** the text an xterm pane shows (its DOM rows) */
  async terminalText(testId: string): Promise<string> {
    return (await this.page.getByTestId(testId).locator('.xterm-rows').innerText()).replace(/\u00a0/g, ' ');
  }
}
