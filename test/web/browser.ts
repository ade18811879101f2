// Shared pieces of the browser suites: build the web app when stale, drive Debian's Chromium
// through playwright-core (never `playwright install`), save screenshots, and check phone rules.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Page,
} from 'playwright-core';
import { expect } from 'vitest';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';

const BUILD_SCRIPT = fileURLToPath(new URL('../../apps/web/scripts/build-if-stale.mjs', import.meta.url));
export const SCREENSHOTS = fileURLToPath(new URL('../e2e/screenshots/', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';

/** Builds apps/web/out when its sources changed (a no-op otherwise); concurrent files wait on one lock. */
export function ensureWebBuilt(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`web build failed (${code}):\n${log.slice(-4000)}`)),
    );
  });
}

export function launchBrowser(): Promise<Browser> {
  // playwright-core gives each launch a fresh temporary --user-data-dir and removes it on close.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * The little of the DOM that page-side callbacks touch. The root tsconfig has no DOM lib (server
 * code must not see `window`), so callbacks passed to page.evaluate start with
 * `const w = globalThis as unknown as PageWindow;`, a cast that vanishes when compiled.
 */
export interface PageElement {
  tagName: string;
  type?: string;
  name?: string;
  getAttribute(name: string): string | null;
  removeAttribute(name: string): void;
}
export interface PageWindow {
  innerWidth: number;
  scrollTo(x: number, y: number): void;
  getComputedStyle(el: PageElement): { fontSize: string };
  navigator: { clipboard: { readText(): Promise<string> } };
  document: {
    documentElement: { scrollWidth: number };
    querySelector(selector: string): PageElement | null;
    querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
  };
}

export const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
export const PHONE: BrowserContextOptions = {
  viewport: { width: 375, height: 812 },
  isMobile: true,
  hasTouch: true,
  deviceScaleFactor: 2,
};

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** Problems the page reported: uncaught errors and CSP refusals. Expected to stay empty. */
  problems: string[];
}

export async function openTab(
  browser: Browser,
  baseURL: string,
  opts: BrowserContextOptions = DESKTOP,
): Promise<Tab> {
  const context = await browser.newContext({ ...opts, baseURL });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}\n${e.stack ?? ''}`));
  page.on('console', (m) => {
    // A 401/404 answer is logged by Chromium as "Failed to load resource"; that is the API working.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      problems.push(`console: ${m.text()}`);
  });
  return { context, page, problems };
}

/** Saves test/e2e/screenshots/<name>-<size>.png: the whole page from the top, or just what is in view. */
export async function screenshot(
  page: Page,
  name: string,
  size: 'desktop' | 'tablet' | 'phone',
  opts: { fullPage?: boolean } = {},
): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const fullPage = opts.fullPage ?? true;
  // A sticky header would otherwise be drawn where the page happened to be scrolled to.
  if (fullPage) await page.evaluate(() => (globalThis as unknown as PageWindow).scrollTo(0, 0));
  await page.screenshot({ path: `${SCREENSHOTS}${name}-${size}.png`, fullPage });
}

/** The phone rules of issue 8: nothing scrolls sideways, and no input is small enough for iOS to zoom on focus. */
export async function expectPhoneFriendly(page: Page): Promise<void> {
  const m = await page.evaluate(() => {
    const w = globalThis as unknown as PageWindow;
    return {
      scrollWidth: w.document.documentElement.scrollWidth,
      innerWidth: w.innerWidth,
      small: [...w.document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.type !== 'hidden')
        .map((el) => ({ name: el.name || el.tagName, size: parseFloat(w.getComputedStyle(el).fontSize) }))
        .filter((x) => x.size < 16),
      viewport: w.document.querySelector('meta[name="viewport"]')?.getAttribute('content') ?? '',
    };
  });
  expect(m.scrollWidth, 'horizontal scroll').toBeLessThanOrEqual(m.innerWidth);
  expect(m.small, 'inputs under 16px').toEqual([]);
  expect(m.viewport).toContain('width=device-width');
  expect(m.viewport).toContain('initial-scale=1');
}

/** Signs in through the form and waits for the signed-in header. */
export async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('whoami').waitFor({ state: 'attached' });
}

export interface WebSuite {
  server: TestServer;
  browser: Browser;
  /** An API client signed in as the admin (only with `api: 'admin'` or `'admin+live'`). */
  admin: Client;
  /** Live events for `admin` (only with `api: 'admin+live'`). */
  live: LiveWaiter;
  /** Closes what was started, last first. */
  close(): Promise<void>;
}

export interface WebSuiteOptions {
  /** The control plane's environment, e.g. `{ BERTH_PROVIDERS: 'local' }`. */
  env?: Record<string, string>;
  /** startTestServer's options: `{ admin: false }` starts with no admin account. */
  server?: Parameters<typeof startTestServer>[1];
  /** What the test also drives through the API: an admin client, and its live events. */
  api?: 'admin' | 'admin+live';
}

/**
 * What every browser suite starts in its beforeAll: the web app (built when stale), a control
 * plane on its own database, Chromium, and when asked an admin API client with live events.
 */
export async function startWebSuite(opts: WebSuiteOptions = {}): Promise<WebSuite> {
  await ensureWebBuilt();
  const server = await startTestServer(opts.env ?? {}, opts.server ?? {});
  let admin: Client | undefined;
  let live: LiveWaiter | undefined;
  let browser: Browser | undefined;
  const close = async () => {
    live?.close();
    await browser?.close();
    await server.stop();
  };
  try {
    if (opts.api) {
      admin = new Client(server.url);
      await admin.login(ADMIN.email, ADMIN.password);
      if (opts.api === 'admin+live') live = await LiveWaiter.connect(admin);
    }
    browser = await launchBrowser();
  } catch (err) {
    // beforeAll failed, so no afterAll sees a suite to close: close what did start here.
    await close();
    throw err;
  }
  return {
    server,
    browser,
    get admin() {
      if (!admin) throw new Error("startWebSuite: pass api: 'admin' for an admin client");
      return admin;
    },
    get live() {
      if (!live) throw new Error("startWebSuite: pass api: 'admin+live' for live events");
      return live;
    },
    close,
  };
}

/** Creates a `local` environment through the API and waits, on live events, until it is ready. */
export async function readyEnv(api: { admin: Client; live: LiveWaiter }, name: string): Promise<string> {
  const { admin, live } = api;
  const r = await admin.post('/api/v1/environments', { name, provider: 'local' });
  expect(r.status).toBe(201);
  const id = r.json.environment.id as string;
  const done = await live.until(
    () => admin.get(`/api/v1/environments/${id}`),
    (x) => x.status === 404 || ['ready', 'failed'].includes(x.json.environment.state as string),
  );
  expect(done.status === 404 ? 'gone' : done.json.environment.state).toBe('ready');
  return id;
}

/** Destroys an environment through the API and waits on live events until it is gone. */
export async function destroyEnv(api: { admin: Client; live: LiveWaiter }, id: string): Promise<void> {
  const { admin, live } = api;
  await admin.del(`/api/v1/environments/${id}`);
  await live.until(
    () => admin.get(`/api/v1/environments/${id}`),
    (x) => x.status === 404 || ['destroyed', 'failed'].includes(x.json.environment.state as string),
  );
}
