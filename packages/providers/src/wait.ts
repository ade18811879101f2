import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Resolves with the first JSON line of `file` that `match` accepts; fs.watch drives it, no polling. */
export function waitForJsonLine<T>(
  file: string,
  match: (line: Record<string, unknown>) => T | undefined,
  opts: { timeoutMs: number; exited?: Promise<string> },
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      watcher.close();
      clearTimeout(timer);
      fn();
    };
    const check = async (): Promise<void> => {
      const text = await readFile(file, 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const hit = match(JSON.parse(line) as Record<string, unknown>);
          if (hit !== undefined) return finish(() => resolve(hit));
        } catch {
          // a half-written line; the next change event rereads it
        }
      }
    };
    const watcher = watch(file, () => void check());
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no ready line in ${file} after ${opts.timeoutMs} ms`))),
      opts.timeoutMs,
    );
    opts.exited?.then(
      (why) => void check().then(() => finish(() => reject(new Error(why)))),
      () => undefined,
    );
    void check();
  });
}

/** For the few things with no event to wait on (a process we did not start exiting): poll with a deadline. */
export async function pollUntil(
  test: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await test()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export async function healthz(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false;
  }
}
