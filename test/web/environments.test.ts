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
  type PageWindow,
  type WebSuite,
} from './browser.js';
import { openTerminal, recordTerminalSockets, seeLine, termText, type TermWindow } from './terminal.js';

// Environments and terminals in the browser against a real control plane with the `local`
// provider: each environment is a real gateway child process with real PTYs (bash).

const envState = (page: Page) => page.locator('.page-head [data-testid="env-state"]');
const rowOf = (page: Page, id: string) => page.locator(`[data-testid="env-row"][data-env-id="${id}"]`);

describe('web app: environments and terminals (local provider)', { timeout: 180_000 }, () => {
  let web: WebSuite;
  let s: TestServer;
  let browser: Browser;
  let admin: Client;
  let live: LiveWaiter;

  beforeAll(async () => {
    web = await startWebSuite({ env: { BERTH_PROVIDERS: 'local' }, api: 'admin+live' });
    ({ server: s, browser, admin, live } = web);
  }, 900_000);

  afterAll(() => web?.close());

  it('creates from the form, shows progress until ready, and runs a shell that survives a dropped connection', async () => {
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    await context.addInitScript(recordTerminalSockets);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/environments');
      await page.getByTestId('empty').waitFor();

      // A provider this server does not run: the API's error names the ones it does.
      await page.getByLabel('Name').fill('web-one');
      await page.getByLabel('Provider').fill('nope');
      await page.getByRole('button', { name: 'Create environment' }).click();
      expect(await page.getByTestId('error').textContent()).toContain('provider "nope" is not enabled');
      expect(await page.getByTestId('error-hint').textContent()).toContain('local');

      await page.getByLabel('Provider').fill('local');
      await page.getByRole('radio', { name: 'berth.yaml' }).check();
      await page
        .getByRole('textbox', { name: 'berth.yaml contents' })
        .fill('setup:\n  - echo prepared > /tmp/berth-web-setup\n');
      await page.getByRole('button', { name: 'Create environment' }).click();
      await page.waitForURL(/\/environments\/view\?id=/);
      const id = new URL(page.url()).searchParams.get('id')!;
      await envState(page).and(page.locator('[data-state="ready"]')).waitFor({ timeout: 120_000 });
      // Progress lines, refetched as the state changed.
      await page.getByTestId('events').locator('[data-kind="ready"]').waitFor();
      const events = (await page.getByTestId('events').textContent()) ?? '';
      expect(events).toContain('environment created');
      expect(events).toContain('provisioning');

      await page.getByRole('link', { name: 'Open terminal' }).click();
      await page.waitForURL(/\/terminal\?env=/);
      await openTerminal(page);
      await page.keyboard.type('echo $((6*7))\n');
      await seeLine(page, '42');
      // The address now names the session, so a reload or another device rejoins it.
      await page.waitForURL(/[?&]session=/);

      // Drop the connection under the page, as a network failure would; type while it is down.
      const sockets = await page.evaluate(
        () => (globalThis as unknown as TermWindow).__terminalSockets.length,
      );
      await page.evaluate(() => {
        const w = globalThis as unknown as TermWindow;
        w.__terminalSockets[w.__terminalSockets.length - 1]!.close();
      });
      await page.keyboard.type('echo during-$((2+3))\n');
      await page.waitForFunction(
        (n) => (globalThis as unknown as TermWindow).__terminalSockets.length > n,
        sockets,
      );
      await page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await seeLine(page, 'during-5');
      expect(await termText(page)).toMatch(/^42$/m); // the screen was kept, not cleared
      await page.keyboard.type('echo after-$((5+5))\n');
      await seeLine(page, 'after-10');

      // A reload joins the same session and redraws its screen from the gateway.
      await page.reload();
      await openTerminal(page);
      await seeLine(page, 'after-10');
      expect(await termText(page)).toMatch(/^42$/m);
      await page.keyboard.type('echo reloaded\n');
      await seeLine(page, 'reloaded');

      // A second tab is a second shell; the first keeps its screen.
      await page.getByRole('button', { name: 'New terminal' }).click();
      await page
        .getByRole('tab', { name: 'Terminal 2' })
        .and(page.locator('[aria-selected="true"]'))
        .waitFor();
      await openTerminal(page);
      await page.keyboard.type('echo second-$((1+1))\n');
      await seeLine(page, 'second-2');
      expect(await termText(page)).not.toMatch(/^42$/m);
      await page.getByRole('tab', { name: 'Terminal 1' }).click();
      await seeLine(page, 'reloaded');

      // Copy takes the screen (nothing is selected); Paste types the clipboard as a paste.
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.url });
      await page.getByRole('button', { name: 'Copy', exact: true }).click();
      await page.getByRole('button', { name: 'Copied' }).waitFor();
      const copied = await page.evaluate(() =>
        (globalThis as unknown as PageWindow).navigator.clipboard.readText(),
      );
      expect(copied).toMatch(/^reloaded$/m);
      await page.evaluate(() =>
        (
          globalThis as unknown as { navigator: { clipboard: { writeText(t: string): Promise<void> } } }
        ).navigator.clipboard.writeText('echo pasted-$((4+4))'),
      );
      await page.getByRole('button', { name: 'Paste' }).click();
      // On the prompt line, not yet run; then Enter in the terminal, which has the focus back.
      await page.waitForFunction(() =>
        /# echo pasted-\$\(\(4\+4\)\)\s*$/.test(
          (globalThis as unknown as TermWindow).__berthTerminal?.text() ?? '',
        ),
      );
      await page.locator('.xterm-helper-textarea:visible').and(page.locator(':focus')).waitFor();
      await page.keyboard.press('Enter');
      await seeLine(page, 'pasted-8');
      await page.getByRole('button', { name: 'Copy', exact: true }).waitFor(); // "Copied" goes back after a moment
      await screenshot(page, 'terminal', 'desktop', { fullPage: false });

      // Read-only share: a link with its own token (share.test.ts has another user open it); opened
      // here, in another tab, it watches.
      await page.getByRole('button', { name: 'Share read-only' }).click();
      const link = (await page.getByTestId('share-link').textContent())!;
      expect(link).toMatch(/\/share\/\?token=[^&]+$/);
      await screenshot(page, 'terminal-share', 'desktop', { fullPage: false });
      const watcher = await context.newPage();
      await watcher.goto(link);
      await watcher.getByTestId('read-only').waitFor();
      await watcher.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await seeLine(watcher, 'reloaded');
      await watcher.locator('[data-testid="terminal"]').click();
      await watcher.keyboard.type('echo from-watcher\n');
      await page.locator('[data-testid="terminal"]:visible').click();
      await page.keyboard.type('echo shared-$((3*3))\n');
      await seeLine(watcher, 'shared-9');
      expect(await termText(page)).not.toContain('from-watcher');
      await watcher.close();

      // The environment's page lists both shells, to rejoin or watch from anywhere.
      const sid = new URL(page.url()).searchParams.get('session')!;
      await page.goto(`/environments/view?id=${id}`);
      await page.getByTestId('sessions').locator('.session').nth(1).waitFor();
      expect(await page.getByTestId('sessions').locator('.session').count()).toBe(2);
      const mine = page.locator(`.session[data-session-id="${sid}"]`);
      await screenshot(page, 'environment', 'desktop');
      await mine.getByRole('link', { name: 'Join' }).click();
      await openTerminal(page);
      await seeLine(page, 'shared-9');

      // The list: live state, and stop / destroy behind a confirmation.
      await page.goto('/environments');
      await rowOf(page, id).locator('[data-state="ready"]').waitFor();
      await screenshot(page, 'environments', 'desktop');
      await rowOf(page, id).getByRole('button', { name: 'Stop web-one' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Stop', exact: true }).click();
      await rowOf(page, id).locator('[data-state="stopped"]').waitFor({ timeout: 60_000 });
      await rowOf(page, id).getByRole('button', { name: 'Start web-one' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Start', exact: true }).click();
      await rowOf(page, id).locator('[data-state="ready"]').waitFor({ timeout: 60_000 });
      await rowOf(page, id).getByRole('button', { name: 'Destroy web-one' }).click();
      expect(await page.getByRole('dialog').textContent()).toContain('cannot be undone');
      await page.getByRole('dialog').getByRole('button', { name: 'Destroy', exact: true }).click();
      await rowOf(page, id).locator('[data-state="destroyed"]').waitFor({ timeout: 60_000 });
      expect((await admin.get(`/api/v1/environments/${id}`)).json.environment.state).toBe('destroyed');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('creates from a repository with a devcontainer.json and a size; a quota refusal shows its hint; a failed clone shows its reason', async () => {
    const adminId = (await admin.get('/api/v1/me')).json.user.id as string;
    // Nothing listens there: the clone fails at once (a name that does not resolve can wait on DNS).
    const repo = 'https://127.0.0.1:9/team/app.git';
    const devcontainer = '{ "image": "debian:bookworm", "postCreateCommand": "true" }';
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/environments');
      await page.getByLabel('Name').fill('from-repo');
      await page.getByLabel('Repository URL').fill(repo);
      await page.getByLabel('Branch or tag').fill('main');
      await page.getByRole('radio', { name: 'devcontainer.json' }).check();
      await page.getByRole('textbox', { name: 'devcontainer.json contents' }).fill(devcontainer);

      // A size above this user's quota: refused before anything is made, with what to do.
      expect((await admin.req('PUT', `/api/v1/users/${adminId}/quotas`, { maxCpus: 2 })).status).toBe(200);
      await page.getByLabel('Size').selectOption({ label: 'Large (4 CPUs, 8 GB)' });
      await page.getByRole('button', { name: 'Create environment' }).click();
      await page.getByTestId('error').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain('at most 2 CPUs');
      expect(await page.getByTestId('error-hint').textContent()).toContain('ask for fewer CPUs');
      expect((await admin.req('PUT', `/api/v1/users/${adminId}/quotas`, { maxCpus: null })).status).toBe(200);

      await page.getByLabel('Size').selectOption({ label: 'Medium (2 CPUs, 4 GB)' });
      await page.getByRole('button', { name: 'Create environment' }).click();
      await page.waitForURL(/\/environments\/view\?id=/);
      const id = new URL(page.url()).searchParams.get('id')!;
      // What the server kept is what the form said.
      expect((await admin.get(`/api/v1/environments/${id}`)).json.environment.spec).toMatchObject({
        repo: { url: repo, ref: 'main' },
        devcontainer,
        resources: { cpu: 2, memoryMb: 4096 },
      });
      await page.getByText(`${repo} @ main · devcontainer.json · 2 CPUs · 4 GB`, { exact: true }).waitFor();
      // The host does not exist: provisioning fails, and the page says why, without a stack trace.
      await envState(page).and(page.locator('[data-state="failed"]')).waitFor({ timeout: 120_000 });
      await page.getByTestId('events').locator('[data-kind="failed"]').waitFor();
      expect(await page.getByTestId('error').textContent()).toContain(`could not clone ${repo}`);
      expect(await page.getByTestId('error-hint').textContent()).toContain('read the events below');
      const body = (await page.locator('main').textContent()) ?? '';
      expect(body).not.toMatch(/\bat \S+ \(.*:\d+:\d+\)/);
      await screenshot(page, 'environment-failed', 'desktop');
      expect(problems).toEqual([]);
      await admin.del(`/api/v1/environments/${id}`);
    } finally {
      await context.close();
    }
  });

  it('a link printed in the terminal opens in a new tab; without a hardware GPU the DOM renderer draws', async () => {
    const id = await readyEnv({ admin, live }, 'links-one');
    const { page, context, problems } = await openTab(browser, s.url, DESKTOP);
    const url = 'https://docs.example.invalid/berth/terminals';
    // The link's host does not exist; the browser answers for it, so the new tab has a page.
    await context.route('https://docs.example.invalid/**', (r) =>
      r.fulfill({ contentType: 'text/html', body: '<title>docs</title>docs' }),
    );
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto(`/terminal?env=${id}`);
      await openTerminal(page);
      // Headless Chromium here has software WebGL only (--disable-gpu): the DOM renderer is used.
      expect(await page.locator('[data-testid="terminal"]:visible').getAttribute('data-renderer')).toBe(
        'dom',
      );
      await page.keyboard.type(`printf '%s\\n' ${url}\n`);
      await seeLine(page, url);

      // Where the printed line is on screen, in cells, from the terminal's own buffer.
      const cell = await page.evaluate((want) => {
        interface Term {
          cols: number;
          rows: number;
          buffer: {
            active: {
              viewportY: number;
              getLine(i: number): { translateToString(t: boolean): string } | undefined;
            };
          };
        }
        const t = (globalThis as unknown as { __berthTerminal: { term: Term } }).__berthTerminal.term;
        const b = t.buffer.active;
        for (let r = 0; r < t.rows; r++)
          if (b.getLine(b.viewportY + r)?.translateToString(true) === want)
            return { row: r, cols: t.cols, rows: t.rows };
        return null;
      }, url);
      expect(cell).not.toBeNull();
      const screen = (await page.locator('[data-testid="terminal"]:visible .xterm-screen').boundingBox())!;
      const x = screen.x + (10.5 * screen.width) / cell!.cols;
      const y = screen.y + ((cell!.row + 0.5) * screen.height) / cell!.rows;
      await page.mouse.move(x, y);
      const [popup] = await Promise.all([page.waitForEvent('popup'), page.mouse.click(x, y)]);
      await popup.waitForURL(url);
      expect(await popup.title()).toBe('docs');
      await popup.close();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
    await admin.del(`/api/v1/environments/${id}`);
  });

  it("another user's environment and terminal are not found, with the API's hint", async () => {
    const id = await readyEnv({ admin, live }, 'private-one');
    expect(
      (
        await admin.post('/api/v1/users', {
          email: 'other@example.com',
          password: 'other password 1',
          role: 'member',
        })
      ).status,
    ).toBe(201);
    const { page, context } = await openTab(browser, s.url, DESKTOP);
    try {
      await signIn(page, 'other@example.com', 'other password 1');
      for (const path of [`/environments/view?id=${id}`, `/terminal?env=${id}`]) {
        await page.goto(path);
        await page.getByTestId('error').waitFor();
        expect(await page.getByTestId('error').textContent()).toContain('not found');
        expect(await page.getByTestId('error-hint').textContent()).toContain('check the environment id');
      }
      await page.goto('/environments');
      await page.getByTestId('empty').waitFor();
    } finally {
      await context.close();
    }
    await admin.del(`/api/v1/environments/${id}`);
  });

  it('at 375 px: list and detail fit, and the key bar drives the shell (Esc, sticky Ctrl and Alt, Tab, arrows, |, ~, /)', async () => {
    const id = await readyEnv({ admin, live }, 'phone-one');
    const { page, context, problems } = await openTab(browser, s.url, PHONE);
    try {
      await signIn(page, ADMIN.email, ADMIN.password);
      await page.goto('/environments');
      await rowOf(page, id).waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'environments', 'phone');

      await rowOf(page, id).getByRole('link', { name: 'phone-one', exact: true }).tap();
      await envState(page).and(page.locator('[data-state="ready"]')).waitFor();
      await page.getByTestId('events').locator('[data-kind="ready"]').waitFor();
      await expectPhoneFriendly(page);
      await screenshot(page, 'environment', 'phone');

      await page.getByRole('link', { name: 'Open terminal' }).tap();
      await page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
      await page.locator('[data-testid="terminal"]').tap();
      const keys = page.getByRole('toolbar', { name: 'Extra keys' });
      await keys.waitFor();
      await expectPhoneFriendly(page);

      // A program that would run for minutes, stopped with Ctrl (sticky) then c; an Esc sent
      // meanwhile goes to it (and is dropped with the rest of its input by the interrupt).
      await page.keyboard.type('sleep 300\n');
      await keys.getByRole('button', { name: 'Esc' }).tap();
      await keys.getByRole('button', { name: 'Ctrl' }).tap();
      expect(await keys.getByRole('button', { name: 'Ctrl' }).getAttribute('aria-pressed')).toBe('true');
      await page.keyboard.type('c');
      expect(await keys.getByRole('button', { name: 'Ctrl' }).getAttribute('aria-pressed')).toBe('false');
      await page.keyboard.type('echo $((6*7))\n');
      await seeLine(page, '42');
      // Up recalls the last command.
      await keys.getByRole('button', { name: 'Up' }).tap();
      await page.keyboard.type('\n');
      await seeLine(page, '42', 2);
      await page.keyboard.type('echo a b ');
      await keys.getByRole('button', { name: 'Pipe' }).tap();
      await page.keyboard.type(' tr a-z A-Z\n');
      await seeLine(page, 'A B');
      // The other keys, byte for byte: `cat -A` prints what it receives (^I is Tab, ^[ is Esc).
      await page.keyboard.type('cat -A\n');
      await keys.getByRole('button', { name: 'Tab' }).tap();
      await keys.getByRole('button', { name: 'Alt' }).tap();
      await page.keyboard.type('b');
      expect(await keys.getByRole('button', { name: 'Alt' }).getAttribute('aria-pressed')).toBe('false');
      for (const k of ['Tilde', 'Slash', 'Left', 'Right', 'Down'])
        await keys.getByRole('button', { name: k }).tap();
      await page.keyboard.type('\n');
      await seeLine(page, '^I^[b~/^[[D^[[C^[[B$');
      await keys.getByRole('button', { name: 'Ctrl' }).tap();
      await page.keyboard.type('d');
      await page.keyboard.type('echo cat-done\n');
      await seeLine(page, 'cat-done');
      await screenshot(page, 'terminal', 'phone', { fullPage: false });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
    await admin.del(`/api/v1/environments/${id}`);
  });
});
