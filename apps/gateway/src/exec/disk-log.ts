import { closeSync, mkdirSync, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

interface Segment {
  start: number;
  length: number;
}

/**
 * A task's output on disk, addressed by byte offset: segment files named by the offset of their
 * first byte (`<start>.seg`), appended in order. Segments wholly before what the control plane
 * has stored are deleted, so the disk holds what is not yet stored plus at most one segment.
 */
export class DiskLog {
  private readonly segments: Segment[] = [];
  private fd: number | undefined;

  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    /** Where the log ends when every segment was dropped (what the control plane stored). */
    private floor = 0,
  ) {
    mkdirSync(dir, { recursive: true });
    // A restarted gateway finds what an earlier one wrote (the page cache outlives a killed process).
    const found = readdirSync(dir)
      .filter((f) => /^\d+\.seg$/.test(f))
      .map((f) => ({ start: Number(f.slice(0, -4)), length: statSync(join(dir, f)).size }))
      .sort((a, b) => a.start - b.start);
    this.segments.push(...found);
  }

  /** One past the last byte written. */
  get end(): number {
    const last = this.segments[this.segments.length - 1];
    return last ? last.start + last.length : this.floor;
  }

  /** The first offset still on disk. */
  get start(): number {
    return this.segments[0]?.start ?? this.end;
  }

  append(data: Buffer): void {
    if (data.length === 0) return;
    let last = this.segments[this.segments.length - 1];
    if (!last || last.length >= this.segmentBytes || this.fd === undefined) {
      this.closeFd();
      last = { start: this.end, length: 0 };
      this.segments.push(last);
      this.fd = openSync(this.path(last.start), 'a', 0o600);
    }
    // Synchronous: appends stay in order with no queue, and a reader never sees a hole.
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done);
    last.length += data.length;
  }

  /** Up to `max` bytes from `offset` (which must be between start and end). */
  async read(offset: number, max: number): Promise<Buffer> {
    if (offset < this.start) throw new Error(`output before offset ${this.start} was already dropped`);
    const seg = this.segments.find((s) => offset >= s.start && offset < s.start + s.length);
    if (!seg) return Buffer.alloc(0);
    const want = Math.min(max, seg.start + seg.length - offset);
    const fh = await open(this.path(seg.start), 'r');
    try {
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, offset - seg.start);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  /**
   * Deletes segments that end at or before `offset`; the one being written only once the
   * writer is done (`all`).
   */
  dropBefore(offset: number, all = false): void {
    while (this.segments.length > (all ? 0 : 1)) {
      const first = this.segments[0]!;
      if (first.start + first.length > offset) return;
      if (this.segments.length === 1) this.closeFd();
      this.floor = first.start + first.length;
      unlinkSync(this.path(first.start));
      this.segments.shift();
    }
  }

  closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private path(start: number): string {
    return join(this.dir, `${start}.seg`);
  }
}
