import xtermHeadless from '@xterm/headless';
import serializeAddon from '@xterm/addon-serialize';

export interface ScreenSnapshot {
  /** Output offset the screen corresponds to: the client continues from here. */
  offset: number;
  cols: number;
  rows: number;
  data: string;
}

/**
 * A headless xterm fed every output byte, so a client whose missing bytes have left the ring can
 * be sent the screen instead (raw replay of a partial stream garbles full-screen programs).
 * xterm parses asynchronously; `parsedOffset` is where its state is exact.
 */
export class ScreenMirror {
  private readonly term: InstanceType<typeof xtermHeadless.Terminal>;
  private readonly serializer: InstanceType<typeof serializeAddon.SerializeAddon>;
  private fed = 0;
  private parsed = 0;
  private disposed = false;

  constructor(
    cols: number,
    rows: number,
    scrollback: number,
    /** Called after each parsed chunk, so the session can resume a PTY it paused for us. */
    private readonly onParsed: () => void,
  ) {
    this.term = new xtermHeadless.Terminal({ cols, rows, scrollback, allowProposedApi: true });
    this.serializer = new serializeAddon.SerializeAddon();
    this.term.loadAddon(this.serializer);
  }

  get parsedOffset(): number {
    return this.parsed;
  }

  /** Bytes handed to xterm and not parsed yet. */
  get lag(): number {
    return this.fed - this.parsed;
  }

  feed(data: Uint8Array): void {
    this.fed += data.byteLength;
    const upTo = this.fed;
    this.term.write(data, () => {
      this.parsed = upTo;
      if (!this.disposed) this.onParsed();
    });
  }

  /** Applied in stream order, after the bytes already fed. */
  resize(cols: number, rows: number): void {
    this.term.write('', () => {
      if (!this.disposed) this.term.resize(cols, rows);
    });
  }

  snapshot(): ScreenSnapshot {
    return {
      offset: this.parsed,
      cols: this.term.cols,
      rows: this.term.rows,
      data: this.serializer.serialize({ scrollback: 1000 }),
    };
  }

  dispose(): void {
    this.disposed = true;
    this.term.dispose();
  }
}
