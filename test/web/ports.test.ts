import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

// The environment page's ports list against a real control plane, a `local` environment (its
// gateway is a real child process) and an app on the environment's loopback.

describe('web app: ports of an environment', { timeout: 180_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;
  let admin: Client;
  let live: LiveWaiter;
  let app: Server;
  let appPort: number;
  let envId: string;

  beforeAll(async () => {
    web = await startWebSuite({ env: { BERTH_PROVIDERS: 'local' }, api: 'admin+live' });
    ({ server: s, browser, admin, live } = web);
    app = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>preview app</title><h1>hello from the app at ${req.url}</h1>`);
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    appPort = (app.address() as AddressInfo).port;
    envId = await readyEnv({ admin, live }, 'web-ports');
  }, 900_000);

  afterAll(async () => {
    if (envId) await destroyEnv({ admin, live }, envId);
    app?.closeAllConnections();
    await new Promise((r) => app?.close(r));
    await web?.close();
  });

  it('lists the listening port, opens it in a new tab, and asks before making it public', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto(`/environments/view?id=${envId}`);
      const row = page.locator(`[data-testid="ports"] [data-port="${appPort}"]`);
      await row.waitFor();
      expect(await row.textContent()).toContain('listening');

      const [preview] = await Promise.all([
        context.waitForEvent('page'),
        row.getByRole('link', { name: 'Open' }).click(),
      ]);
      await preview.getByRole('heading', { name: 'hello from the app at /' }).waitFor();
      expect(new URL(preview.url()).pathname).toBe(`/ports/${appPort}/`);
      expect(preview.url()).not.toContain('berth_ticket');
      await preview.close();

      // Public needs a confirmation; cancelling leaves it private.
      const select = row.getByLabel(`Who can open port ${appPort}`);
      await select.selectOption('public');
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
      expect(await row.getByTestId('port-public').count()).toBe(0);
      await select.selectOption('public');
      await page.getByRole('dialog').getByRole('button', { name: 'Make public' }).click();
      await row.getByTestId('port-public').waitFor();
      const api = await admin.get(`/api/v1/environments/${envId}/ports`);
      expect(
        (api.json.ports as Array<{ port: number; sharing: string }>).find((p) => p.port === appPort)?.sharing,
      ).toBe('public');
      await screenshot(page, 'env-ports', 'desktop');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('another signed-in user opens a public link; it is owner-only again after the owner says so', async () => {
    await admin.req('PUT', `/api/v1/environments/${envId}/ports/${appPort}/sharing`, { sharing: 'public' });
    await memberClient(s, admin, 'ports-web@example.com');
    const { page, context } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, 'ports-web@example.com', 'member password 1');
      await page.goto(`/p/${envId}/${appPort}`);
      await page.getByRole('heading', { name: 'hello from the app at /' }).waitFor();
      await admin.req('PUT', `/api/v1/environments/${envId}/ports/${appPort}/sharing`, { sharing: 'owner' });
      const r = await page.goto(`/p/${envId}/${appPort}`);
      expect(r?.status()).toBe(404);
    } finally {
      await context.close();
    }
  });

  it('fits a phone', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto(`/environments/view?id=${envId}`);
      await page.locator(`[data-testid="ports"] [data-port="${appPort}"]`).waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'env-ports', 'phone');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
