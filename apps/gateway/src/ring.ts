/**
 * Fixed-size byte ring holding the newest output of a session, addressed by absolute offset
 * (bytes since the session started), so a reconnecting client can be sent exactly what it missed.
 */
export class OutputRing {
  private readonly buf: Buffer;
  /** Absolute offset one past the newest byte. */
  private end = 0;

  constructor(readonly capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get endOffset(): number {
    return this.end;
  }

  get startOffset(): number {
    return Math.max(0, this.end - this.capacity);
  }

  push(data: Uint8Array): void {
    const cap = this.capacity;
    let src = data;
    if (src.byteLength >= cap) src = src.subarray(src.byteLength - cap);
    const at = (this.end + (data.byteLength - src.byteLength)) % cap;
    const first = Math.min(src.byteLength, cap - at);
    this.buf.set(src.subarray(0, first), at);
    if (first < src.byteLength) this.buf.set(src.subarray(first), 0);
    this.end += data.byteLength;
  }

  has(offset: number): boolean {
    return offset >= this.startOffset && offset <= this.end;
  }

  /** A copy of [from, end); `from` must satisfy `has`. */
  slice(from: number): Buffer {
    const len = this.end - from;
    const out = Buffer.allocUnsafe(len);
    const cap = this.capacity;
    const at = from % cap;
    const first = Math.min(len, cap - at);
    this.buf.copy(out, 0, at, at + first);
    if (first < len) this.buf.copy(out, first, 0, len - first);
    return out;
  }
}
