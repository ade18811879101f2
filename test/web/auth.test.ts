import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type TestServer } from '../../apps/control-plane/src/testing/server.js';
import { webApp } from '../../apps/control-plane/src/web/static.js';
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

describe('web app: serving, sign in and sign out', { timeout: 120_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    web = await startWebSuite();
    ({ server: s, browser } = web);
  }, 600_000);

  afterAll(() => web?.close());

  it('serves pages with security headers, caches hashed assets, and never shadows the API', async () => {
    const html = await fetch(`${s.url}/login`, { headers: { accept: 'text/html' } });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.headers.get('cache-control')).toBe('no-store');
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    expect(html.headers.get('referrer-policy')).toBe('no-referrer');
    const csp = html.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toMatch(/connect-src 'self' ws: wss:/);
    expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
    const body = await html.text();
    // `/login/` is the same page; a task's page is a static file too.
    expect((await fetch(`${s.url}/login/`, { headers: { accept: 'text/html' } })).status).toBe(200);
    expect((await fetch(`${s.url}/tasks/view?id=x`, { headers: { accept: 'text/html' } })).status).toBe(200);

    const asset = body.match(/\/_next\/static\/[^"]+\.js/)?.[0];
    expect(asset).toBeTruthy();
    const js = await fetch(s.url + asset!);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(js.headers.get('content-type')).toContain('javascript');

    // The API, health, metrics and OIDC keep answering themselves, even to a browser's Accept.
    const accept = { accept: 'text/html,*/*' };
    expect((await fetch(`${s.url}/healthz`, { headers: accept })).headers.get('content-type')).toContain(
      'application/json',
    );
    expect((await fetch(`${s.url}/readyz`, { headers: accept })).status).toBe(200);
    expect((await fetch(`${s.url}/metrics`, { headers: accept })).headers.get('content-type')).toContain(
      'text/plain',
    );
    expect(
      (await fetch(`${s.url}/.well-known/openid-configuration`, { headers: accept })).headers.get(
        'content-type',
      ),
    ).toContain('application/json');
    const me = await fetch(`${s.url}/api/v1/me`, { headers: accept });
    expect(me.status).toBe(401);
    expect(((await me.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const unknownApi = await fetch(`${s.url}/api/v1/nope`, { headers: accept });
    expect(unknownApi.status).toBe(404);
    expect(unknownApi.headers.get('content-type')).toContain('application/json');

    // An unknown page is the app's 404 page for a browser, the JSON error for anything else.
    const missing = await fetch(`${s.url}/no-such-page`, { headers: { accept: 'text/html' } });
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('Page not found');
    expect((await fetch(`${s.url}/no-such-page`)).headers.get('content-type')).toContain('application/json');
    // Build bookkeeping and paths outside the export are not served.
    expect((await fetch(`${s.url}/.source-hash`)).status).toBe(404);
    expect((await fetch(`${s.url}/%2e%2e/package.json`)).status).toBe(404);
  });

  it('says how to build the web app when it is not built', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'berth-web-empty-'));
    const app = express();
    app.use(webApp({ dir: empty }));
    app.use((_req, res) => res.status(404).json({ error: { code: 'not_found' } }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await fetch(`${base}/`, { headers: { accept: 'text/html' } });
      expect(r.status).toBe(503);
      const text = await r.text();
      expect(text).toContain('web app not built');
      expect(text).toContain('npm run build -w @berth/web');
      expect((await fetch(`${base}/api/v1/me`, { headers: { accept: 'text/html' } })).status).toBe(404);
    } finally {
      await new Promise((r) => server.close(r));
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('shows a wrong password with its hint, then signs in and returns to the page asked for', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      // Signed out, a page sends you to /login and remembers where you were going.
      await page.goto('/tokens');
      await page.waitForURL(/\/login\?next=%2Ftokens$/);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await screenshot(page, 'login', 'desktop');

      await page.getByLabel('Email').fill(ADMIN.email);
      await page.getByLabel('Password').fill('not the password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const error = page.getByTestId('error');
      await error.waitFor();
      expect(await error.textContent()).toContain('wrong email or password');
      expect(await page.getByTestId('error-hint').textContent()).toContain(
        'an admin can reset your password',
      );
      await screenshot(page, 'login-error', 'desktop');

      await page.getByLabel('Password').fill(ADMIN.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(/\/tokens$/);
      await page.getByRole('heading', { name: 'API tokens' }).waitFor();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('home says who is signed in; sign out ends the session', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.waitForURL(`${s.url}/`);
      expect(await page.getByTestId('me-email').textContent()).toBe(ADMIN.email);
      expect(await page.getByTestId('me-role').textContent()).toBe('admin');
      expect(await page.locator('code.code-block').textContent()).toBe(`npx berth login --url ${s.url}`);
      await screenshot(page, 'home', 'desktop');
      // The same page in the dark scheme, for a person to look at.
      await page.emulateMedia({ colorScheme: 'dark' });
      await screenshot(page, 'home-dark', 'desktop');
      await page.emulateMedia({ colorScheme: 'light' });

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/login$/);
      // The cookie is gone server-side: a signed-in page bounces back to /login.
      await page.goto('/');
      await page.waitForURL(/\/login$/);
      const me = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
      expect(me).toBe(401);

      await page.goto('/no-such-page');
      await page.getByRole('heading', { name: 'Page not found' }).waitFor();
      await screenshot(page, 'not-found', 'desktop');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('on a tablet (820 px) the navigation is a menu and nothing scrolls sideways', async () => {
    const { page, context, problems } = await openTab(browser, s.url, {
      viewport: { width: 820, height: 1180 },
      hasTouch: true,
    });
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.getByRole('button', { name: 'Menu' }).waitFor({ state: 'visible' });
      await expectPhoneFriendly(page);
      await screenshot(page, 'home', 'tablet');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('at 375 px: sign-in, home and 404 do not scroll sideways; the menu opens and signs out', async () => {
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await page.goto('/login');
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'login', 'phone');

      await page.getByLabel('Email').fill(ADMIN.email);
      await page.getByLabel('Password').fill(ADMIN.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId('me-email').waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'home', 'phone');

      // The links fold into a menu on a phone.
      const signOut = page.getByRole('button', { name: 'Sign out' });
      expect(await signOut.isVisible()).toBe(false);
      await page.getByRole('button', { name: 'Menu' }).tap();
      await signOut.waitFor({ state: 'visible' });
      await expectPhoneFriendly(page);
      await screenshot(page, 'home-menu', 'phone');
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API tokens' }).tap();
      await page.waitForURL(/\/tokens$/);
      await page.getByRole('heading', { name: 'API tokens' }).waitFor();
      expect(await signOut.isVisible()).toBe(false); // navigating closes the menu

      await page.goto('/no-such-page');
      await page.getByRole('heading', { name: 'Page not found' }).waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'not-found', 'phone');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
