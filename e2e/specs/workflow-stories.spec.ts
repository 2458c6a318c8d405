/**
 * A user's day with the app, story by story, against a real helper and real sandboxes: author a
 * 3-step workflow with the mouse, save it and check it with the CLI; run it and watch its output;
 * replay from the middle step with an edited input; checkpoint a sandbox, open the snapshot, restore
 * it and type in its terminal; fork it three times.
 */
import path from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from '../fixtures/app.js';
import { AuthorPage } from '../pages/author-page.js';
import { RunPage } from '../pages/run-page.js';
import { TravelPage } from '../pages/travel-page.js';

test.describe.configure({ mode: 'serial' });

let page: Page;
let file: string;
let firstRun: string;

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
});
test.afterAll(async () => {
  await page?.close();
});

test('I author a 3-step workflow by dragging steps and connecting them, save it, and the CLI accepts it', async ({ world }) => {
  file = path.join(world.workdir, 'three-steps.yaml');
  const author = new AuthorPage(page);
  await author.open(world.url);
  await author.newWorkflow(file);
  await author.dragStepTo(450, 250);
  await expect(author.node('step-2')).toBeVisible();
  await author.dragStepTo(750, 400);
  await expect(author.node('step-3')).toBeVisible();
  await author.page.getByRole('button', { name: 'Auto-layout' }).click();
  await author.connect('step-1', 'step-2');
  await author.connect('step-2', 'step-3');
  await expect(author.minimapSteps).toHaveCount(3);
  // laid out again now that the needs exist: one column per depth, as a user tidies up after connecting
  await author.page.getByRole('button', { name: 'Auto-layout' }).click();
  await expect.poll(async () => ((await author.node('step-3').boundingBox())?.x ?? 0) > ((await author.node('step-1').boundingBox())?.x ?? 0)).toBe(true);

  await author.select('step-1');
  await author.setField('run', 'for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 0.5; done');
  await author.select('step-2');
  await author.setField('run', 'echo "input=$INPUT"; sleep 1');
  await author.setField('env', 'INPUT=original');
  await author.setField('memory', '128M');
  await author.select('step-3');
  await author.setField('run', 'echo finished');
  await author.expectValid();
  await author.save();
  await author.screenshot('author');
  await page.getByTestId('author-canvas').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('t');
  await expect(page.locator('.app.theme-dark')).toBeVisible();
  await author.screenshot('author-dark');
  await page.keyboard.press('t');

  const r = await world.cli(['workflow', 'validate', file]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('step-1');
  expect(r.stdout).toContain('step-3');
});

test('I run it and see its output live in the terminal pane', async () => {
  const run = new RunPage(page);
  firstRun = await run.start();
  await run.selectStep('step-1');
  await run.expectStep('step-1', 'running');
  await run.expectOutput(/tick 2/);
  await run.screenshot('run-live');
  await run.waitForRun('succeeded');
  for (const s of ['step-1', 'step-2', 'step-3']) await run.expectStep(s, 'succeeded');
  await run.screenshot('run');
});

test('I replay from the middle step with an edited input, and only the later steps run again', async () => {
  const travel = new TravelPage(page);
  await travel.show();
  await travel.replay(firstRun, 'step-2', 'INPUT=edited');
  const run = new RunPage(page);
  await expect(page.getByTestId('run-detail')).not.toContainText(firstRun);
  await run.selectStep('step-2');
  await run.waitForRun('succeeded');
  await run.expectStep('step-1', 'restored');
  await run.expectStep('step-2', 'succeeded');
  await run.expectStep('step-3', 'succeeded');
  await run.expectOutput(/input=edited/);
  await run.screenshot('replay');
});

test('I checkpoint a running sandbox, inspect the snapshot, restore it and type a command in it', async ({ world }) => {
  const started = await world.cli(['start', '--name', 'e2e-counter', '--', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done']);
  expect(started.code, started.stderr).toBe(0);
  const travel = new TravelPage(page);
  await travel.show();
  await expect(page.getByTestId('checkpoint-e2e-counter')).toBeVisible({ timeout: 10_000 });
  await travel.checkpoint('e2e-counter');
  await page.waitForTimeout(600);
  await travel.checkpoint('e2e-counter');
  await travel.selectSnapshot(1);
  await travel.expectDiffMentions('/tmp/count');
  await travel.screenshot('time-travel');
  await travel.restore();
  await travel.typeInTerminal('echo "count=$(cat /tmp/count) marker-$((6*7))"');
  await travel.expectTerminal(/marker-42/);
  await travel.screenshot('restored-terminal');
});

test('I fork the snapshot three times', async ({ world }) => {
  const travel = new TravelPage(page);
  const names = await travel.fork(3);
  expect(names).toHaveLength(3);
  const ps = await world.cli(['ps', '--json']);
  for (const n of names) expect(ps.stdout).toContain(n);
  await travel.screenshot('forked');
});
