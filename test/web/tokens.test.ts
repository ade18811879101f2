import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type Client, type TestServer } from '../../apps/control-plane/src/testing/server.js';
import {
  DESKTOP,
  PHONE,
  expectPhoneFriendly,
  openTab,
  screenshot,
  signIn,
  startWebSuite,
  type PageElement,
  type PageWindow,
  type WebSuite,
} from './browser.js';

async function meWithToken(base: string, token: string): Promise<number> {
  return (await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status;
}

const rows = (page: Page) => page.getByTestId('token-row');
const rowNames = (page: Page) => page.locator('[data-testid="token-row"] .token-name').allTextContents();
const rowNamed = (page: Page, name: string) =>
  rows(page).filter({ has: page.locator('.token-name', { hasText: new RegExp(`^${name}$`) }) });

/** Clicks "Load more" until the whole list is on screen. */
async function loadAll(page: Page): Promise<void> {
  await page.locator('[data-testid="token-row"], [data-testid="empty"]').first().waitFor();
  const more = page.getByRole('button', { name: 'Load more' });
  while ((await more.count()) > 0) {
    const before = await rows(page).count();
    await more.click();
    await page.waitForFunction(
      (n) =>
        (globalThis as unknown as PageWindow).document.querySelectorAll('[data-testid="token-row"]').length >
        n,
      before,
    );
  }
}

describe('web app: API tokens page', { timeout: 120_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;
  let admin: Client;

  beforeAll(async () => {
    web = await startWebSuite({ api: 'admin' });
    ({ server: s, browser, admin } = web);
  }, 600_000);

  afterAll(() => web?.close());

  it('starts empty, creates a token shown once with a copy button, and the token works', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.url });
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tokens');
      await page.getByTestId('empty').waitFor();
      expect(await page.getByTestId('empty').textContent()).toContain('No API tokens yet');
      await screenshot(page, 'tokens-empty', 'desktop');

      await page.getByLabel('Name').fill('ci-deploy');
      await page.getByLabel('Expires after').selectOption('30');
      await page.getByRole('button', { name: 'Create token' }).click();
      const value = page.getByTestId('new-token-value');
      await value.waitFor();
      const secret = (await value.textContent())!.trim();
      expect(secret.length).toBeGreaterThan(20);
      expect(await meWithToken(s.url, secret)).toBe(200);

      await page.getByTestId('new-token').getByRole('button', { name: 'Copy' }).click();
      await page.getByTestId('new-token').getByRole('button', { name: 'Copied', exact: true }).waitFor();
      expect(
        await page.evaluate(() => (globalThis as unknown as PageWindow).navigator.clipboard.readText()),
      ).toBe(secret);

      const row = rows(page).first();
      expect(await row.locator('.token-name').textContent()).toBe('ci-deploy');
      const cells = await row.locator('td').allTextContents();
      expect(cells.join(' ')).toContain('read');
      expect(cells.join(' ')).toContain('write');
      expect(cells.join(' ')).not.toContain(secret); // the list shows only the prefix
      await screenshot(page, 'tokens-created', 'desktop');

      // The same short list on a phone: rows become cards.
      const phone = await openTab(browser, s.url, PHONE);
      try {
        await phone.context.addCookies(await context.cookies());
        await phone.page.goto('/tokens');
        await rows(phone.page).first().waitFor();
        await expectPhoneFriendly(phone.page);
        await screenshot(phone.page, 'tokens', 'phone');
        expect(phone.problems).toEqual([]);
      } finally {
        await phone.context.close();
      }

      // Shown once: after a reload only the prefix remains.
      await page.reload();
      await rows(page).first().waitFor();
      expect(await page.getByTestId('new-token').count()).toBe(0);
      expect(await page.content()).not.toContain(secret);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('pages through a long list with "Load more"', async () => {
    for (let i = 0; i < 22; i++) {
      const r = await admin.post('/api/v1/tokens', { name: `bulk-${String(i).padStart(2, '0')}` });
      expect(r.status).toBe(201);
    }
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tokens');
      await rows(page).first().waitFor();
      expect(await rows(page).count()).toBe(20);
      await page.getByRole('button', { name: 'Load more' }).click();
      // While the next page loads the button reads "Loading…": wait for the rows themselves, then
      // for the button to be gone for good (nothing more to load).
      await rows(page).nth(20).waitFor();
      await page.getByRole('button', { name: /^(Load more|Loading…)$/ }).waitFor({ state: 'detached' });
      const names = await rowNames(page);
      expect(names).toHaveLength(23); // 22 + ci-deploy, each once
      expect(new Set(names).size).toBe(23);
      expect(names).toContain('ci-deploy');
      await screenshot(page, 'tokens', 'desktop');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('revokes only after confirmation, and the revoked token stops working', async () => {
    const created = await admin.post('/api/v1/tokens', { name: 'to-revoke' });
    const secret = created.json.token as string;
    expect(await meWithToken(s.url, secret)).toBe(200);
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tokens');
      await loadAll(page);
      const row = page.locator(`[data-token-id="${created.json.id as string}"]`);
      await row.waitFor();

      // Cancel keeps it.
      await row.getByRole('button', { name: 'Revoke to-revoke' }).click();
      const dialog = page.getByRole('dialog', { name: 'Revoke “to-revoke”?' });
      await dialog.waitFor();
      await screenshot(page, 'tokens-revoke-confirm', 'desktop', { fullPage: false });
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden' });
      expect(await meWithToken(s.url, secret)).toBe(200);

      await row.getByRole('button', { name: 'Revoke to-revoke' }).click();
      await dialog.getByRole('button', { name: 'Revoke token' }).click();
      await row.waitFor({ state: 'detached' });
      expect(await meWithToken(s.url, secret)).toBe(401);
      await page.reload();
      await loadAll(page);
      expect(await rowNames(page)).not.toContain('to-revoke');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("a member sees only their own tokens, never the admin's, and cannot grant admin", async () => {
    const pw = 'member password 1';
    expect(
      (await admin.post('/api/v1/users', { email: 'member@example.com', password: pw, role: 'member' }))
        .status,
    ).toBe(201);
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, 'member@example.com', pw);
      expect(await page.getByTestId('me-role').textContent()).toBe('member');
      await page.goto('/tokens');
      await page.getByTestId('empty').waitFor();
      expect(await page.getByRole('checkbox', { name: /admin/ }).count()).toBe(0);

      await page.getByLabel('Name').fill('member-laptop');
      await page.getByRole('button', { name: 'Create token' }).click();
      await page.getByTestId('new-token-value').waitFor();
      expect(await rowNames(page)).toEqual(['member-laptop']);
      await page.reload();
      await rows(page).first().waitFor();
      expect(await rowNames(page)).toEqual(['member-laptop']);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('an ended session goes back to sign-in; an API error is shown with its hint', async () => {
    const { page, context } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tokens');
      await rows(page).first().waitFor();
      // The session ends behind the page's back (signed out in another tab): the next write bounces to /login.
      await page.evaluate(() => fetch('/api/v1/auth/logout', { method: 'POST' }));
      await page.getByLabel('Name').fill('after-logout');
      await page.getByRole('button', { name: 'Create token' }).click();
      await page.waitForURL(/\/login\?next=%2Ftokens$/);

      // A server-side validation error (a name the API refuses) is shown with the API's hint.
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tokens');
      await rows(page).first().waitFor();
      await page.getByLabel('Name').evaluate((el: PageElement) => el.removeAttribute('maxlength'));
      await page.getByLabel('Name').fill('x'.repeat(101));
      await page.getByRole('button', { name: 'Create token' }).click();
      const error = page.getByTestId('error');
      await error.waitFor();
      expect(await page.getByTestId('error-hint').textContent()).toBeTruthy();
      expect(await error.textContent()).not.toMatch(/at \w+ \(|stack/i);
      await screenshot(page, 'tokens-error', 'desktop');
    } finally {
      await context.close();
    }
  });

  it('at 375 px: create and revoke work, nothing scrolls sideways, inputs are 16 px', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tokens');
      await loadAll(page);
      await expectPhoneFriendly(page);
      await page.getByLabel('Name').fill('phone-token-with-a-rather-long-name-for-layout');
      await page.getByRole('button', { name: 'Create token' }).tap();
      await page.getByTestId('new-token-value').waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'tokens-created', 'phone', { fullPage: false });

      const row = rowNamed(page, 'phone-token-with-a-rather-long-name-for-layout');
      await row.getByRole('button', { name: /^Revoke/ }).tap();
      await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'tokens-revoke-confirm', 'phone', { fullPage: false });
      await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).tap();
      await page.getByRole('dialog').waitFor({ state: 'hidden' });
      await row.waitFor({ state: 'detached' });
      expect(await rowNames(page)).not.toContain('phone-token-with-a-rather-long-name-for-layout');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
