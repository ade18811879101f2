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
  /** Whether the terminal, after everything queued so far, is known to be in a `plainState`. */
  private plain = true;
  /** Queued writes that may change modes (escape sequences, resizes); `plain` is unknown until they ran. */
  private stateChanges = 0;
  private inFlight = 0;
  /** Plain text waiting for xterm to finish the previous write, and the offset it ends at. */
  private held: Uint8Array[] = [];
  private heldUpTo = 0;

  private heldBytes = 0;
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    cols: number,
    rows: number,
    scrollback: number,
    /** Called after each parsed chunk, so the session can resume a PTY it paused for us. */
    private readonly onParsed: () => void,
    /** Plain text is held up to this many bytes before xterm sees it (keep well under the ring). */
    private readonly maxHold = 64 * 1024,
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
    if (isPlainText(data)) {
      // Plain text is held and goes to xterm in batches, so that skipping sees many lines at
      // once (a PTY read is often 4 KiB). Nobody waits for the mirror: a snapshot taken meanwhile
      // is of the parsed offset and the client gets the raw bytes after it from the ring.
      this.held.push(data);
      this.heldBytes += data.byteLength;
      this.heldUpTo = this.fed;
      if (this.heldBytes >= this.maxHold) {
        if (this.inFlight === 0) this.writeHeld();
      } else {
        this.holdTimer ??= setTimeout(() => {
          this.holdTimer = undefined;
          if (this.inFlight === 0) this.writeHeld();
        }, 20);
      }
      return;
    }
    this.writeHeld();
    this.submit(data, this.fed, () => undefined);
  }

  /** Hands held text to xterm now (a snapshot is wanted). */
  flush(): void {
    this.writeHeld();
  }

  /** Applied in stream order, after the bytes already fed. */
  resize(cols: number, rows: number): void {
    this.writeHeld();
    this.submit(new Uint8Array(0), this.fed, () => this.term.resize(cols, rows));
  }

  private writeHeld(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    // Bulk plain text (logs, base64, cat): only its last screenfuls decide what the screen shows,
    // so the rest is not parsed (xterm parses ~15 MB/s, well below what a PTY delivers), nor even
    // copied: only the chunks holding the tail are joined.
    const skip = this.stateChanges === 0 && this.plain;
    this.submit((skip ? tailOfChunks(held, 2 * this.term.rows + 1) : undefined) ?? join(held), this.heldUpTo);
  }

  /** `changeState` marks writes after which the mode state must be looked at again. */
  private submit(data: Uint8Array, upTo: number, changeState?: () => void): void {
    this.inFlight++;
    if (changeState) this.stateChanges++;
    this.term.write(data, () => {
      this.inFlight--;
      this.parsed = upTo;
      if (this.disposed) return;
      if (changeState) {
        this.stateChanges--;
        changeState();
        this.plain = this.plainState();
      }
      if (this.inFlight === 0 && (this.heldBytes >= this.maxHold || this.holdTimer === undefined))
        this.writeHeld();
      this.onParsed();
    });
  }

  /**
   * Whole-screen scroll region and no insert mode: then printable text and CR/LF can only write
   * rows and scroll, and rows scrolled in fresh look the same however much text preceded them.
   */
  private plainState(): boolean {
    const buffer = (
      this.term as unknown as {
        _core?: { _bufferService?: { buffer?: { scrollTop: number; scrollBottom: number } } };
      }
    )._core?._bufferService?.buffer;
    if (!buffer) return false;
    return (
      buffer.scrollTop === 0 && buffer.scrollBottom === this.term.rows - 1 && !this.term.modes.insertMode
    );
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
    clearTimeout(this.holdTimer);
    this.held = [];
    this.term.dispose();
  }
}

const EMPTY_WORDS = new Uint32Array(0);
const plainByte = (b: number): boolean => (b >= 0x20 && b <= 0x7e) || b === 10 || b === 13;

/**
 * Printable ASCII, CR and LF only: such bytes change no terminal mode. Every output byte passes
 * through here, so it looks at four at a time: a word is looked at byte by byte only when one of
 * its bytes is below 0x20 (the subtraction borrows into that byte's top bit), is 0x7f (the
 * addition carries into it) or has its top bit set; in text that is the words holding CR or LF.
 */
export function isPlainText(data: Uint8Array): boolean {
  const len = data.length;
  let i = 0;
  const head = Math.min(len, (4 - (data.byteOffset & 3)) & 3);
  for (; i < head; i++) if (!plainByte(data[i]!)) return false;
  const words = i < len ? (len - i) >>> 2 : 0;
  const w32 = words > 0 ? new Uint32Array(data.buffer, data.byteOffset + i, words) : EMPTY_WORDS;
  for (let k = 0; k < words; k++) {
    const w = w32[k]!;
    if (((w - 0x20202020) | (w + 0x01010101) | w) & 0x80808080) {
      const at = i + k * 4;
      if (
        !plainByte(data[at]!) ||
        !plainByte(data[at + 1]!) ||
        !plainByte(data[at + 2]!) ||
        !plainByte(data[at + 3]!)
      )
        return false;
    }
  }
  for (i += words * 4; i < len; i++) if (!plainByte(data[i]!)) return false;
  return true;
}

function join(chunks: Uint8Array[]): Uint8Array {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * `skipToTail` over the concatenation of `chunks`, joining only the last chunks that hold enough
 * line feeds (a 256 KiB batch of 4 KiB reads needs one or two of them).
 */
export function tailOfChunks(chunks: Uint8Array[], lines: number): Uint8Array | undefined {
  let seen = 0;
  let from = chunks.length;
  while (from > 0 && seen <= lines) {
    const c = chunks[--from]!;
    for (let i = 0; i < c.length; i++) if (c[i] === 10) seen++;
  }
  // The cut must also find a CRLF before those lines and skip something; else look at them all.
  const tail = from > 0 ? skipToTail(join(chunks.slice(from)), lines) : undefined;
  return tail ?? skipToTail(join(chunks), lines);
}

/**
 * `\r\n` + the tail of `data` that starts after a CRLF and holds at least `lines` line feeds, or
 * undefined when there is no such cut. From any cursor row, `lines` ≥ 2×rows line feeds reach the
 * bottom and then scroll in every visible row fresh, so the screen (and cursor) end up as if all
 * of `data` had been written; only scrollback loses the skipped lines.
 */
export function skipToTail(data: Uint8Array, lines: number): Uint8Array | undefined {
  let seen = 0;
  let i = data.length - 1;
  for (; i >= 0 && seen < lines; i--) if (data[i] === 10) seen++;
  if (seen < lines) return undefined;
  for (; i >= 1; i--) {
    if (data[i] === 10 && data[i - 1] === 13) {
      if (i < 64) return undefined;
      const out = new Uint8Array(2 + data.length - (i + 1));
      out[0] = 13;
      out[1] = 10;
      out.set(data.subarray(i + 1), 2);
      return out;
    }
  }
  return undefined;
}
