import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type Client, type TestServer } from '../../apps/control-plane/src/testing/server.js';
import type { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import {
  DESKTOP,
  PHONE,
  expectPhoneFriendly,
  openTab,
  readyEnv,
  screenshot,
  signIn,
  startWebSuite,
  type PageWindow,
  type WebSuite,
} from './browser.js';

// Tasks run for real, in `local` environments (the gateway runs the command on this machine),
// because this suite is about what a user sees. The server does not enable the fake provider.

const LINES = 'for i in $(seq 1 40); do echo line $i; done';

const state = (page: Page) => page.locator('.page-head [data-testid="task-state"]');
const rowOf = (page: Page, id: string) => page.locator(`[data-testid="task-row"][data-task-id="${id}"]`);

/**
 * Records the X-Berth-Client header of every API call the page makes (the launch source the
 * control plane reads): `web` on a desktop, `mobile` on a phone.
 */
function recordClientHeader(page: Page): () => Promise<Array<string | undefined>> {
  const seen: Array<Promise<string | undefined>> = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/v1/'))
      seen.push(r.allHeaders().then((h) => h['x-berth-client']));
  });
  return () => Promise.all(seen);
}

interface ScrollBox {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
}

/** Waits until the log box is scrolled to its end (where Follow keeps it). */
async function logAtEnd(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const el = (
      globalThis as unknown as { document: { querySelector(s: string): ScrollBox | null } }
    ).document.querySelector('[data-testid="log"]');
    return !!el && el.scrollHeight > el.clientHeight && el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
  });
}

async function launch(page: Page, command: string): Promise<string> {
  await page.getByRole('textbox', { name: 'Command' }).fill(command);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/tasks\/view\?id=/);
  return new URL(page.url()).searchParams.get('id')!;
}

