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

/**
 * Resolves when the output contains `marker` (ASCII), also split across chunks. Chunks are
 * searched as they are, without decoding them: the bench's client should do no more per byte than
 * a real one (every target's output passes here during the throughput runs).
 */
export function waitFor(conn: Conn, marker: string): Promise<void> {
  const keep = marker.length - 1;
  const edge = (chunk: Buffer | string, from: number, to: number): string =>
    typeof chunk === 'string' ? chunk.slice(from, to) : chunk.subarray(from, to).toString('latin1');
  return new Promise((resolve) => {
    // The last `keep` characters seen: with the start of the next chunk, they hold any split marker.
    let carry = '';
    let done = false;
    conn.onData((chunk) => {
      if (done) return;
      const len = chunk.length;
      if (chunk.includes(marker) || (carry + edge(chunk, 0, keep)).includes(marker)) {
        done = true;
        resolve();
        return;
      }
      carry = (carry + edge(chunk, Math.max(0, len - keep), len)).slice(-keep);
    });
  });
}
