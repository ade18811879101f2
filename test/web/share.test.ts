import pg from 'pg';
import { connectTerminal } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type Client, type TestServer } from '../../apps/control-plane/src/testing/server.js';
import type { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import {
  DESKTOP,
  PHONE,
  expectPhoneFriendly,
  openTab,
  readyEnv,
  screenshot,
  signIn,
  startWebSuite,
  type WebSuite,
} from './browser.js';
import { openTerminal, recordTerminalSockets, seeLine, termText, type TermWindow } from './terminal.js';

// Read-only links (issue 8): the owner of a terminal makes a link; another signed-in user opens it,
// watches the owner's shell live and cannot type into it; revoked, the viewers watching are cut
// off at once and told so, and the link says so with its hint.
// Real control plane, `local` provider (a real gateway with bash PTYs), two browser contexts.

const MEMBER = { email: 'viewer@example.com', password: 'viewer password 1' };

/** The page's view of the socket spoiler below. */
interface SpoilWindow {
  __spoilResume?: boolean;
}

/**
 * Runs in the page before its scripts: while `__spoilResume` is set, a reconnect's resume token is
 * replaced, so the gateway refuses it as it would after a restart and the page must fetch a fresh
 * ticket (for a viewer: from the share token again).
 */
function spoilResumeTokens() {
  const w = globalThis as unknown as {
    WebSocket: new (url: string, p?: string | string[]) => object;
  } & SpoilWindow;
  const Native = w.WebSocket;
  w.WebSocket = class extends Native {
    constructor(url: string, protocols?: string | string[]) {
      const u = String(url);
      super(
        w.__spoilResume && u.includes('resume=') ? u.replace(/resume=[^&]*/, 'resume=spoiled') : u,
        protocols,
      );
    }
  } as unknown as typeof w.WebSocket;
}

/** Drops the viewer's newest gateway socket, as a network failure would. */
async function dropSocket(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = globalThis as unknown as TermWindow;
    w.__terminalSockets[w.__terminalSockets.length - 1]!.close();
  });
}

