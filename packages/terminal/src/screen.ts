import xtermHeadless from '@xterm/headless';
import type { TerminalClient, TerminalSnapshot } from './client.js';

/**
 * A client-side screen on @xterm/headless: what a user would see. Used by tests to compare a
 * reconnected client with one that never disconnected, and usable by tools that need the screen.
 */
export class HeadlessScreen {
  readonly term: InstanceType<typeof xtermHeadless.Terminal>;

  constructor(cols = 80, rows = 24) {
    this.term = new xtermHeadless.Terminal({ cols, rows, scrollback: 1000, allowProposedApi: true });
  }

  /** Mirror a client: output is written, a snapshot replaces the screen. */
  follow(client: TerminalClient): () => void {
    const offs = [
      client.onOutput((data) => this.write(data)),
      client.onSnapshot((s) => this.applySnapshot(s)),
    ];
    return () => offs.forEach((off) => off());
  }

  write(data: Uint8Array | string): void {
    this.term.write(data);
  }

  /**
   * xterm parses asynchronously, so `reset()` would overtake output still queued: the reset goes
   * in-stream (RIS) and the resize runs in its parse callback, before the snapshot is parsed.
   */
  applySnapshot(s: TerminalSnapshot): void {
    this.term.write('\x1bc', () => {
      if (s.cols !== this.term.cols || s.rows !== this.term.rows) this.term.resize(s.cols, s.rows);
    });
    this.term.write(s.data);
  }

  /** Resolves when everything written so far is parsed. */
  flush(): Promise<void> {
    return new Promise((resolve) => this.term.write('', resolve));
  }

  /** Visible rows of the active buffer, right-trimmed. */
  lines(): string[] {
    const buf = this.term.buffer.active;
    const out: string[] = [];
    for (let y = 0; y < this.term.rows; y++)
      out.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? '');
    return out;
  }

  text(): string {
    return this.lines().join('\n');
  }

  /** Screen, cursor and which buffer is active: what must match after a reconnect. */
  state(): { buffer: string; cursor: [number, number]; lines: string[] } {
    const buf = this.term.buffer.active;
    return { buffer: buf.type, cursor: [buf.cursorX, buf.cursorY], lines: this.lines() };
  }

  dispose(): void {
    this.term.dispose();
  }
}
