import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { createMasker } from './masker.js';

async function throughStream(values: string[], chunks: Array<string | Buffer>): Promise<string> {
  const masker = createMasker(values);
  return text(
    Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))).pipe(masker.stream()),
  );
}

describe('createMasker', () => {
  it('masks a value split across chunk boundaries at every possible split point', async () => {
    const secret = 'ghp_abcdef123456';
    const input = `token=${secret}; again ${secret}!`;
    const expected = 'token=***; again ***!';
    for (let a = 1; a < input.length; a++) {
      for (const b of [a + 1, a + 3, input.length]) {
        const chunks = [input.slice(0, a), input.slice(a, b), input.slice(b)].filter((c) => c !== '');
        expect(await throughStream([secret], chunks)).toBe(expected);
      }
    }
  });

  it('masks a value delivered one byte per chunk, including multi-byte UTF-8', async () => {
    const secret = 'pässwörd-✓';
    const bytes = Buffer.from(`a${secret}b`);
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    expect(await throughStream([secret], chunks)).toBe('a***b');
  });

  it('prefers the longest value where values overlap, and masks adjacent occurrences', () => {
    const m = createMasker(['abcd', 'abcdefgh']);
    expect(m.mask('xabcdefghy abcdz abcdabcd').toString()).toBe('x***y ***z ******');
  });

  it('skips values shorter than 4 bytes and counts them', () => {
    const m = createMasker(['no', 'yes', 'long-enough', '']);
    expect(m.skipped).toBe(3);
    expect(m.mask('no yes long-enough').toString()).toBe('no yes ***');
    expect(createMasker(['ab'], { minLength: 2 }).mask('xaby').toString()).toBe('x***y');
  });

  it('masks each line of a multi-line value too (terminals rewrite line endings)', () => {
    const key = '-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----';
    const m = createMasker([key]);
    expect(m.mask(key.replace(/\n/g, '\r\n')).toString()).toBe('***\r\n***\r\n***');
    expect(m.mask(`x${key}y`).toString()).toBe('x***y');
  });

  it('passes data through untouched when there is nothing to mask', async () => {
    expect(await throughStream([], ['a', 'b'])).toBe('ab');
    expect(await throughStream(['zzzz'], ['zzz', ''])).toBe('zzz');
  });
});

describe('createMasker stream latency', () => {
  it('holds back only a tail that could still become a value', async () => {
    const stream = createMasker(['s3cr3t-value']).stream();
    const out: string[] = [];
    stream.on('data', (b: Buffer) => out.push(b.toString()));
    const written = (chunk: string): Promise<void> =>
      new Promise((resolve) => stream.write(chunk, () => resolve()));
    await written('Password: ');
    expect(out.join('')).toBe('Password: ');
    await written('ok s3cr');
    expect(out.join('')).toBe('Password: ok ');
    await written('3t-value done');
    expect(out.join('')).toBe('Password: ok *** done');
    stream.end();
  });
});
