import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as pty from 'node-pty';
import {
  encodeExit,
  encodeOutput,
  encodeSessionInfo,
  encodeSnapshot,
  OUTPUT_HEADER_BYTES,
  type TerminalClientInfo,
  type TerminalRole,
  type TerminalSessionInfo,
} from '@berth/protocol';
import { OutputRing } from './ring.js';
import { ScreenMirror } from './screen-mirror.js';
import { PtyWriter } from './pty-writer.js';

/** A read-only link an observer came through: its id and expiry (seconds since the epoch). */
export interface ShareBinding {
  id: string;
  exp: number | undefined;
}

/** Who an attachment (and the resume token it was given) acts for. */
export interface AttachIdentity {
  sub: string;
  role: TerminalRole;
  share: ShareBinding | undefined;
}

/** One WebSocket attached to a session; the server owns the socket, the session only sends. */
export interface Attachment {
  readonly id: string;
  readonly sub: string;
  readonly role: TerminalRole;
  /** Set for a viewer who came through a read-only link: it ends when the link does. */
  readonly share: ShareBinding | undefined;
  readonly connectedAt: Date;
  readonly resumeToken: string;
  mode: 'live' | 'snapshot';
  /** Offset one past the last output byte sent, and the offset the client has acknowledged. */
  sentOffset: number;
  ackedOffset: number;
  send(frame: Uint8Array): void;
  close(code: number, reason: string): void;
}

export interface SessionOptions {
  id?: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
  ringBytes: number;
  idleTimeoutMs: number;
  /** Unacknowledged bytes per client before the PTY is paused (driver) or the client skipped (observer). */
  highWaterBytes: number;
  lowWaterBytes: number;
  onEnd: (session: Session) => void;
}

/** Forward only: running → exited (process gone, output kept for late readers) → closed. */
export type SessionState = 'running' | 'exited' | 'closed';

const KILL_GRACE_MS = 2000;
const EMPTY = new Uint8Array(0);
/** Reads up to this size go out without waiting for the rest of the loop iteration. */
const SEND_AT_ONCE_BYTES = 512;
/** Bulk output is sent in frames of about this size (well under the flow-control high-water mark). */
const BATCH_MAX_BYTES = 64 * 1024;

/** Emits `pause` (true/false) when flow control stops or restarts reading the PTY. */
export class Session extends EventEmitter<{ pause: [boolean] }> {
  readonly id: string;
  readonly createdAt = new Date();
  readonly command: string[];
  state: SessionState = 'running';
  exit: { code: number; signal: number } | undefined;
  private readonly proc: pty.IPty;
  private readonly writer: PtyWriter;
  private readonly ring: OutputRing;
  private readonly mirror: ScreenMirror;
  private readonly clients = new Set<Attachment>();
  private readonly resumeTokens = new Map<string, AttachIdentity>();
  private readonly pauseReasons = new Set<string>();
  /** Clients waiting for the mirror to reach an offset the ring still holds. */
  private readonly awaitingSnapshot = new Set<Attachment>();
  private idleTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private cols: number;
  private rows: number;
  private readonly exited: Promise<void>;

  constructor(private readonly opts: SessionOptions) {
    super();
    this.id = opts.id ?? randomUUID();
    this.command = opts.command;
    this.cols = opts.cols;
    this.rows = opts.rows;
    this.ring = new OutputRing(opts.ringBytes);
    this.mirror = new ScreenMirror(
      opts.cols,
      opts.rows,
      1000,
      () => this.onMirrorParsed(),
      Math.min(256 * 1024, Math.floor(opts.ringBytes / 4)),
    );
    const [file, ...args] = opts.command;
    this.proc = pty.spawn(file ?? '/bin/sh', args, {
      name: 'xterm-256color',
      cols: opts.cols,
      rows: opts.rows,
      cwd: opts.cwd,
      env: opts.env,
      // Raw bytes end to end: a read can split a UTF-8 sequence.
      encoding: null,
    } as pty.IPtyForkOptions);
    this.writer = new PtyWriter(this.proc);
    this.proc.onData((data) => this.onOutput(data as unknown as Buffer));
    this.exited = new Promise((resolve) => {
      this.proc.onExit(({ exitCode, signal }) => {
        this.onExit(exitCode, signal ?? 0);
        resolve();
      });
    });
    this.armIdleTimer();
  }

