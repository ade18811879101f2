import { describe, expect, it } from 'vitest';
import { EscapeScanner } from './attach.js';

const feed = (s: EscapeScanner, text: string) => {
  const r = s.feed(Buffer.from(text));
  return { data: r.data.toString(), detach: r.detach };
};

describe('EscapeScanner (~. detaches at the start of a line)', () => {
  it('sends what was typed before ~. in the same chunk, then detaches', () => {
    expect(feed(new EscapeScanner(), 'ls -l\r~.')).toEqual({ data: 'ls -l\r', detach: true });
  });

  it('counts ~. only at line start: after \\r or \\n, or at the very start', () => {
    expect(feed(new EscapeScanner(), '~.').detach).toBe(true);
    expect(feed(new EscapeScanner(), 'a~.')).toEqual({ data: 'a~.', detach: false });
    expect(feed(new EscapeScanner(), 'x\n~.')).toEqual({ data: 'x\n', detach: true });
  });

  it('a line start right after an escaped tilde line (~x then \\n) still counts', () => {
    const s = new EscapeScanner();
    expect(feed(s, '~x\n')).toEqual({ data: '~x\n', detach: false });
    expect(feed(s, '~.').detach).toBe(true);
  });

  it('~~ sends one tilde; the escape may span chunks', () => {
    const s = new EscapeScanner();
    expect(feed(s, '~~')).toEqual({ data: '~', detach: false });
    expect(feed(s, '\r~')).toEqual({ data: '\r', detach: false });
    expect(feed(s, '.').detach).toBe(true);
  });
});
