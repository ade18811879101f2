// Terminal pages in the browser: the pane the page exposes, lines on screen, and the WebSockets
// to the gateway (recorded so a test can drop one as a network failure would).
import type { Page } from 'playwright-core';

/** What page-side callbacks touch: the terminal the page exposes, and the sockets recorded below. */
export interface TermWindow {
  __berthTerminal?: { text(): string };
  __terminalSockets: Array<{ readyState: number; close(): void }>;
}

/**
 * Runs in the page before its scripts: remembers every WebSocket to a gateway terminal, so a test
 * can drop one as a network failure would (the page's own code never sees this).
 */
export function recordTerminalSockets() {
  const w = globalThis as unknown as {
    WebSocket: new (url: string, p?: string | string[]) => { readyState: number; close(): void };
  } & TermWindow;
  const Native = w.WebSocket;
  w.__terminalSockets = [];
  w.WebSocket = class extends (Native as unknown as new (url: string, p?: string | string[]) => object) {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      if (String(url).includes('/terminal'))
        w.__terminalSockets.push(this as unknown as { readyState: number; close(): void });
    }
  } as unknown as typeof w.WebSocket;
}

/** Waits until the visible terminal shows a line that, trimmed, equals `line`, `times` times over. */
export async function seeLine(page: Page, line: string, times = 1): Promise<void> {
  await page.waitForFunction(
    ([want, n]) => {
      const t = (globalThis as unknown as TermWindow).__berthTerminal;
      return (
        !!t &&
        t
          .text()
          .split('\n')
          .filter((l) => l.trim() === want).length >= (n as number)
      );
    },
    [line, times] as const,
  );
}

export const termText = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as TermWindow).__berthTerminal?.text() ?? '');

export async function openTerminal(page: Page): Promise<void> {
  await page.locator('[data-testid="term-status"][data-status="open"]').waitFor();
  await page.locator('[data-testid="terminal"]:visible').click();
}
