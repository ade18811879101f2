import { describe, expect, it } from 'vitest';
import { HeadlessScreen } from '@berth/terminal';
import { isPlainText, ScreenMirror, skipToTail, tailOfChunks } from './screen-mirror.js';

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** Text-heavy output with the things that could break skipping: wraps, bare LFs, CRs, modes. */
function stream(seed: number, withEscapes: boolean): Buffer {
  const r = rng(seed);
  const parts: string[] = ['\x1b[5;3Hstart '];
  for (let i = 0; i < 6000; i++) {
    const x = r();
    if (withEscapes && x < 0.01)
      parts.push(
        [
          '\x1b[2J\x1b[H',
          '\x1b[31m',
          '\x1b[0m',
          '\x1b[3;10r',
          '\x1b[r',
          '\x1b[?1049h',
          '\x1b[?1049l',
          '\x1b[4h',
          '\x1b[4l',
          '\x1b[10;5H',
        ][Math.floor(r() * 10)]!,
      );
    else if (x < 0.03) parts.push('\n');
    else if (x < 0.05) parts.push('\rprogress ' + Math.floor(r() * 100) + '%');
    else parts.push('line ' + i + ' ' + 'abcdefghij'.repeat(Math.floor(r() * 20)) + '\r\n');
  }
  parts.push('tail without newline');
  return Buffer.from(parts.join(''));
}

async function compare(data: Buffer, seed: number, maxHold?: number): Promise<void> {
  const r = rng(seed + 1);
  const reference = new HeadlessScreen(80, 24);
  let parsedAll: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (parsedAll = resolve));
  const mirror: ScreenMirror = new ScreenMirror(
    80,
    24,
    1000,
    () => {
      if (mirror.parsedOffset === data.length) parsedAll();
    },
    maxHold,
  );
  for (let at = 0; at < data.length;) {
    const n = Math.min(data.length - at, 1 + Math.floor(r() * 70_000));
    mirror.feed(data.subarray(at, at + n));
    reference.write(data.subarray(at, at + n));
    at += n;
  }
  mirror.flush();
  await reference.flush();
  await done;
  const restored = new HeadlessScreen(80, 24);
  restored.applySnapshot(mirror.snapshot());
  await restored.flush();
  expect(restored.state()).toEqual(reference.state());
  for (const s of [reference, restored]) s.dispose();
  mirror.dispose();
}

describe('ScreenMirror', () => {
  it('skipping bulk plain text leaves the same screen and cursor as parsing all of it', async () => {
    for (const seed of [1, 2]) await compare(stream(seed, false), seed);
    // The gateway holds up to a quarter of the ring (256 KiB by default) before parsing.
    await compare(stream(3, false), 3, 256 * 1024);
  });

  it('stays exact when escapes (scroll regions, insert mode, alternate screen) are mixed in', async () => {
    for (const seed of [4, 5]) await compare(stream(seed, true), seed);
    await compare(stream(6, true), 6, 256 * 1024);
  });

  it('cuts only after a CRLF with enough line feeds after it', () => {
    const lines = Buffer.from('a\r\n'.repeat(100));
    const tail = skipToTail(lines, 49);
    expect(Buffer.from(tail!).toString()).toBe('\r\n' + 'a\r\n'.repeat(49));
    expect(skipToTail(Buffer.from('a\n'.repeat(100)), 49)).toBeUndefined();
    expect(skipToTail(Buffer.from('a\r\n'.repeat(10)), 49)).toBeUndefined();
  });

  it('cuts a batch of chunks where it would cut their concatenation', () => {
    const r = rng(7);
    for (let round = 0; round < 50; round++) {
      const data = stream(round, false).subarray(0, 2000 + Math.floor(r() * 60_000));
      const chunks: Buffer[] = [];
      for (let at = 0; at < data.length;) {
        const n = 1 + Math.floor(r() * 5000);
        chunks.push(data.subarray(at, at + n));
        at += n;
      }
      const whole = skipToTail(data, 49);
      const cut = tailOfChunks(chunks, 49);
      expect(cut === undefined ? undefined : Buffer.from(cut)).toEqual(
        whole === undefined ? undefined : Buffer.from(whole),
      );
    }
  });

  it('tells plain text (printable ASCII, CR, LF) from anything else, at every byte value and alignment', () => {
    const plain = (b: number): boolean => (b >= 0x20 && b <= 0x7e) || b === 10 || b === 13;
    const base = Buffer.from('x'.repeat(20));
    for (let b = 0; b < 256; b++) {
      for (let pos = 0; pos < 12; pos++) {
        const data = Buffer.from(base);
        data[pos] = b;
        // Views starting at every offset mod 4, of several lengths, as PTY reads and frames are.
        for (let from = 0; from < 4; from++)
          for (const to of [pos + 1, pos + 4, 20])
            expect([b, pos, from, to, isPlainText(data.subarray(from, to))]).toEqual([
              b,
              pos,
              from,
              to,
              pos < from || pos >= to || plain(b),
            ]);
      }
    }
    expect(isPlainText(Buffer.from('base64+/=\r\nline two\r\n'))).toBe(true);
    expect(isPlainText(new Uint8Array(0))).toBe(true);
  });
});
