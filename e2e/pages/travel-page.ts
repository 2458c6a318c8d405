/** Time travel: snapshots (checkpoint, inspect, restore with a terminal, fork) and run replay. */
import { expect, type Locator, type Page } from '@playwright/test';
import { AppPage } from './app-page.js';

export class TravelPage extends AppPage {
  constructor(page: Page) {
    super(page);
  }

  async show(): Promise<void> {
    await this.view('Time travel');
  }

  snapshots(): Locator {
    return this.page.getByTestId('snapshot-timeline').locator('.snap');
  }

  async checkpoint(sandbox: string): Promise<void> {
    const before = await this.snapshots().count();
    await this.page.getByTestId(`checkpoint-${sandbox}`).click();
    await expect(this.snapshots()).toHaveCount(before + 1, { timeout: 30_000 });
  }

  async selectSnapshot(index: number): Promise<void> {
    await this.snapshots().nth(index).click();
    await expect(this.page.getByTestId('snapshot-detail')).toBeVisible();
  }

  async expectDiffMentions(text: string): Promise<void> {
    await expect(this.page.getByTestId('snapshot-diff')).toContainText(text);
  }

  async restore(): Promise<void> {
    await this.page.getByTestId('restore').click();
    await expect(this.page.getByTestId('sandbox-terminal')).toBeVisible();
  }

  async typeInTerminal(line: string): Promise<void> {
    const term = this.page.getByTestId('sandbox-terminal').locator('.xterm');
    await term.click();
    await this.page.keyboard.type(line);
    await this.page.keyboard.press('Enter');
  }

  async expectTerminal(text: string | RegExp): Promise<void> {
    await expect.poll(() => this.terminalText('sandbox-terminal'), { timeout: 30_000 }).toMatch(text);
  }

  async fork(count: number): Promise<string[]> {
    await this.page.locator('input[name="fork-count"]').fill(String(count));
    await this.page.getByTestId('fork').click();
    const forked = this.page.getByTestId('forked');
    await expect(forked).toBeVisible({ timeout: 30_000 });
    return (await forked.innerText()).replace(/^forked: /, '').split(', ');
  }

  async replay(run: string, from: string, env: string): Promise<void> {
    await this.page.locator('select[name="replay-run"]').selectOption(run);
    await this.page.locator('select[name="replay-from"]').selectOption(from);
    await this.page.locator('textarea[name="replay-env"]').fill(env);
    await this.page.getByTestId('replay').click();
  }
}
