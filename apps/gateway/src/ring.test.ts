import { describe, expect, it } from 'vitest';
import { OutputRing } from './ring.js';

describe('OutputRing', () => {
  it('returns exactly the bytes after an offset it still holds, across wrap-around', () => {
    const ring = new OutputRing(10);
    const all: number[] = [];
    let next = 0;
    for (const size of [3, 4, 5, 1, 9, 12, 2]) {
      const chunk = Buffer.from(Array.from({ length: size }, () => next++ % 256));
      all.push(...chunk);
      ring.push(chunk);
      expect(ring.endOffset).toBe(all.length);
      expect(ring.startOffset).toBe(Math.max(0, all.length - 10));
      for (let from = ring.startOffset; from <= ring.endOffset; from++) {
        expect([...ring.slice(from)]).toEqual(all.slice(from));
      }
      expect(ring.has(ring.startOffset - 1)).toBe(false);
      expect(ring.has(ring.endOffset + 1)).toBe(false);
    }
  });
});
