import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import {
  DESKTOP,
  PHONE,
  ensureWebBuilt,
  expectPhoneFriendly,
  launchBrowser,
  openTab,
  screenshot,
  signIn,
} from './browser.js';

// The control plane's in-process workers run tasks with the FAKE runner for now (no real
// runner exists yet): `fake:lines N` prints N lines and exits 0, `fake:fail` exits 1,
// `fake:hang` runs until canceled.

const state = (page: Page) => page.locator('.page-head [data-testid="task-state"]');
const rowOf = (page: Page, id: string) => page.locator(`[data-testid="task-row"][data-task-id="${id}"]`);

async function launch(page: Page, command: string): Promise<string> {
  await page.getByRole('textbox', { name: 'Command' }).fill(command);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/tasks\/view\?id=/);
  return new URL(page.url()).searchParams.get('id')!;
}

describe('web app: tasks (launch, live status, log, timeline)', { timeout: 120_000 }, () => {
  let s: TestServer;
  let browser: Browser;
  let admin: Client;

  beforeAll(async () => {
    await ensureWebBuilt();
    s = await startTestServer();
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    browser = await launchBrowser();
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('launches from the form, shows the log live, searches it, downloads it, and draws the timeline', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      await page.getByTestId('empty').waitFor();
      await screenshot(page, 'tasks-empty', 'desktop');

      // An unclosed quote is caught before anything runs.
      await page.getByRole('textbox', { name: 'Command' }).fill("echo 'oops");
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      expect(await page.getByTestId('error').textContent()).toContain('quote is not closed');

      const id = await launch(page, 'fake:lines 40');
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      expect(await page.getByTestId('exit-code').textContent()).toBe('exit 0');
      await page.getByTestId('log').getByText('line 40', { exact: true }).waitFor();
      const log = (await page.getByTestId('log').textContent()) ?? '';
      expect(log).toContain('line 1');

      await page.getByRole('searchbox', { name: 'Search the output' }).fill('line 3');
      await page.getByTestId('log-matches').waitFor();
      // line 3, line 30..39
      expect(await page.getByTestId('log-matches').textContent()).toBe('11 matching lines');
      await page.getByRole('searchbox', { name: 'Search the output' }).fill('');

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Download' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe(`task-${id}.log`);
      const body = await readFile((await download.path())!, 'utf8');
      expect(body).toBe(Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join(''));

      const timeline = page.getByTestId('timeline');
      await timeline.locator('.timeline-seg').first().waitFor();
      expect(await timeline.textContent()).toContain('running');
      expect(await timeline.textContent()).toContain('succeeded');
      await screenshot(page, 'task', 'desktop');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows a failing task with its exit code', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      await launch(page, 'fake:fail');
      await state(page).and(page.locator('[data-state="failed"]')).waitFor();
      expect(await page.getByTestId('exit-code').textContent()).toBe('exit 1');
      await page.getByTestId('log').getByText('failing on purpose').waitFor();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the list updates live when a task starts elsewhere, and a running task can be canceled after confirmation', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      await page.getByTestId('live').filter({ hasText: 'Live' }).waitFor();
      await page.getByTestId('task-row').first().waitFor();

      // Started from the API (as the CLI would): the row appears and turns to running without a reload.
      const r = await admin.post('/api/v1/tasks', { command: ['fake:hang'] });
      expect(r.status).toBe(201);
      const id = r.json.task.id as string;
      await rowOf(page, id).locator('[data-state="running"]').waitFor();
      await screenshot(page, 'tasks', 'desktop');

      await rowOf(page, id).getByRole('link').click();
      await page.waitForURL(new RegExp(`/tasks/view\\?id=${id}$`));
      await page.getByTestId('log').getByText('running until stopped').waitFor();
      await page.getByRole('button', { name: 'Cancel task' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel task' }).click();
      await state(page).and(page.locator('[data-state="canceled"]')).waitFor();
      expect((await admin.get(`/api/v1/tasks/${id}`)).json.task.state).toBe('canceled');

      // Back on the list, the row says canceled too.
      await page.getByRole('link', { name: '← Tasks' }).click();
      await rowOf(page, id).locator('[data-state="canceled"]').waitFor();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("another user's task is not found, with the API's hint", async () => {
    const mine = await admin.post('/api/v1/tasks', { command: ['fake:lines', '1'] });
    expect(
      (
        await admin.post('/api/v1/users', {
          email: 'other@example.com',
          password: 'other password 1',
          role: 'member',
        })
      ).status,
    ).toBe(201);
    const { page, context } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, 'other@example.com', 'other password 1');
      await page.goto(`/tasks/view?id=${mine.json.task.id as string}`);
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain('not found');
      expect(await page.getByTestId('error-hint').textContent()).toContain('check the task id');
      await page.goto('/tasks');
      await page.getByTestId('empty').waitFor();
    } finally {
      await context.close();
    }
  });

  it('at 375 px: running a task again takes two taps from the list; list and task pages fit', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      await page.getByTestId('task-row').first().waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'tasks', 'phone');

      const before = (await admin.get('/api/v1/tasks')).json.items.length as number;
      await page.getByRole('button', { name: 'Run again: fake:lines 40' }).tap(); // tap 1
      await page.getByRole('dialog').getByRole('button', { name: 'Run', exact: true }).tap(); // tap 2
      await page.waitForURL(/\/tasks\/view\?id=/);
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      await page.getByTestId('log').getByText('line 40', { exact: true }).waitFor();
      expect((await admin.get('/api/v1/tasks')).json.items.length).toBe(before + 1);
      await expectPhoneFriendly(page);
      await screenshot(page, 'task', 'phone');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