  get pid(): number {
    return this.proc.pid;
  }

  get outputOffset(): number {
    return this.ring.endOffset;
  }

  get paused(): boolean {
    return this.pauseReasons.size > 0;
  }

  /**
   * Resume secret for a client that authenticated with a ticket; tickets are short-lived. It keeps
   * the ticket's share, so a resumed viewer is still cut off when that link ends.
   */
  issueResumeToken(ident: AttachIdentity): string {
    const token = randomBytes(24).toString('base64url');
    this.resumeTokens.set(token, ident);
    return token;
  }

  resolveResumeToken(token: string): AttachIdentity | undefined {
    return this.resumeTokens.get(token);
  }

  /**
   * Closes the viewers who came through this link. Their resume tokens stay and still name the
   * share, so a resume is refused with the same code (the server checks the share first).
   */
  endShare(shareId: string, code: number, reason: string): number {
    let closed = 0;
    for (const c of this.clients) {
      if (c.share?.id !== shareId) continue;
      c.close(code, reason);
      closed++;
    }
    return closed;
  }

  clientInfos(): TerminalClientInfo[] {
    return [...this.clients].map((c) => ({
      id: c.id,
      sub: c.sub,
      role: c.role,
      connectedAt: c.connectedAt.toISOString(),
      mode: c.mode,
    }));
  }

  describe(): Record<string, unknown> {
    return {
      id: this.id,
      state: this.state,
      pid: this.proc.pid,
      command: this.command,
      cols: this.cols,
      rows: this.rows,
      createdAt: this.createdAt.toISOString(),
      outputOffset: this.ring.endOffset,
      exit: this.exit,
      clients: this.clientInfos(),
    };
  }

  /**
   * Sends the missing bytes when the ring still has `lastOffset`, otherwise a screen snapshot and
   * the bytes after it; then the client receives live output.
   */
  attach(client: Attachment, lastOffset: number | undefined): void {
    if (this.state === 'closed') throw new Error('session closed');
    this.clearIdleTimer();
    this.clients.add(client);
    this.broadcastInfo();
    if (lastOffset !== undefined && this.ring.has(lastOffset)) {
      this.sendFrom(client, lastOffset);
    } else {
      this.sendSnapshot(client);
    }
    if (this.exit && !this.awaitingSnapshot.has(client))
      client.send(encodeExit(this.exit.code, this.exit.signal));
    this.checkFlow(client);
  }

  detach(client: Attachment): void {
    if (!this.clients.delete(client)) return;
    this.awaitingSnapshot.delete(client);
    this.pauseReasons.delete(client.id);
    this.updatePause();
    if (this.state === 'closed') return;
    this.broadcastInfo();
    if (this.clients.size === 0) this.armIdleTimer();
  }

  input(client: Attachment, data: Uint8Array): void {
    if (client.role !== 'driver' || this.state !== 'running') return;
    this.writer.write(data);
  }

  resize(client: Attachment, cols: number, rows: number): void {
    if (client.role !== 'driver' || this.state !== 'running') return;
    if (cols < 1 || rows < 1 || (cols === this.cols && rows === this.rows)) return;
    this.cols = cols;
    this.rows = rows;
    this.proc.resize(cols, rows);
    this.mirror.resize(cols, rows);
    this.broadcastInfo();
  }

  ack(client: Attachment, offset: number): void {
    if (offset <= client.ackedOffset || offset > client.sentOffset) return;
    client.ackedOffset = offset;
    this.checkFlow(client);
  }

