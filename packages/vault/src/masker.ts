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
  /** Bytes in, bytes out; holds back at most (longest value − 1) bytes between chunks. */
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
   * Scans `buf`, deciding only positions where every needle fits (unless `final`), and returns
   * the output plus the undecided tail to carry into the next chunk.
   */
  const scan = (buf: Buffer, final: boolean): { out: Buffer; tail: Buffer } => {
    if (maxLen === 0) return { out: buf, tail: Buffer.alloc(0) };
    const parts: Buffer[] = [];
    const limit = final ? buf.length : buf.length - maxLen + 1;
    let emittedUpTo = 0;
    let i = 0;
    while (i < limit) {
      const list = byFirstByte.get(buf[i] as number);
      let matched: Buffer | undefined;
      if (list) {
        for (const n of list) {
          if (i + n.length <= buf.length && buf.compare(n, 0, n.length, i, i + n.length) === 0) {
            matched = n;
            break;
          }
        }
      }
      if (matched) {
        if (i > emittedUpTo) parts.push(buf.subarray(emittedUpTo, i));
        parts.push(replacement);
        i += matched.length;
        emittedUpTo = i;
      } else {
        i++;
      }
    }
    const decidedEnd = Math.max(emittedUpTo, Math.min(i, buf.length));
    if (decidedEnd > emittedUpTo) parts.push(buf.subarray(emittedUpTo, decidedEnd));
    return { out: Buffer.concat(parts), tail: Buffer.from(buf.subarray(decidedEnd)) };
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
