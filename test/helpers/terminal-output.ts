import type { TerminalClient } from '@berth/terminal';

/** Everything a terminal client has received, as text. */
export function collect(client: TerminalClient): { text: () => string } {
  const chunks: Buffer[] = [];
  client.onOutput((d) => chunks.push(Buffer.from(d)));
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}

/**
 * Resolves when the collected output matches `re` (checked on each output event). Rejects when the
 * client closes for good first (refused, revoked, expired, session ended): that output can no
 * longer come, so the test fails at once with what it got instead of by its timeout.
 */
export function until(client: TerminalClient, out: { text: () => string }, re: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (re.test(out.text())) {
        off();
        resolve();
      }
    };
    const off = client.onOutput(() => queueMicrotask(check));
    check();
    void client.closed.then((c) => {
      off();
      if (re.test(out.text())) resolve();
      else
        reject(
          new Error(
            `terminal closed (${c.code} ${c.reason}) before its output matched ${re}; got ${JSON.stringify(out.text().slice(-300))}`,
          ),
        );
    });
  });
}
