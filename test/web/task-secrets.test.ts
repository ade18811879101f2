import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultClient, startFakeVault, type FakeVault } from '@berth/vault';
import { berthKeys, trustBerth } from '@berth/vault/testing';
import {
  ADMIN,
  type Client,
  memberClient,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import type { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import {
  DESKTOP,
  PHONE,
  expectPhoneFriendly,
  openTab,
  destroyEnv,
  readyEnv,
  screenshot,
  signIn,
  startWebSuite,
  type WebSuite,
} from './browser.js';

// Secrets picked in the task form, read from the user's own Vault (a FAKE Vault, as in
// test/integration/secrets-launch.test.ts) by the gateway of a real `local` environment. The
// Vault role accepts only launches that say they came from the web app (`web` or `mobile`), so a
// page that did not send X-Berth-Client would see its task fail at login.

const AUDIENCE = 'vault.test/berth';

const state = (page: Page) => page.locator('.page-head [data-testid="task-state"]');

describe('web app: secrets picked at launch (FAKE Vault, local provider)', { timeout: 180_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let vault: FakeVault;
  let root: VaultClient;
  let admin: Client;
  let live: LiveWaiter;
  let browser: Browser;
  let envId: string;
  const canary = `canary-${randomBytes(16).toString('hex')}`;
  const npmCanary = `npm-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    web = await startWebSuite({ env: { BERTH_PROVIDERS: 'local' }, api: 'admin+live' });
    ({ server: s, browser, admin, live } = web);
    const adminId = (await admin.get('/api/v1/me')).json.user.id as string;

    // The user's one-time Vault setup from docs/secrets.md, against the fake.
    vault = await startFakeVault();
    root = new VaultClient({ address: vault.address, token: vault.rootToken });
    await trustBerth(root, {
      ...(await berthKeys(s.url)),
      audience: AUDIENCE,
      policy: { name: 'berth-user', path: (user) => `secret/data/berth/${user}/*` },
      role: {
        bound_claims: { sub: [`user:${adminId}`], provider: ['local'], launch_source: ['web', 'mobile'] },
      },
    });
    await root.request('POST', `secret/data/berth/user:${adminId}/github`, {
      body: { data: { token: canary } },
    });
    await root.request('POST', `secret/data/berth/user:${adminId}/npm`, {
      body: { data: { token: npmCanary } },
    });
    const settings = { vaultAddress: vault.address, authMount: 'berth', role: 'berth', audience: AUDIENCE };
    expect((await admin.req('PUT', '/api/v1/secrets/settings', settings)).status).toBe(200);
    for (const [env, path] of [
      ['GITHUB_TOKEN', 'github'],
      ['NPM_TOKEN', 'npm'],
    ] as const) {
      const r = await admin.post('/api/v1/secrets/refs', {
        env,
        path: `berth/user:${adminId}/${path}`,
        key: 'token',
      });
      expect(r.status).toBe(201);
    }

    envId = await readyEnv({ admin, live }, 'secrets-web');
  }, 600_000);

  afterAll(async () => {
    if (admin && live && envId) await destroyEnv({ admin, live }, envId);
    await root?.close();
    await vault?.close();
    await web?.close();
  }, 120_000);

  /** Ticks the named secrets, runs `command`, and returns the task id once its page is open. */
  async function launchWith(page: Page, command: string, secrets: string[]): Promise<string> {
    await page.goto('/tasks');
    expect(await page.getByRole('combobox', { name: 'Environment' }).inputValue()).toBe(envId);
    const picker = page.getByTestId('launch-secrets');
    await picker.getByRole('checkbox').first().waitFor();
    // Nothing is given unless ticked.
    for (const box of await picker.getByRole('checkbox').all()) expect(await box.isChecked()).toBe(false);
    for (const name of secrets) await picker.getByRole('checkbox', { name }).check();
    await page.getByRole('textbox', { name: 'Command' }).fill(command);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForURL(/\/tasks\/view\?id=/);
    return new URL(page.url()).searchParams.get('id')!;
  }

  it('a ticked secret reaches the process and shows as *** in the log; one not ticked is not given', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      const id = await launchWith(
        page,
        `sh -c 'printf %s "$GITHUB_TOKEN" | wc -c; echo "gh: $GITHUB_TOKEN."; echo "npm: \${NPM_TOKEN:-unset}."'`,
        ['GITHUB_TOKEN'],
      );
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      const log = page.getByTestId('log');
      await log.getByText('gh: ***.', { exact: true }).waitFor();
      await log.getByText('npm: unset.', { exact: true }).waitFor();
      // The process had the real value (its length), the page only the mask.
      await log.getByText(String(canary.length), { exact: true }).waitFor();
      expect(await page.getByTestId('task-secrets').textContent()).toBe('GITHUB_TOKEN');
      expect(await page.getByTestId('task-source').textContent()).toBe('the web app');
      const html = await page.content();
      expect(html).not.toContain(canary);
      expect(html).not.toContain(npmCanary);
      expect((await admin.get(`/api/v1/tasks/${id}`)).json.task).toMatchObject({
        secrets: ['GITHUB_TOKEN'],
        launchSource: 'web',
      });
      await screenshot(page, 'task-secrets', 'desktop');

      // Run again asks for the same secrets, and only those.
      await page.getByRole('link', { name: '← Tasks' }).click();
      await page.getByRole('button', { name: /^Run again: sh -c 'printf/ }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Run', exact: true }).click();
      await page.waitForURL((u) => u.pathname === '/tasks/view' && u.searchParams.get('id') !== id);
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      await page.getByTestId('log').getByText('gh: ***.', { exact: true }).waitFor();
      await page.getByTestId('log').getByText('npm: unset.', { exact: true }).waitFor();
      expect(await page.getByTestId('task-secrets').textContent()).toBe('GITHUB_TOKEN');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a reference removed after it was ticked: the launch is refused with the API’s hint', async () => {
    const extra = await admin.post('/api/v1/secrets/refs', { env: 'GONE_SOON', path: 'berth/x', key: 'k' });
    expect(extra.status).toBe(201);
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      const picker = page.getByTestId('launch-secrets');
      await picker.getByRole('checkbox', { name: 'GONE_SOON' }).check();
      await screenshot(page, 'tasks-secrets', 'desktop');
      expect((await admin.del(`/api/v1/secrets/refs/${extra.json.ref.id as string}`)).status).toBe(200);
      await page.getByRole('textbox', { name: 'Command' }).fill('true');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain('no secret reference named GONE_SOON');
      expect(await page.getByTestId('error-hint').textContent()).toContain('the Secrets page');
      expect(page.url()).toMatch(/\/tasks$/);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('at 375 px: a secret picked on a phone is read with launch_source mobile and masked', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/tasks');
      await page.getByTestId('launch-secrets').getByRole('checkbox').first().waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'tasks-secrets', 'phone');
      const id = await launchWith(page, 'sh -c \'echo "npm: $NPM_TOKEN"\'', ['NPM_TOKEN']);
      await state(page).and(page.locator('[data-state="succeeded"]')).waitFor();
      await page.getByTestId('log').getByText('npm: ***', { exact: true }).waitFor();
      expect(await page.getByTestId('task-source').textContent()).toBe('the web app on a phone');
      expect(await page.content()).not.toContain(npmCanary);
      expect((await admin.get(`/api/v1/tasks/${id}`)).json.task.launchSource).toBe('mobile');
      await expectPhoneFriendly(page);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('without a Vault the form says so and links to the Secrets page', async () => {
    await memberClient(s, admin, 'novault@example.com');
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, 'novault@example.com', 'member password 1');
      await page.goto('/tasks');
      const empty = page.getByTestId('launch-secrets-empty');
      await empty.waitFor();
      expect(await empty.textContent()).toContain('Your Vault is not set up.');
      await empty.getByRole('link', { name: 'Add references on the Secrets page' }).click();
      await page.waitForURL(/\/secrets$/);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
