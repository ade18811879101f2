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
  type WebSuite,
} from './browser.js';

const ref = (page: Page, env: string) => page.locator(`[data-testid="ref-row"][data-env="${env}"]`);

describe('web app: secret settings page (Vault references only)', { timeout: 120_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;
  let admin: Client;

  beforeAll(async () => {
    web = await startWebSuite({ api: 'admin' });
    ({ server: s, browser, admin } = web);
  }, 600_000);

  afterAll(() => web?.close());

  it('saves Vault settings, says when nothing changed, and shows field errors with the hint', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Secrets' }).click();
      await page.getByText('Not set up yet.', { exact: false }).waitFor();
      await page.getByTestId('empty').waitFor();
      await screenshot(page, 'secrets-empty', 'desktop');

      await page.getByLabel('Vault address').fill('https://vault.example.com:8200');
      await page.getByLabel('JWT role').fill('berth');
      await page.getByLabel('Audience').fill('vault.example.com');
      await page.getByLabel('CA certificate (optional, PEM)').fill('not a certificate');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error-fields').textContent()).toContain('caCert');
      expect(await page.getByTestId('error-hint').textContent()).toBeTruthy();

      await page.getByLabel('CA certificate (optional, PEM)').fill('');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByTestId('saved').filter({ hasText: 'Saved.' }).waitFor();
      const saved = (await admin.get('/api/v1/secrets/settings')).json.settings;
      expect(saved).toMatchObject({
        vaultAddress: 'https://vault.example.com:8200',
        role: 'berth',
        audience: 'vault.example.com',
        authMount: 'jwt',
        kvMount: 'secret',
      });

      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByTestId('saved').filter({ hasText: 'Nothing changed' }).waitFor();

      // After a reload the form shows what is saved.
      await page.reload();
      await page.getByText('Last saved', { exact: false }).waitFor();
      expect(await page.getByLabel('JWT role').inputValue()).toBe('berth');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('adds references, refuses a taken env var with the hint, and removes one after confirmation', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/secrets');
      await page.getByTestId('empty').waitFor();
      for (const [env, path, key] of [
        ['GITHUB_TOKEN', 'users/me/github', 'token'],
        ['NPM_TOKEN', 'users/me/npm', 'token'],
      ] as const) {
        await page.getByLabel('Env var').fill(env);
        await page.getByLabel('KV path').fill(path);
        await page.getByLabel('Key', { exact: true }).fill(key);
        await page.getByRole('button', { name: 'Add reference' }).click();
        await ref(page, env).waitFor();
      }
      expect(await ref(page, 'GITHUB_TOKEN').textContent()).toContain('users/me/github#token');
      // References only: no field on the page takes a secret's value, and none hides what is typed.
      expect(await page.getByRole('textbox', { name: /value|password/i }).count()).toBe(0);
      for (const control of await page.locator('input, textarea, select').all())
        expect(await control.getAttribute('type')).not.toBe('password');

      await page.getByLabel('Env var').fill('GITHUB_TOKEN');
      await page.getByLabel('KV path').fill('other');
      await page.getByLabel('Key', { exact: true }).fill('x');
      await page.getByRole('button', { name: 'Add reference' }).click();
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain(
        'GITHUB_TOKEN already has a secret reference',
      );
      await screenshot(page, 'secrets', 'desktop');

      await ref(page, 'NPM_TOKEN').getByRole('button', { name: 'Remove NPM_TOKEN' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Remove reference' }).click();
      await ref(page, 'NPM_TOKEN').waitFor({ state: 'detached' });
      const items = (await admin.get('/api/v1/secrets/refs')).json.items as Array<{ env: string }>;
      expect(items.map((r) => r.env)).toEqual(['GITHUB_TOKEN']);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('at 375 px the secrets page does not scroll sideways and its fields do not zoom', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/secrets');
      await ref(page, 'GITHUB_TOKEN').waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'secrets', 'phone');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
