/** Author: make and edit a workflow on the canvas, the way a user does it with the mouse. */
import { expect, type Locator, type Page } from '@playwright/test';
import { AppPage } from './app-page.js';

export class AuthorPage extends AppPage {
  constructor(page: Page) {
    super(page);
  }

  get canvas(): Locator {
    return this.page.getByTestId('author-canvas');
  }

  node(name: string): Locator {
    return this.page.getByTestId(`step-${name}`);
  }

  /** the steps the minimap draws (one rectangle per step once React Flow has measured them) */
  get minimapSteps(): Locator {
    return this.canvas.locator('.react-flow__minimap .react-flow__minimap-node');
  }

  async newWorkflow(file: string): Promise<void> {
    await this.view('Author');
    await this.page.locator('input[name="file-path"]').fill(file);
    await this.page.getByRole('button', { name: 'New', exact: true }).click();
    await expect(this.node('step-1')).toBeVisible();
  }

  /** drag the palette's Step onto the canvas at (x, y) relative to the canvas */
  async dragStepTo(x: number, y: number): Promise<void> {
    await this.page.getByTestId('palette-step').dragTo(this.canvas, { targetPosition: { x, y } });
  }

  /** drag from one step's output handle to another's input handle: `to` then needs `from` */
  async connect(from: string, to: string): Promise<void> {
    const src = await this.node(from).locator('.react-flow__handle-right').boundingBox();
    const dst = await this.node(to).locator('.react-flow__handle-left').boundingBox();
    if (!src || !dst) throw new Error(`handles of ${from} or ${to} are not on screen`);
    await this.page.mouse.move(src.x + src.width / 2, src.y + src.height / 2);
    await this.page.mouse.down();
    await this.page.mouse.move((src.x + dst.x) / 2, (src.y + dst.y) / 2, { steps: 5 });
    await this.page.mouse.move(dst.x + dst.width / 2, dst.y + dst.height / 2, { steps: 5 });
    await this.page.mouse.up();
    await expect(this.page.locator(`.react-flow__edge[data-id="${from}->${to}"]`)).toHaveCount(1);
  }

  async select(name: string): Promise<void> {
    await this.node(name).click();
    await expect(this.page.getByTestId('step-panel')).toContainText(`Step ${name}`);
  }

  async setField(field: string, value: string): Promise<void> {
    const input = this.page.getByTestId('step-panel').locator(`[name="${field}"]`);
    await input.fill(value);
    await input.blur();
  }

  async save(): Promise<void> {
    await this.page.getByRole('button', { name: /^Save/ }).click();
    await expect(this.page.getByRole('button', { name: 'Save', exact: true })).toBeVisible();
  }

  async expectValid(): Promise<void> {
    await expect(this.page.getByTestId('validation')).toHaveText('no problems');
  }
}
