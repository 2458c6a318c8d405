/** Run: start the workflow, watch each step's status and output. */
import { expect, type Page } from '@playwright/test';
import { AppPage } from './app-page.js';

export class RunPage extends AppPage {
  constructor(page: Page) {
    super(page);
  }

  async start(): Promise<string> {
    await this.view('Run');
    await this.page.getByRole('button', { name: 'Run workflow ▶' }).click();
    await expect(this.page.getByTestId('run-status')).toBeVisible();
    return (await this.page.getByTestId('run-detail').locator('b').first().innerText()).trim();
  }

  async selectStep(id: string): Promise<void> {
    await this.page.getByTestId(`row-${id}`).click();
  }

  async expectStep(id: string, status: string | RegExp): Promise<void> {
    await expect(this.page.getByTestId(`row-status-${id}`)).toHaveText(status);
  }

  async waitForRun(status: string): Promise<void> {
    await expect(this.page.getByTestId('run-status')).toHaveText(status, { timeout: 60_000 });
  }

  async expectOutput(text: string | RegExp): Promise<void> {
    await expect.poll(() => this.terminalText('output-term'), { timeout: 30_000 }).toMatch(text);
  }
}