describe('web app: tasks (launch, live status, log, timeline)', { timeout: 180_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;
  let admin: Client;
  let live: LiveWaiter;
  /** The environment the tests after the first one run in (the most recently made). */
  let workId: string;

  beforeAll(async () => {
    web = await startWebSuite({ env: { BERTH_PROVIDERS: 'local' }, api: 'admin+live' });
    ({ server: s, browser, admin, live } = web);
  }, 600_000);

  afterAll(async () => {
    // Local environments are processes on this machine: destroy what is left and wait for it.
    if (admin && live) {
      const envs = (await admin.get('/api/v1/environments?limit=200')).json.items as Array<{ id: string }>;
      for (const e of envs) {
        await admin.del(`/api/v1/environments/${e.id}`);
        await untilEnv(e.id, ['destroyed', 'failed']);
      }
    }
    await web?.close();
  }, 120_000);

  async function untilEnv(id: string, states: string[]): Promise<string> {
    const r = await live.until(
      () => admin.get(`/api/v1/environments/${id}`),
      (x) => x.status === 404 || states.includes(x.json.environment.state as string),
    );
    return r.status === 404 ? 'gone' : (r.json.environment.state as string);
  }

  it('with no environment: says so, links to create one, and runs the task in a new environment made for it', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      await page.getByTestId('empty').waitFor();
      await page.getByTestId('env-empty').waitFor();
      expect(await page.getByTestId('env-empty').textContent()).toContain('You have no ready environment');
      expect(
        await page.getByTestId('env-empty').getByRole('link', { name: 'Create one' }).getAttribute('href'),
      ).toBe('/environments');
      const picker = page.getByRole('combobox', { name: 'Environment' });
      expect(await picker.inputValue()).toBe('new');
      await page.getByRole('checkbox', { name: /Keep the environment/ }).waitFor();
      await screenshot(page, 'tasks-empty', 'desktop');

      // An unclosed quote is caught before anything runs.
      await page.getByRole('textbox', { name: 'Command' }).fill("echo 'oops");
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      expect(await page.getByTestId('error').textContent()).toContain('quote is not closed');

      const id = await launch(page, "sh -c 'echo $((6*7))'");
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor({ timeout: 120_000 });
      expect(await page.getByTestId('exit-code').textContent()).toBe('exit 0');
      await page.getByTestId('log').getByText('42', { exact: true }).waitFor();
      // The environment was made for the task and, not kept, is destroyed with it.
      const envId = (await admin.get(`/api/v1/tasks/${id}`)).json.task.environmentId as string;
      expect(envId).toBeTruthy();
      expect(await untilEnv(envId, ['destroyed'])).toMatch(/^(destroyed|gone)$/);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('picks the most recently used ready environment, shows its real output live, searches it, downloads it, and draws the timeline', async () => {
    await readyEnv({ admin, live }, 'older');
    workId = await readyEnv({ admin, live }, 'work');
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    const clientHeaders = recordClientHeader(page);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      const picker = page.getByRole('combobox', { name: 'Environment' });
      await picker.waitFor();
      expect(await picker.inputValue()).toBe(workId);
      expect(await page.getByTestId('env-empty').count()).toBe(0);

      const id = await launch(page, `sh -c 'uname -s; ${LINES}'`);
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      expect(await page.getByTestId('exit-code').textContent()).toBe('exit 0');
      await page.getByTestId('log').getByText('line 40', { exact: true }).waitFor();
      const log = (await page.getByTestId('log').textContent()) ?? '';
      expect(log).toContain('Linux');
      expect(log).toContain('line 1');
      expect((await admin.get(`/api/v1/tasks/${id}`)).json.task.environmentId).toBe(workId);
      expect(await page.getByTestId('task-env').getAttribute('href')).toBe(`/environments/view?id=${workId}`);

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
      expect(body).toBe('Linux\n' + Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join(''));

      const timeline = page.getByTestId('timeline');
      await timeline.locator('.timeline-seg').first().waitFor();
      expect(await timeline.textContent()).toContain('running');
      expect(await timeline.textContent()).toContain('succeeded');
      await screenshot(page, 'task', 'desktop');
      // Every API call, the launch among them, said it came from the web app on a desktop.
      const headers = await clientHeaders();
      expect(headers.length).toBeGreaterThan(3);
      expect(new Set(headers)).toEqual(new Set(['web']));
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
      await launch(page, "sh -c 'echo failing on purpose; exit 1'");
      await state(page).and(page.locator('[data-state="failed"]')).waitFor();
      expect(await page.getByTestId('exit-code').textContent()).toBe('exit 1');
      await page.getByTestId('log').getByText('failing on purpose').waitFor();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a timeout from the form stops a long task as timed out; a timeout that is not whole seconds is refused with the hint', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      expect(await page.getByRole('combobox', { name: 'Environment' }).inputValue()).toBe(workId);
      const timeout = page.getByRole('textbox', { name: 'Timeout in seconds' });
      const before = (await admin.get('/api/v1/tasks?limit=200')).json.items.length as number;

      // Not a number: caught in the page. A number the API refuses: its field and hint.
      await timeout.fill('soon');
      await page.getByRole('textbox', { name: 'Command' }).fill('sleep 60');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      expect(await page.getByTestId('error').textContent()).toContain('not a number of seconds');
      expect(await page.getByTestId('error-hint').textContent()).toContain('whole seconds');
      await timeout.fill('0');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.getByTestId('error-fields').waitFor();
      expect(await page.getByTestId('error-fields').textContent()).toContain('timeoutSeconds');
      expect(await page.getByTestId('error-hint').textContent()).toContain('fix the fields');
      expect((await admin.get('/api/v1/tasks?limit=200')).json.items.length).toBe(before);

      await timeout.fill('3');
      const id = await launch(page, 'sleep 60');
      expect(await page.getByTestId('task-timeout').textContent()).toBe('3.0 s');
      await state(page).and(page.locator('[data-state="timed_out"]')).waitFor();
      expect(await state(page).textContent()).toBe('timed out');
      const t = (await admin.get(`/api/v1/tasks/${id}`)).json.task;
      expect(t).toMatchObject({ state: 'timed_out', timeoutSeconds: 3 });
      await page.getByTestId('timeline').getByText('timed out').first().waitFor();

      // The bar chart: one segment per phase the API reports, the longest phase drawn widest.
      const events = (await admin.get(`/api/v1/tasks/${id}/timeline`)).json.events as Array<{
        to: string;
        at: string;
      }>;
      const phases = events
        .slice(0, -1)
        .map((e, i) => ({ state: e.to, ms: Date.parse(events[i + 1]!.at) - Date.parse(e.at) }));
      const longest = phases.reduce((a, b) => (b.ms > a.ms ? b : a));
      const segs = page.getByTestId('timeline').locator('.timeline-seg');
      await page.waitForFunction(
        (n) => (globalThis as unknown as PageWindow).document.querySelectorAll('.timeline-seg').length === n,
        phases.length,
      );
      const drawn: Array<{ cls: string; width: number }> = [];
      for (let i = 0; i < phases.length; i++)
        drawn.push({
          cls: (await segs.nth(i).getAttribute('class')) ?? '',
          width: (await segs.nth(i).boundingBox())!.width,
        });
      expect(drawn.map((d) => d.cls)).toEqual(phases.map((p) => `timeline-seg state-${p.state}`));
      const widest = drawn.reduce((a, b) => (b.width > a.width ? b : a));
      expect(widest.cls).toBe(`timeline-seg state-${longest.state}`);
      expect(await page.getByTestId('timeline').getByRole('img').getAttribute('aria-label')).toMatch(
        /running \d/,
      );
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the log follows new output; scrolling up stops following until Follow is ticked again', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      expect(await page.getByRole('combobox', { name: 'Environment' }).inputValue()).toBe(workId);
      await launch(
        page,
        `sh -c 'seq -f "row %g" 1 200; sleep 2; seq -f "row %g" 201 400; sleep 2; seq -f "row %g" 401 600'`,
      );
      const log = page.getByTestId('log');
      const follow = page.getByRole('checkbox', { name: 'Follow' });
      expect(await follow.isChecked()).toBe(true);
      // Output that arrived after the page drew the first rows: the box went along to the end.
      await log.getByText('row 400', { exact: true }).waitFor();
      await logAtEnd(page);

      // Reading further up: following stops, and later output leaves the reader where they are.
      await log.evaluate((el: ScrollBox) => (el.scrollTop = 0));
      await page.locator('input[name="follow"]:not(:checked)').waitFor();
      await log.getByText('row 600', { exact: true }).waitFor();
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      expect(await log.evaluate((el: ScrollBox) => el.scrollTop)).toBe(0);

      await follow.check();
      await logAtEnd(page);
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
      const r = await admin.post('/api/v1/tasks', {
        environmentId: workId,
        command: ['sh', '-c', 'echo running until stopped; exec sleep 600'],
      });
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
    const mine = await admin.post('/api/v1/tasks', { environmentId: workId, command: ['true'] });
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

  it('at 375 px: launches from the form in a real environment; running it again takes two taps; pages fit', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    const clientHeaders = recordClientHeader(page);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      await page.getByTestId('task-row').first().waitFor();
      expect(await page.getByRole('combobox', { name: 'Environment' }).inputValue()).toBe(workId);
      await expectPhoneFriendly(page);
      await screenshot(page, 'tasks', 'phone');

      const first = await launch(page, 'uname -s');
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      await page.getByTestId('log').getByText('Linux', { exact: true }).waitFor();
      expect((await admin.get(`/api/v1/tasks/${first}`)).json.task.environmentId).toBe(workId);
      await expectPhoneFriendly(page);

      await page.getByRole('link', { name: '← Tasks' }).tap();
      const before = (await admin.get('/api/v1/tasks')).json.items.length as number;
      await page.getByRole('button', { name: 'Run again: uname -s', exact: true }).tap(); // tap 1
      // The dialog offers the task's own environment, still ready.
      expect(await page.getByRole('dialog').getByRole('combobox', { name: 'Environment' }).inputValue()).toBe(
        workId,
      );
      await page.getByRole('dialog').getByRole('button', { name: 'Run', exact: true }).tap(); // tap 2
      await page.waitForURL(
        (u) => u.searchParams.get('id') !== first && u.pathname.startsWith('/tasks/view'),
      );
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      await page.getByTestId('log').getByText('Linux', { exact: true }).waitFor();
      expect((await admin.get('/api/v1/tasks')).json.items.length).toBe(before + 1);
      await expectPhoneFriendly(page);
      await screenshot(page, 'task', 'phone');
      // A phone says so on every call, both launches included: the launch source is `mobile`.
      const headers = await clientHeaders();
      expect(headers.length).toBeGreaterThan(3);
      expect(new Set(headers)).toEqual(new Set(['mobile']));
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