  /** Ends the session: kills the process (HUP, then KILL) and closes its clients. */
  async close(reason = 'session closed'): Promise<void> {
    if (this.state === 'closed') return;
    const wasRunning = this.state === 'running';
    this.state = 'closed';
    this.clearIdleTimer();
    // A paused PTY would never read the hang-up, and node-pty reports exit only after that.
    this.updatePause();
    if (wasRunning) {
      this.signal('SIGHUP');
      this.killTimer = setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
    }
    for (const c of this.clients) c.close(4410, reason);
    this.clients.clear();
    await this.exited;
    clearTimeout(this.killTimer);
    this.mirror.dispose();
    this.opts.onEnd(this);
  }

  private signal(sig: NodeJS.Signals): void {
    // The whole process group: a shell's foreground job should go too.
    try {
      process.kill(-this.proc.pid, sig);
    } catch {
      /* group already gone */
    }
    try {
      this.proc.kill(sig);
    } catch {
      /* already gone */
    }
  }

  private info(client: Attachment): TerminalSessionInfo {
    return {
      sessionId: this.id,
      clientId: client.id,
      role: client.role,
      resumeToken: client.resumeToken,
      cols: this.cols,
      rows: this.rows,
      state: this.state === 'running' ? 'running' : 'exited',
      clients: this.clientInfos(),
    };
  }

  private broadcastInfo(): void {
    for (const c of this.clients) c.send(encodeSessionInfo(this.info(c)));
  }

  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  /** Bytes read since the flush was last scheduled or put off. */
  private readSinceCheck = 0;

