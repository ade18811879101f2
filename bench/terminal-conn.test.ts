import { describe, expect, it } from 'vitest';
import { waitFor, type Conn } from './terminal-conn.js';

/** Feeds `chunks` to a fresh waitFor and tells whether it resolved. */
async function sees(chunks: Array<string | Buffer>, marker: string): Promise<boolean> {
  let listener: ((chunk: Buffer | string) => void) | undefined;
  const conn: Conn = { write: () => undefined, close: () => undefined, onData: (fn) => void (listener = fn) };
  let seen = false;
  void waitFor(conn, marker).then(() => (seen = true));
  for (const chunk of chunks) listener?.(chunk);
  // Every continuation of a promise resolved above has run before the next loop iteration.
  await new Promise((resolve) => setImmediate(resolve));
  return seen;
}

describe('waitFor', () => {
  it('finds the marker inside a chunk, split across chunks (Buffers or strings), and not where it is not', async () => {
    expect(await sees(['xxREADYxx'], 'READY')).toBe(true);
    expect(await sees(['xxRE', 'ADY'], 'READY')).toBe(true);
    expect(await sees(['R', 'E', 'A', 'D', 'Y'], 'READY')).toBe(true);
    expect(await sees([Buffer.from('aaa__E'), Buffer.from('ND__')], '__END__')).toBe(true);
    expect(await sees([Buffer.from('x'.repeat(100_000) + '__END__')], '__END__')).toBe(true);
    expect(await sees([Buffer.from('__END_'), Buffer.from('x__')], '__END__')).toBe(false);
    expect(await sees(['RE', 'x', 'ADY'], 'READY')).toBe(false);
    expect(await sees(['READ'], 'READY')).toBe(false);
  });
});
