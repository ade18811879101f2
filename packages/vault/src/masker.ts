import { Transform, type TransformCallback } from 'node:stream';

export interface MaskerOptions {
  /** Values shorter than this (in bytes) are not masked; default 4. */
  minLength?: number;
  replacement?: string;
}

/**
 * Values shorter than 4 bytes are skipped, like CI systems do: masking "1", "yes" or "dev"
 * would blank out ordinary output everywhere and leak, by the gaps, which short words are
 * secret. Such values must not be treated as protected by masking; `skipped` counts them so
 * the caller can warn.
 */
export const DEFAULT_MIN_MASK_LENGTH = 4;

export interface Masker {
  /**
   * Bytes in, bytes out. Holds back only a tail that is the start of some value (at most
   * longest value − 1 bytes) until the next chunk or the end shows whether it completes.
   */
  stream(): Transform;
  /** Masks a complete buffer or string in one go. */
  mask(input: Buffer | string): Buffer;
  /** How many distinct given values were too short to mask. */
  readonly skipped: number;
}

/**
 * Builds a masker for the given secret values. Each value is matched as its exact UTF-8 bytes;
 * a multi-line value is also matched line by line, because terminals rewrite line endings
 * (\n → \r\n) and a program may print one line of it. Overlaps resolve to the longest value.
 */
export function createMasker(values: Iterable<string>, opts: MaskerOptions = {}): Masker {
  const minLength = opts.minLength ?? DEFAULT_MIN_MASK_LENGTH;
  const replacement = Buffer.from(opts.replacement ?? '***');
  const candidates = new Set<string>();
  let skipped = 0;
  for (const value of new Set(values)) {
    if (Buffer.byteLength(value) < minLength) {
      skipped++;
      continue;
    }
    candidates.add(value);
    for (const line of value.split(/\r?\n/)) if (Buffer.byteLength(line) >= minLength) candidates.add(line);
  }
  // Longest first so that, at one position, the longest value wins.
  const needles = [...candidates].map((v) => Buffer.from(v)).sort((a, b) => b.length - a.length);
  const maxLen = needles[0]?.length ?? 0;
  const byFirstByte = new Map<number, Buffer[]>();
  for (const n of needles) {
    const first = n[0] as number;
    const list = byFirstByte.get(first) ?? [];
    list.push(n);
    byFirstByte.set(first, list);
  }

  /**
   * Scans `buf` and returns the masked output plus the tail to carry into the next chunk. Only a
   * tail that could still become a value is held back (unless `final`), so ordinary output, a
   * shell prompt say, is never delayed waiting for more bytes.
   */
  const scan = (buf: Buffer, final: boolean): { out: Buffer; tail: Buffer } => {
    if (maxLen === 0) return { out: buf, tail: Buffer.alloc(0) };
    const parts: Buffer[] = [];
    let emittedUpTo = 0;
    let i = 0;
    while (i < buf.length) {
      const list = byFirstByte.get(buf[i] as number);
      if (!list) {
        i++;
        continue;
      }
      const rest = buf.length - i;
      let full: Buffer | undefined;
      let pending = false;
      // Longest first: a longer value that may still complete wins over a shorter full match.
      for (const n of list) {
        if (n.length <= rest) {
          if (buf.compare(n, 0, n.length, i, i + n.length) === 0) {
            full = n;
            break;
          }
        } else if (!final && buf.compare(n, 0, rest, i, buf.length) === 0) {
          pending = true;
          break;
        }
      }
      if (pending) break;
      if (full) {
        if (i > emittedUpTo) parts.push(buf.subarray(emittedUpTo, i));
        parts.push(replacement);
        i += full.length;
        emittedUpTo = i;
      } else {
        i++;
      }
    }
    if (i > emittedUpTo) parts.push(buf.subarray(emittedUpTo, i));
    return { out: Buffer.concat(parts), tail: Buffer.from(buf.subarray(i)) };
  };

  return {
    get skipped() {
      return skipped;
    },
    mask(input) {
      return scan(typeof input === 'string' ? Buffer.from(input) : input, true).out;
    },
    stream() {
      let tail: Buffer = Buffer.alloc(0);
      return new Transform({
        transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback) {
          const buf = Buffer.concat([tail, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
          const r = scan(buf, false);
          tail = r.tail;
          cb(null, r.out.length > 0 ? r.out : undefined);
        },
        flush(cb: TransformCallback) {
          const r = scan(tail, true);
          tail = Buffer.alloc(0);
          cb(null, r.out.length > 0 ? r.out : undefined);
        },
      });
    },
  };
}
