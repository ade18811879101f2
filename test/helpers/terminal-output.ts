import type { TerminalClient } from '@berth/terminal';

/** Everything a terminal client has received, as text. */
export function collect(client: TerminalClient): { text: () => string } {
  const chunks: Buffer[] = [];
  client.onOutput((d) => chunks.push(Buffer.from(d)));
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}

/** Resolves when the collected output matches `re` (checked on each output event). */
export function until(client: TerminalClient, out: { text: () => string }, re: RegExp): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (re.test(out.text())) {
        off();
        resolve();
      }
    };
    const off = client.onOutput(() => queueMicrotask(check));
    check();
  });
}
