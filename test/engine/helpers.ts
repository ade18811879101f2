import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Resolves with the id the worker prints once it is running. */
  ready: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Spawns a TypeScript fixture as a real process (so SIGKILL is a real crash). */
export function spawnFixture(file: string, env: Record<string, string>): Child {
  const path = fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', path], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      const m = /^ready (\S+)$/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`fixture exited before ready (code ${code}, ${signal}): ${err}`)),
    );
  });
  ready.catch(() => undefined);
  return { proc, pid: proc.pid!, ready, exited, stderr: () => err };
}

/**
 * Waits until `check` holds, re-checking every `everyMs`. For conditions only observable in the
 * database (other processes' work), where there is no event to await.
 */
export async function until(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 50_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const randomBetween = (lo: number, hi: number) => lo + Math.random() * (hi - lo);
