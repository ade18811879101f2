import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, type TestServer } from '../../apps/control-plane/src/testing/server.js';
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

const row = (page: Page, email: string) =>
  page.locator(`[data-testid="user-row"][data-user-email="${email}"]`);

async function canSignIn(base: string, email: string, password: string): Promise<boolean> {
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return r.status === 200;
}

describe('web app: users page (admin)', { timeout: 120_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    web = await startWebSuite();
    ({ server: s, browser } = web);
  }, 600_000);

  afterAll(() => web?.close());

  it('creates a member, changes the role both ways, resets the password, and deletes after confirmation', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
      await page.waitForURL(/\/users$/);
      await row(page, ADMIN.email).waitFor();
      // No way to demote or delete yourself from here.
      expect(await row(page, ADMIN.email).getByRole('button', { name: 'Make member' }).count()).toBe(0);

      await page.getByLabel('Email').fill('dev@example.com');
      await page.getByLabel('Name (optional)').fill('Dana Dev');
      await page.getByLabel('First password').fill('first password 1');
      await page.getByRole('button', { name: 'Create user' }).click();
      await page.getByTestId('user-created').waitFor();
      const dev = row(page, 'dev@example.com');
      await dev.waitFor();
      expect(await dev.getByTestId('user-role').textContent()).toBe('member');
      expect(await canSignIn(s.url, 'dev@example.com', 'first password 1')).toBe(true);

      // The same email again: the API's conflict is shown with its hint.
      await page.getByLabel('Email').fill('dev@example.com');
      await page.getByLabel('First password').fill('first password 1');
      await page.getByRole('button', { name: 'Create user' }).click();
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain('already exists');
      expect(await page.getByTestId('error-hint').textContent()).toContain('use another email');

      await dev.getByRole('button', { name: 'Make admin' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByRole('button', { name: 'Make admin' }).click();
      await dev
        .getByTestId('user-role')
        .filter({ hasText: /^admin$/ })
        .waitFor();
      await dev.getByRole('button', { name: 'Make member' }).click();
      await dialog.getByRole('button', { name: 'Make member' }).click();
      await dev
        .getByTestId('user-role')
        .filter({ hasText: /^member$/ })
        .waitFor();

      await dev.getByRole('button', { name: 'Reset password' }).click();
      await dialog.getByLabel('Password').fill('short');
      await dialog.getByRole('button', { name: 'Set password' }).click();
      await dialog.getByTestId('error').waitFor();
      await dialog.getByLabel('Password').fill('second password 2');
      await dialog.getByRole('button', { name: 'Set password' }).click();
      await dialog.waitFor({ state: 'hidden' });
      expect(await canSignIn(s.url, 'dev@example.com', 'second password 2')).toBe(true);
      await screenshot(page, 'users', 'desktop');

      await dev.getByRole('button', { name: 'Delete dev@example.com' }).click();
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden' });
      expect(await dev.count()).toBe(1);
      await dev.getByRole('button', { name: 'Delete dev@example.com' }).click();
      await screenshot(page, 'users-delete-confirm', 'desktop', { fullPage: false });
      await dialog.getByRole('button', { name: 'Delete user' }).click();
      await dev.waitFor({ state: 'detached' });
      expect(await canSignIn(s.url, 'dev@example.com', 'second password 2')).toBe(false);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a member has no Users link, and the page says only admins manage users', async () => {
    const admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    expect(
      (
        await admin.post('/api/v1/users', {
          email: 'm@example.com',
          password: 'member password 1',
          role: 'member',
        })
      ).status,
    ).toBe(201);
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, 'm@example.com', 'member password 1');
      expect(
        await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).count(),
      ).toBe(0);
      await page.goto('/users');
      await page.getByTestId('empty').waitFor();
      expect(await page.getByTestId('empty').textContent()).toContain('Only admins manage users');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('at 375 px the users page does not scroll sideways', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/users');
      await row(page, 'm@example.com').waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'users', 'phone');
      await row(page, 'm@example.com').getByRole('button', { name: 'Reset password' }).tap();
      await page.getByRole('dialog').getByLabel('Password').waitFor();
      await expectPhoneFriendly(page);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('changing your own password asks for the current one; without it or with a wrong one, the API’s hint', async () => {
    const admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    const other = { email: 'reset-me@example.com', password: 'reset me password 1', role: 'member' };
    expect((await admin.post('/api/v1/users', other)).status).toBe(201);
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    const next = 'new admin password 9';
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/users');
      const dialog = page.getByRole('dialog');
      // Someone else's password is a reset: no current password to give.
      await row(page, other.email).getByRole('button', { name: 'Reset password' }).click();
      await dialog.getByLabel('Password').waitFor();
      expect(await dialog.getByLabel('Current password').count()).toBe(0);
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden' });

      await row(page, ADMIN.email).getByRole('button', { name: 'Change password' }).click();
      expect(await dialog.getByRole('heading').textContent()).toBe('Change your password');
      await dialog.getByLabel('New password').fill(next);
      await dialog.getByRole('button', { name: 'Set password' }).click();
      await dialog.getByTestId('error').waitFor();
      expect(await dialog.getByTestId('error').textContent()).toContain('needs your current password');
      expect(await dialog.getByTestId('error-hint').textContent()).toContain('ask another admin');

      await dialog.getByLabel('Current password').fill('not my password 1');
      await dialog.getByRole('button', { name: 'Set password' }).click();
      await dialog.getByTestId('error').filter({ hasText: 'the current password is wrong' }).waitFor();
      expect(await dialog.getByTestId('error-hint').textContent()).toContain('ask an admin to reset it');
      expect(await canSignIn(s.url, ADMIN.email, ADMIN.password)).toBe(true);
      await screenshot(page, 'users-own-password', 'desktop', { fullPage: false });

      await dialog.getByLabel('Current password').fill(ADMIN.password);
      await dialog.getByRole('button', { name: 'Set password' }).click();
      await dialog.waitFor({ state: 'hidden' });
      expect(await canSignIn(s.url, ADMIN.email, next)).toBe(true);
      expect(await canSignIn(s.url, ADMIN.email, ADMIN.password)).toBe(false);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
    // Back to the shared password for anything that runs after.
    const c = new Client(s.url);
    await c.login(ADMIN.email, next);
    const me = (await c.get('/api/v1/me')).json.user.id as string;
    const r = await c.req('PATCH', `/api/v1/users/${me}`, {
      password: ADMIN.password,
      currentPassword: next,
    });
    expect(r.status).toBe(200);
  });
});