/** The sign-in form, already on /login (where the share page sent us). */
async function fillSignIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('web app: read-only terminal links for other users', { timeout: 180_000 }, () => {
  let web: WebSuite | undefined;
  let s: TestServer;
  let browser: Browser;
  let admin: Client;
  let live: LiveWaiter;

  beforeAll(async () => {
    web = await startWebSuite({ env: { BERTH_PROVIDERS: 'local' }, api: 'admin+live' });
    ({ server: s, browser, admin, live } = web);
    expect((await admin.post('/api/v1/users', { ...MEMBER, role: 'member' })).status).toBe(201);
  }, 900_000);

  afterAll(async () => {
    await web?.close();
  });

  it('a member opens the link after signing in, watches live, cannot type; revoked, the watching viewers are told at once and the link says so', async () => {
    const id = await readyEnv({ admin, live }, 'shared-one');
    const owner = await openTab(browser, s.url, DESKTOP);
    const viewer = await openTab(browser, s.url, DESKTOP);
    await viewer.context.addInitScript(recordTerminalSockets);
    await viewer.context.addInitScript(spoilResumeTokens);
    let shareTickets = 0;
    viewer.page.on('request', (r) => {
      if (r.url().endsWith('/api/v1/terminal-shares/tickets')) shareTickets++;
    });
    const phone = await openTab(browser, s.url, PHONE);
    try {
      // The owner's shell, and a link to it.
      await signIn(owner.page, ADMIN.email, ADMIN.password);
      await owner.page.goto(`/terminal?env=${id}`);
      await openTerminal(owner.page);
      await owner.page.keyboard.type('echo before-$((2*2))\n');
      await seeLine(owner.page, 'before-4');
      await owner.page.waitForURL(/[?&]session=/);
      await owner.page.getByRole('button', { name: 'Share read-only' }).click();
      const link = (await owner.page.getByTestId('share-link').textContent())!;
      expect(link.startsWith(`${s.url}/share/?token=`)).toBe(true);
      expect(await owner.page.getByTestId('share-expiry').textContent()).toMatch(/in (1 hour|60 minutes)/);
      const item = owner.page.getByTestId('share-list').locator('.share-item');
      await item.first().waitFor();
      expect(await item.count()).toBe(1);
      await screenshot(owner.page, 'terminal-share-panel', 'desktop', { fullPage: false });

      // Someone else, not signed in: sign-in first, then back to the link.
      await viewer.page.goto(link);
      await viewer.page.waitForURL(/\/login\?next=/);
      await fillSignIn(viewer.page, MEMBER.email, MEMBER.password);
      await viewer.page.waitForURL((u) => u.pathname.startsWith('/share') && u.search.includes('token='));
      await viewer.page.getByTestId('read-only').waitFor();
      expect(await viewer.page.getByTestId('read-only').textContent()).toBe(
        `read-only — shared by ${ADMIN.email}`,
      );
      expect(await viewer.page.getByTestId('share-env').textContent()).toBe('shared-one');
      await viewer.page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await seeLine(viewer.page, 'before-4'); // what was on the screen already

      // Live: the owner types, the viewer sees it.
      await owner.page.locator('[data-testid="terminal"]:visible').click();
      await owner.page.keyboard.type('echo shared-$((6*7))\n');
      await seeLine(viewer.page, 'shared-42');

      // The viewer's keys never reach the shell: the owner's next command runs alone.
      await viewer.page.locator('[data-testid="terminal"]').click();
      await viewer.page.keyboard.type('echo nope\n');
      await owner.page.locator('[data-testid="terminal"]:visible').click();
      await owner.page.keyboard.type('echo owner-$((1+1))\n');
      await seeLine(owner.page, 'owner-2');
      await seeLine(viewer.page, 'owner-2');
      expect(await termText(owner.page)).not.toContain('nope');
      expect(await termText(viewer.page)).not.toContain('nope');
      await screenshot(viewer.page, 'share', 'desktop', { fullPage: false });

      // A dropped connection comes back by itself, like the owner's.
      expect(shareTickets).toBe(1);
      await dropSocket(viewer.page);
      await viewer.page.waitForFunction(
        () => (globalThis as unknown as TermWindow).__terminalSockets.length > 1,
      );
      await viewer.page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await owner.page.keyboard.type('echo again-$((3+4))\n');
      await seeLine(viewer.page, 'again-7');

      // The gateway refuses the resume (as after a restart): a fresh ticket from the same link.
      await viewer.page.evaluate(() => ((globalThis as unknown as SpoilWindow).__spoilResume = true));
      await dropSocket(viewer.page);
      await viewer.page.waitForFunction(
        () => (globalThis as unknown as TermWindow).__terminalSockets.length > 3,
      );
      await viewer.page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      expect(shareTickets).toBe(2);
      await owner.page.keyboard.type('echo fresh-$((4+5))\n');
      await seeLine(viewer.page, 'fresh-9');

      // On a phone: the viewer's page fits, and so does the owner's share panel.
      await signIn(phone.page, MEMBER.email, MEMBER.password);
      await phone.page.goto(link);
      await phone.page.getByTestId('read-only').waitFor();
      await phone.page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await seeLine(phone.page, 'fresh-9');
      await expectPhoneFriendly(phone.page);
      // The owner's wide shell scrolls sideways inside the terminal box instead of being cut off.
      const box = await phone.page.getByTestId('terminal').evaluate((el) => {
        const e = el as unknown as { scrollWidth: number; clientWidth: number; scrollLeft: number };
        e.scrollLeft = 0;
        return { scroll: e.scrollWidth, client: e.clientWidth };
      });
      expect(box.scroll).toBeGreaterThan(box.client);
      await screenshot(phone.page, 'share', 'phone', { fullPage: false });

      // The owner revokes the link: both viewers lose the connection at once, without dropping
      // anything themselves, and are told why; neither reconnects nor asks for another ticket.
      const socketsBefore = await viewer.page.evaluate(
        () => (globalThis as unknown as TermWindow).__terminalSockets.length,
      );
      await item.first().getByRole('button', { name: 'Revoke' }).click();
      await owner.page.getByTestId('share-none').waitFor();
      for (const p of [viewer.page, phone.page]) {
        await p.getByTestId('share-ended').waitFor();
        expect(await p.getByTestId('share-ended').textContent()).toContain(
          'The owner stopped sharing this terminal',
        );
        expect(await p.getByTestId('share-ended').textContent()).toContain(
          `Ask ${ADMIN.email} for a new link`,
        );
        await p.locator('[data-testid="term-status"][data-status="closed"]').waitFor();
        expect(await p.getByTestId('reconnecting').count()).toBe(0);
      }
      // What was on the screen stays there to read.
      await seeLine(viewer.page, 'fresh-9');
      await expectPhoneFriendly(phone.page);
      await screenshot(phone.page, 'share-ended', 'phone', { fullPage: false });
      expect(shareTickets).toBe(2);
      expect(
        await viewer.page.evaluate(() => (globalThis as unknown as TermWindow).__terminalSockets.length),
      ).toBe(socketsBefore);
      // Opening the link again says it is gone, with what to do.
      await viewer.page.goto(link);
      await viewer.page.getByTestId('error').waitFor();
      expect(await viewer.page.getByTestId('error').textContent()).toContain('does not exist or was revoked');
      expect(await viewer.page.getByTestId('error-hint').textContent()).toContain(
        'ask the person who shared the terminal for a new link',
      );
      await screenshot(viewer.page, 'share-revoked', 'desktop');

      expect(owner.problems).toEqual([]);
      expect(viewer.problems).toEqual([]);
      expect(phone.problems).toEqual([]);
    } finally {
      await owner.context.close();
      await viewer.context.close();
      await phone.context.close();
    }
    await admin.del(`/api/v1/environments/${id}`);
  });

  it('an expired link and a stopped environment say so, with their hints', async () => {
    const id = await readyEnv({ admin, live }, 'shared-stopped');
    // Links made through the API (the session need not exist to make one); one is made to expire.
    const make = async () => {
      const r = await admin.post(`/api/v1/environments/${id}/terminals/some-session/shares`, {});
      expect(r.status).toBe(201);
      return { id: r.json.share.id as string, url: `${s.url}${r.json.path as string}` };
    };
    const old = await make();
    const fresh = await make();
    await s.db.query(`UPDATE terminal_shares SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      old.id,
    ]);
    expect((await admin.post(`/api/v1/environments/${id}/stop`)).status).toBe(200);
    await live.until(
      () => admin.get(`/api/v1/environments/${id}`),
      (x) => x.json.environment.state === 'stopped',
    );

    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, MEMBER.email, MEMBER.password);
      await page.goto(old.url);
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain('this read-only link expired');
      expect(await page.getByTestId('error-hint').textContent()).toContain('ask the person who shared');
      // Nothing to retry: an expired link stays expired.
      expect(await page.getByRole('button', { name: 'Try again' }).count()).toBe(0);

      await page.goto(fresh.url);
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain('is stopped');
      expect(await page.getByTestId('error-hint').textContent()).not.toBe('');
      // The owner may start it again, so this one offers a retry.
      await page.getByRole('button', { name: 'Try again' }).waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'share-not-ready', 'phone');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
    await admin.del(`/api/v1/environments/${id}`);
  });

  it('a viewer watching when the link expires is told so, without a reconnect', async () => {
    const id = await readyEnv({ admin, live }, 'shared-expiring');
    // The owner's shell, from the API (a real gateway session with a driver attached).
    const t = await admin.post(`/api/v1/environments/${id}/terminals`, {});
    const driver = connectTerminal({
      url: t.json.url,
      token: t.json.token,
      socketFactory: nodeSocketFactory,
    });
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      const { sessionId } = await driver.ready();
      driver.write('echo expiring-$((8*8))\n');
      const made = await admin.post(`/api/v1/environments/${id}/terminals/${sessionId}/shares`, {
        expiresInMinutes: 1,
      });
      expect(made.status).toBe(201);
      await signIn(page, MEMBER.email, MEMBER.password);
      // A minute is the shortest lifetime the API gives: the row is brought forward to a few
      // seconds away (room for the page to load and connect), then the close is awaited.
      await s.db.query(
        `UPDATE terminal_shares SET expires_at = date_trunc('second', now()) + interval '6 seconds' WHERE id = $1`,
        [made.json.share.id],
      );
      await page.goto(`${s.url}${made.json.path as string}`);
      await page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await seeLine(page, 'expiring-64');
      await page.getByTestId('share-ended').waitFor();
      expect(await page.getByTestId('share-ended').textContent()).toContain('This link expired');
      await page.locator('[data-testid="term-status"][data-status="closed"]').waitFor();
      expect(await page.getByTestId('reconnecting').count()).toBe(0);
      await seeLine(page, 'expiring-64');
      await expectPhoneFriendly(page);
      expect(problems).toEqual([]);
    } finally {
      driver.close();
      await context.close();
    }
    await admin.del(`/api/v1/environments/${id}`);
  });

  it("at 375 px the owner's share panel fits: link, copy, expiry, another link with a lifetime, revoke; the environment page revokes too", async () => {
    const id = await readyEnv({ admin, live }, 'shared-phone');
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto(`/terminal?env=${id}`);
      await page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await page.waitForURL(/[?&]session=/);
      await page.getByRole('button', { name: 'Share read-only' }).tap();
      await page.getByTestId('share-link').waitFor();
      const item = page.getByTestId('share-list').locator('.share-item');
      await item.first().waitFor();

      await page.getByLabel('New link, valid for').selectOption({ label: '15 minutes' });
      await page.getByRole('button', { name: 'Create link' }).tap();
      await item.nth(1).waitFor();
      expect(await page.getByTestId('share-expiry').textContent()).toContain('in 15 minutes');
      await expectPhoneFriendly(page);
      await screenshot(page, 'terminal-share-panel', 'phone', { fullPage: false });

      // The environment's gateway cannot be told (its address now refuses connections): the link is
      // revoked all the same, and the owner learns that someone watching may go on.
      const db = new pg.Client({ connectionString: s.db.url });
      await db.connect();
      let gatewayUrl: string | undefined;
      try {
        gatewayUrl = (
          await db.query<{ gateway_url: string }>(`SELECT gateway_url FROM environments WHERE id = $1`, [id])
        ).rows[0]!.gateway_url;
        await db.query(`UPDATE environments SET gateway_url = 'http://127.0.0.1:1' WHERE id = $1`, [id]);
        await item.first().getByRole('button', { name: 'Revoke' }).tap();
        await page.waitForFunction(
          () =>
            (
              globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }
            ).document.querySelectorAll('.share-item').length === 1,
        );
      } finally {
        if (gatewayUrl)
          await db.query(`UPDATE environments SET gateway_url = $2 WHERE id = $1`, [id, gatewayUrl]);
        await db.end();
      }
      const warning = page.getByTestId('share').getByTestId('error');
      await warning.waitFor();
      expect(await warning.textContent()).toContain(
        'the link is revoked, but the environment did not answer',
      );
      expect(await page.getByTestId('share').getByTestId('error-hint').textContent()).toContain(
        'stop the environment',
      );
      await expectPhoneFriendly(page);
      expect((await admin.get(`/api/v1/environments/${id}/terminals/shares`)).json.items).toHaveLength(1);

      // The environment's page lists the session's live link, and revokes it too.
      const sid = new URL(page.url()).searchParams.get('session')!;
      await page.goto(`/environments/view?id=${id}`);
      const links = page.locator(`.session[data-session-id="${sid}"]`).getByTestId('session-shares');
      await links.locator('.share-item').first().waitFor();
      expect(await links.locator('.share-item').count()).toBe(1);
      expect(await links.textContent()).toContain('1 read-only link');
      await expectPhoneFriendly(page);
      await links.getByRole('button', { name: 'Revoke' }).tap();
      await links.waitFor({ state: 'detached' });
      expect((await admin.get(`/api/v1/environments/${id}/terminals/shares`)).json.items).toHaveLength(0);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
    await admin.del(`/api/v1/environments/${id}`);
  });
});
