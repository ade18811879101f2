import Docker from 'dockerode';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerName, ensureDocker } from '@berth/providers';
import { ensureGatewayBundle } from '@berth/providers/testing';
import { ADMIN, type TestServer } from '../../apps/control-plane/src/testing/server.js';
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
import { openTerminal, recordTerminalSockets, seeLine, termText, type TermWindow } from './terminal.js';

// The same walk as environments.test.ts, with the `docker` provider: a container on this
// machine's engine, its gateway inside, the browser's terminal straight to it. Skipped with
// BERTH_SKIP_DOCKER=1 like the other docker suites.

const skip = process.env.BERTH_SKIP_DOCKER === '1';
const envState = (page: Page) => page.locator('.page-head [data-testid="env-state"]');
const rowOf = (page: Page, id: string) => page.locator(`[data-testid="env-row"][data-env-id="${id}"]`);
const taskState = (page: Page) => page.locator('.page-head [data-testid="task-state"]');

describe.skipIf(skip)(
  'web app: a docker environment, its terminal and a task from a phone',
  { timeout: 300_000 },
  () => {
    let web: WebSuite;
    let s: TestServer;
    let browser: Browser;
    let envId: string | undefined;

    beforeAll(async () => {
      const base = ensureDocker();
      ensureGatewayBundle();
      web = await startWebSuite({
        env: { BERTH_PROVIDERS: 'docker', BERTH_DOCKER_BASE_IMAGE: base, BERTH_ENV_DEFAULT_MEMORY_MB: '512' },
      });
      ({ server: s, browser } = web);
    }, 900_000);

    afterAll(async () => {
      // A failed test must not leave its container running on the shared engine.
      if (envId)
        await new Docker()
          .getContainer(containerName(envId))
          .remove({ force: true })
          .catch(() => undefined);
      await web?.close();
    }, 120_000);

    it('creates from the form, types in its terminal, keeps the screen over a dropped connection', async () => {
      const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
      await context.addInitScript(recordTerminalSockets);
      try {
        await signIn(page, ADMIN.email, ADMIN.password);
        await page.goto('/environments');
        await page.getByLabel('Name').fill('in-docker');
        await page.getByLabel('Provider').fill('docker');
        await page.getByRole('button', { name: 'Create environment' }).click();
        await page.waitForURL(/\/environments\/view\?id=/);
        envId = new URL(page.url()).searchParams.get('id')!;
        await envState(page).and(page.locator('[data-state="ready"]')).waitFor({ timeout: 240_000 });
        await page.getByTestId('events').locator('[data-kind="ready"]').waitFor();
        await screenshot(page, 'environment-docker', 'desktop');

        await page.getByRole('link', { name: 'Open terminal' }).click();
        await openTerminal(page);
        await page.keyboard.type('echo $((6*7))\n');
        await seeLine(page, '42');

        await page.evaluate(() => {
          const w = globalThis as unknown as TermWindow;
          w.__terminalSockets[w.__terminalSockets.length - 1]!.close();
        });
        await page.keyboard.type('echo during-$((2+3))\n');
        await page.waitForFunction(() => (globalThis as unknown as TermWindow).__terminalSockets.length > 1);
        await page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
        await seeLine(page, 'during-5');
        expect(await termText(page)).toMatch(/^42$/m); // the screen was kept, not cleared
        await screenshot(page, 'terminal-docker', 'desktop', { fullPage: false });
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('at 375 px: runs a task in the container and shows its log and exit code; destroy asks first', async () => {
      expect(envId).toBeTruthy();
      const { page, context, problems } = await openTab(browser, s.url, PHONE);
      try {
        await signIn(page, ADMIN.email, ADMIN.password);
        await page.goto('/tasks');
        expect(await page.getByRole('combobox', { name: 'Environment' }).inputValue()).toBe(envId);
        await page
          .getByRole('textbox', { name: 'Command' })
          .fill("sh -c 'cat /etc/os-release >/dev/null && echo in-container; exit 3'");
        await page.getByRole('button', { name: 'Run', exact: true }).tap();
        await page.waitForURL(/\/tasks\/view\?id=/);
        await taskState(page).and(page.locator('[data-state="failed"]')).waitFor();
        expect(await page.getByTestId('exit-code').textContent()).toBe('exit 3');
        await page.getByTestId('log').getByText('in-container', { exact: true }).waitFor();
        await expectPhoneFriendly(page);

        await page.goto('/environments');
        await rowOf(page, envId!).getByRole('button', { name: 'Destroy in-docker' }).tap();
        expect(await page.getByRole('dialog').textContent()).toContain('cannot be undone');
        await page.getByRole('dialog').getByRole('button', { name: 'Destroy', exact: true }).tap();
        await rowOf(page, envId!).locator('[data-state="destroyed"]').waitFor({ timeout: 120_000 });
        const gone = await new Docker()
          .getContainer(containerName(envId!))
          .inspect()
          .then(
            () => false,
            () => true,
          );
        expect(gone).toBe(true);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });
  },
);
