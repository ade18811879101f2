import { writeSync } from 'node:fs';
import type { IPty } from 'node-pty';

interface PtyInternals {
  _fd?: number;
  _writeStream?: { _writeQueue?: unknown[] };
}

/**
 * Keystrokes go straight to the PTY master with a synchronous write: node-pty's own `write()`
 * hops through libuv's thread pool, which measured 60–80 µs per keystroke here. Only when the
 * kernel buffer is full (EAGAIN, a big paste) do we hand the rest to node-pty's queue, and keep
 * using it until it drains so bytes never overtake each other.
 */
export class PtyWriter {
  private readonly internals: PtyInternals;

  constructor(private readonly pty: IPty) {
    this.internals = pty as unknown as PtyInternals;
  }

  private queued(): boolean {
    return (this.internals._writeStream?._writeQueue?.length ?? 0) > 0;
  }

  write(data: Uint8Array): void {
    let rest = data;
    const fd = this.internals._fd;
    if (fd !== undefined && !this.queued()) {
      try {
        const n = writeSync(fd, rest);
        if (n === rest.byteLength) return;
        rest = rest.subarray(n);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // EIO/EBADF: the process is gone; its exit is reported separately.
        if (code !== 'EAGAIN') return;
      }
    }
    this.pty.write(Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength));
  }
}
