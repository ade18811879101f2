import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../../apps/control-plane/src/testing/server.js';
import {
  DESKTOP,
  PHONE,
  expectPhoneFriendly,
  openTab,
  screenshot,
  startWebSuite,
  type WebSuite,
} from './browser.js';

// A server started with no admin: its first start prints a one-time link to /bootstrap.
describe('web app: first-run bootstrap page', { timeout: 120_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;
  let link: string;

  beforeAll(async () => {
    web = await startWebSuite({ server: { admin: false } });
    ({ server: s, browser } = web);
    if (s.bootstrap.kind !== 'token-issued')
      throw new Error(`expected a bootstrap token, got ${s.bootstrap.kind}`);
    link = s.bootstrap.url;
  }, 600_000);

  afterAll(() => web?.close());

  it('prints the link to the page', () => {
    expect(s.logs.join('\n')).toContain(`create the admin account at ${link}`);
    expect(new URL(link).pathname).toBe('/bootstrap');
  });

  it('without the token, says which link to open', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await page.goto('/bootstrap');
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error-hint').textContent()).toContain('berth server');
      await expectPhoneFriendly(page);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('at 375 px the form fits and its inputs do not zoom', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await page.goto(link);
      await page.getByRole('heading', { name: 'Set up Berth' }).waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'bootstrap', 'phone');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('checks the form before spending the token, creates the admin, signs in, and the link then refuses', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await page.goto(link);
      await page.getByRole('heading', { name: 'Set up Berth' }).waitFor();
      await screenshot(page, 'bootstrap', 'desktop');
      await page.getByLabel('Admin email').fill('root@example.com');
      await page.getByLabel(/^Password/).fill('a long password');
      await page.getByLabel('Confirm password').fill('a different one');
      await page.getByRole('button', { name: 'Create admin account' }).click();
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain('the two passwords differ');

      await page.getByLabel('Confirm password').fill('a long password');
      await page.getByRole('button', { name: 'Create admin account' }).click();
      await page.waitForURL(`${s.url}/`);
      expect(await page.getByTestId('me-email').textContent()).toBe('root@example.com');
      expect(await page.getByTestId('me-role').textContent()).toBe('admin');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }

    // Single use: a second visit gets the API's refusal with its hint.
    const second = await openTab(browser, s.url, DESKTOP);
    try {
      await second.page.goto(link);
      await second.page.getByLabel('Admin email').fill('other@example.com');
      await second.page.getByLabel(/^Password/).fill('another long password');
      await second.page.getByLabel('Confirm password').fill('another long password');
      await second.page.getByRole('button', { name: 'Create admin account' }).click();
      await second.page.getByTestId('error').waitFor();
      expect(await second.page.getByTestId('error').textContent()).toContain('wrong or was already used');
      expect(await second.page.getByTestId('error-hint').textContent()).toContain('sign in instead');
      await screenshot(second.page, 'bootstrap-used', 'desktop');
    } finally {
      await second.context.close();
    }
  });
});
