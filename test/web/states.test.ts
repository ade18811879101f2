import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../../apps/control-plane/src/testing/server.js';
import {
  DESKTOP,
  PHONE,
  expectPhoneFriendly,
  openTab,
  screenshot,
  signIn,
  startWebSuite,
  type WebSuite,
} from './browser.js';

// Loading, empty and failed states of every list page, for a user who has nothing yet. The
// browser holds or replaces one API answer (playwright's routing); everything else is the real
// control plane.

const LISTS = [
  { path: '/environments', api: '/api/v1/environments', empty: 'No environments yet', shot: 'environments' },
  { path: '/tasks', api: '/api/v1/tasks', empty: 'No tasks yet', shot: 'tasks' },
  { path: '/tokens', api: '/api/v1/tokens', empty: 'No API tokens yet', shot: 'tokens' },
  { path: '/secrets', api: '/api/v1/secrets/refs', empty: 'No secret references yet', shot: 'secrets' },
] as const;

/** What a crashing server or a proxy in front of it might send: HTML with a stack trace. */
const CRASH = `<html><body><h1>Unhandled exception in worker 3</h1><pre>TypeError: Cannot read properties of undefined (reading 'id')
    at ListService.list (/srv/berth/dist/list.service.js:41:17)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)</pre></body></html>`;

/** Routes GET `api` (exactly that path, any query) to `handle`; returns the function that removes it. */
async function intercept(page: Page, api: string, handle: (route: Route) => Promise<void>) {
  const match = (u: URL) => u.pathname === api;
  await page.route(match, async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    return handle(route);
  });
  return () => page.unroute(match);
}

describe('web app: loading, empty and error states', { timeout: 180_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;
  const user = { email: 'fresh@example.com', password: 'fresh password 1' };

  beforeAll(async () => {
    web = await startWebSuite({ api: 'admin' });
    ({ server: s, browser } = web);
    expect((await web.admin.post('/api/v1/users', { ...user, role: 'member' })).status).toBe(201);
  }, 600_000);

  afterAll(() => web?.close());

  for (const list of LISTS) {
    it(`${list.path}: a spinner while the list loads, then its empty state`, async () => {
      const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
      try {
        await signIn(page, user.email, user.password);
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let asked!: () => void;
        const requested = new Promise<void>((r) => (asked = r));
        const stop = await intercept(page, list.api, async (route) => {
          asked();
          await held;
          await route.continue();
        });
        await page.goto(list.path);
        await requested;
        // The list's own spinner (the task page may also be loading its environment picker).
        const loading = page
          .getByTestId('loading')
          .filter({ hasText: /^Loading…$/ })
          .first();
        await loading.waitFor();
        expect(await loading.textContent()).toBe('Loading…');
        expect(await page.getByText(list.empty).count()).toBe(0);
        await screenshot(page, `${list.shot}-loading`, 'desktop', { fullPage: false });
        release();
        await page.getByTestId('empty').filter({ hasText: list.empty }).waitFor();
        await stop();
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it(`${list.path}: a crashed server shows what to do, never its stack trace; Try again recovers`, async () => {
      const { page, context, problems } = await openTab(browser, s.url, PHONE);
      try {
        await signIn(page, user.email, user.password);
        const stop = await intercept(page, list.api, (route) =>
          route.fulfill({ status: 500, contentType: 'text/html', body: CRASH }),
        );
        await page.goto(list.path);
        const error = page.getByTestId('error');
        await error.waitFor();
        expect(await error.textContent()).toContain('the server answered 500');
        expect(await page.getByTestId('error-hint').textContent()).toBe('try again in a moment');
        const shown = (await page.locator('main').textContent()) ?? '';
        for (const leak of ['TypeError', 'list.service.js', 'task_queues', 'Unhandled exception'])
          expect(shown).not.toContain(leak);
        await expectPhoneFriendly(page);
        await screenshot(page, `${list.shot}-error`, 'phone');

        // The network itself fails: said so, with its own hint.
        await stop();
        const stopAbort = await intercept(page, list.api, (route) => route.abort('connectionrefused'));
        await error.getByRole('button', { name: 'Try again' }).tap();
        await error.filter({ hasText: 'could not reach the Berth server' }).waitFor();
        expect(await page.getByTestId('error-hint').textContent()).toContain('check your connection');

        await stopAbort();
        await error.getByRole('button', { name: 'Try again' }).tap();
        await page.getByTestId('empty').filter({ hasText: list.empty }).waitFor();
        expect(await page.getByTestId('error').count()).toBe(0);
        // "Failed to load resource" for the refused and 500 answers is the browser's, filtered out.
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }
});