  /**
   * A read that finds nothing pending and is small (a keystroke's echo, a prompt) is sent at once:
   * waiting for the check phase cost ~20 µs per keystroke. Bigger reads are collected and sent in
   * the check phase (setImmediate) of a loop iteration that brought no more output, or once a
   * batch reaches BATCH_MAX_BYTES: never delayed by a timer, and a PTY that has gone quiet costs
   * output at most one more loop iteration.
   */
  private onOutput(data: Buffer): void {
    if (!this.flushScheduled && data.byteLength <= SEND_AT_ONCE_BYTES) {
      this.emitOutput([data]);
      return;
    }
    this.pending.push(data);
    this.pendingBytes += data.byteLength;
    this.readSinceCheck += data.byteLength;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushOutput(false));
  }

  private flushOutput(force: boolean): void {
    // Bulk output arrives one PTY read (2–4 KiB) per loop iteration; a frame per read cost the
    // gateway a socket write and the client a wake-up and a message each. While reads keep coming,
    // wait one more iteration: with an immediate pending the loop polls without blocking.
    if (!force && this.readSinceCheck > SEND_AT_ONCE_BYTES && this.pendingBytes < BATCH_MAX_BYTES) {
      this.readSinceCheck = 0;
      setImmediate(() => this.flushOutput(false));
      return;
    }
    this.flushScheduled = false;
    this.readSinceCheck = 0;
    const chunks = this.pending;
    if (chunks.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    this.emitOutput(chunks);
  }

  private emitOutput(chunks: Buffer[]): void {
    const offset = this.ring.endOffset;
    // The reads are copied once, straight into the frame that every client is sent; the ring
    // copies from it and the mirror keeps a view of it.
    let total = 0;
    for (const c of chunks) total += c.byteLength;
    const frame = encodeOutput(offset, EMPTY, Buffer.allocUnsafe(OUTPUT_HEADER_BYTES + total));
    let at = OUTPUT_HEADER_BYTES;
    for (const c of chunks) {
      frame.set(c, at);
      at += c.byteLength;
    }
    const data = frame.subarray(OUTPUT_HEADER_BYTES);
    const end = offset + total;
    // Clients first: the ring and the mirror are bookkeeping nobody waits for.
    for (const c of this.clients) {
      if (c.mode !== 'live') continue;
      c.send(frame);
      c.sentOffset = end;
    }
    this.ring.push(data);
    this.mirror.feed(data);
    for (const c of this.clients) if (c.mode === 'live' && c.sentOffset === end) this.checkFlow(c);
    // xterm parses slower than a PTY can write; never let it fall further behind than the ring
    // reaches, or a snapshot could not be continued with exact bytes.
    if (this.mirror.lag > this.opts.ringBytes / 2) this.pause('mirror');
  }

  private onMirrorParsed(): void {
    if (this.pauseReasons.has('mirror') && this.mirror.lag <= this.opts.ringBytes / 4) {
      this.pauseReasons.delete('mirror');
      this.updatePause();
    }
    if (this.awaitingSnapshot.size > 0 && this.ring.has(this.mirror.parsedOffset)) {
      const waiting = [...this.awaitingSnapshot];
      this.awaitingSnapshot.clear();
      for (const c of waiting) {
        if (!this.clients.has(c)) continue;
        this.sendSnapshot(c);
        if (this.exit) c.send(encodeExit(this.exit.code, this.exit.signal));
        this.checkFlow(c);
      }
    }
  }

  private sendFrom(client: Attachment, from: number): void {
    const end = this.ring.endOffset;
    if (from < end) client.send(encodeOutput(from, this.ring.slice(from)));
    client.sentOffset = end;
    client.ackedOffset = from;
  }

  /**
   * The screen at the mirror's parsed offset, then the raw bytes after it; if the ring no longer
   * reaches back that far (tiny rings), the client waits, getting nothing, until the mirror does.
   */
  private sendSnapshot(client: Attachment): void {
    this.mirror.flush();
    if (!this.ring.has(this.mirror.parsedOffset)) {
      client.mode = 'snapshot';
      this.awaitingSnapshot.add(client);
      return;
    }
    client.mode = 'live';
    const snap = this.mirror.snapshot();
    client.send(encodeSnapshot(snap.offset, snap.cols, snap.rows, snap.data));
    this.sendFrom(client, snap.offset);
  }

  private checkFlow(c: Attachment): void {
    const unacked = c.sentOffset - c.ackedOffset;
    if (c.role === 'driver') {
      if (unacked > this.opts.highWaterBytes) this.pause(c.id);
      else if (unacked <= this.opts.lowWaterBytes && this.pauseReasons.delete(c.id)) this.updatePause();
      return;
    }
    // An observer never holds the driver back: past the high-water mark it stops getting output,
    // and once it has read what it was sent it gets the current screen and continues live.
    if (c.mode === 'live' && unacked > this.opts.highWaterBytes) {
      c.mode = 'snapshot';
    } else if (c.mode === 'snapshot' && unacked <= this.opts.lowWaterBytes && !this.awaitingSnapshot.has(c)) {
      this.sendSnapshot(c);
    }
  }

  private pause(reason: string): void {
    this.pauseReasons.add(reason);
    this.updatePause();
  }

  private pausedNow = false;
  private updatePause(): void {
    const want = this.pauseReasons.size > 0 && this.state === 'running';
    if (want === this.pausedNow) return;
    this.pausedNow = want;
    if (want) this.proc.pause();
    else this.proc.resume();
    this.emit('pause', want);
  }

  private onExit(code: number, signal: number): void {
    this.flushOutput(true);
    this.exit = { code, signal };
    if (this.state === 'running') this.state = 'exited';
    clearTimeout(this.killTimer);
    const frame = encodeExit(code, signal);
    for (const c of this.clients) c.send(frame);
    this.broadcastInfo();
    if (this.clients.size === 0) this.armIdleTimer();
  }

  private armIdleTimer(): void {
    this.clearIdleTimer();
    if (this.state === 'closed') return;
    this.idleTimer = setTimeout(() => void this.close('idle timeout'), this.opts.idleTimeoutMs);
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
