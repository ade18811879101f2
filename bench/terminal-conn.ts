/** What every target of the terminal benchmark offers, and the waits the measurements share. */

/** No step of the benchmark may take longer: a stuck target fails its entry instead of the run. */
export const STEP_TIMEOUT_MS = 180_000;

/** A terminal session on one target: bytes in, bytes out. */
export interface Conn {
  write(data: string): void;
  onData(fn: (chunk: Buffer | string) => void): void;
  close(): void;
}

export interface Target {
  name: 'berth' | 'floor' | 'wetty';
  /** A session running `sh <script>`. */
  open(script: string): Promise<Conn>;
  close(): Promise<void>;
}

export function withTimeout<T>(p: Promise<T>, what: string, ms = STEP_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)),
    ),
  ]);
}

/** Resolves when the accumulated output contains `marker`. */
export function waitFor(conn: Conn, marker: string): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    let done = false;
    conn.onData((chunk) => {
      if (done) return;
      seen = (seen + chunk.toString()).slice(-4096);
      if (seen.includes(marker)) {
        done = true;
        resolve();
      }
    });
  });
}
