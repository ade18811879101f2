import {
  decodeFrame,
  encodeAck,
  encodeInput,
  encodePing,
  encodeResize,
  isFinalCloseCode,
  TerminalOp,
  type TerminalSessionInfo,
} from '@berth/protocol';
import { browserSocketFactory, frameBytes, type SocketFactory, type TerminalSocket } from './socket.js';

export interface TerminalConnectOptions {
  /** Gateway terminal URL from the ticket (`ws(s)://host:port/terminal`). */
  url: string;
  /** The ticket; used for the first connection only (reconnects use the session's resume token). */
  token: string;
  /** Join this session; without it a driver starts a new one. */
  sessionId?: string;
  /** Output offset already on screen: the gateway sends only what is missing. */
  lastOffset?: number;
  /** Size (and command) for a new session. */
  cols?: number;
  rows?: number;
  command?: string[];
  socketFactory?: SocketFactory;
  /** Default true: reconnect to the same session after a dropped connection. */
  reconnect?: boolean;
  /** Fresh ticket when the resume token is refused (e.g. the gateway restarted). */
  refreshToken?: () => Promise<string>;
  /** Acknowledge received output every this many bytes (flow control). Default 64 KiB. */
  ackBytes?: number;
  /** When true, output is only acknowledged by `ack()` (e.g. after a renderer drew it). */
  manualAck?: boolean;
}

export interface TerminalSnapshot {
  offset: number;
  cols: number;
  rows: number;
  /** Serialized screen: reset the terminal, size it to cols×rows, then write this. */
  data: string;
}

export type TerminalStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

type Listener<A extends unknown[]> = (...args: A) => void;

class Listeners<A extends unknown[]> {
  private readonly fns = new Set<Listener<A>>();
  add(fn: Listener<A>): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }
  emit(...args: A): void {
    for (const fn of this.fns) fn(...args);
  }
}

const MAX_PENDING_INPUT = 1024 * 1024;

/**
 * One terminal session seen from a browser or the CLI. It survives dropped connections: it
 * reconnects with its session id, resume token and the offset it has, and the gateway fills in
 * exactly the missing bytes or a screen snapshot.
 */
export class TerminalClient {
  private socket: TerminalSocket | undefined;
  private readonly factory: SocketFactory;
  private readonly ackBytes: number;
  private received = 0;
  private acked = 0;
  private session: TerminalSessionInfo | undefined;
  private attached = false;
  private pendingInput: Uint8Array[] = [];
  private pendingBytes = 0;
  private size: { cols: number; rows: number } | undefined;
  private finished = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private token: string | undefined;
  private readonly outputL = new Listeners<[Uint8Array, number]>();
  private readonly snapshotL = new Listeners<[TerminalSnapshot]>();
  private readonly exitL = new Listeners<[{ code: number; signal: number }]>();
  private readonly infoL = new Listeners<[TerminalSessionInfo]>();
  private readonly statusL = new Listeners<[TerminalStatus, { code: number; reason: string } | undefined]>();
  private readonly pongL = new Listeners<[Uint8Array]>();
  private resolveClosed!: (v: { code: number; reason: string }) => void;
  /** Settles once the client is closed for good (by `close()`, exit, or a final refusal). */
  readonly closed = new Promise<{ code: number; reason: string }>(
    (resolve) => (this.resolveClosed = resolve),
  );

  constructor(private readonly opts: TerminalConnectOptions) {
    this.factory = opts.socketFactory ?? browserSocketFactory;
    this.ackBytes = opts.ackBytes ?? 64 * 1024;
    this.received = opts.lastOffset ?? 0;
    this.acked = this.received;
    this.token = opts.token;
    if (opts.cols && opts.rows) this.size = { cols: opts.cols, rows: opts.rows };
    // Next microtask, so listeners added right after construction see `connecting`.
    queueMicrotask(() => {
      if (!this.finished) this.open();
    });
  }

  get offset(): number {
    return this.received;
  }
  get sessionId(): string | undefined {
    return this.session?.sessionId ?? this.opts.sessionId;
  }
  get info(): TerminalSessionInfo | undefined {
    return this.session;
  }

  onOutput(fn: (data: Uint8Array, offset: number) => void): () => void {
    return this.outputL.add(fn);
  }
  onSnapshot(fn: (snapshot: TerminalSnapshot) => void): () => void {
    return this.snapshotL.add(fn);
  }
  onExit(fn: (exit: { code: number; signal: number }) => void): () => void {
    return this.exitL.add(fn);
  }
  onSession(fn: (info: TerminalSessionInfo) => void): () => void {
    return this.infoL.add(fn);
  }
  onStatus(fn: (status: TerminalStatus, close?: { code: number; reason: string }) => void): () => void {
    return this.statusL.add(fn);
  }
  onPong(fn: (payload: Uint8Array) => void): () => void {
    return this.pongL.add(fn);
  }

  /** Resolves with the session info of the first successful attach. */
  ready(): Promise<TerminalSessionInfo> {
    if (this.session) return Promise.resolve(this.session);
    return new Promise((resolve, reject) => {
      const off = this.infoL.add((info) => {
        off();
        resolve(info);
      });
      void this.closed.then((c) => reject(new Error(`terminal closed: ${c.code} ${c.reason}`)));
    });
  }

  /** The socket, while attached and open (a closing one would silently drop frames). */
  private live(): TerminalSocket | undefined {
    return this.attached && this.socket?.readyState === 1 ? this.socket : undefined;
  }

  write(data: string | Uint8Array): void {
    const frame = encodeInput(data);
    const socket = this.live();
    if (socket) return socket.send(frame);
    // Typed while reconnecting: delivered after the reattach, in order, within a bound.
    if (this.pendingBytes + frame.byteLength > MAX_PENDING_INPUT) return;
    this.pendingInput.push(frame);
    this.pendingBytes += frame.byteLength;
  }

  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    this.live()?.send(encodeResize(cols, rows));
  }

  ping(payload?: Uint8Array): void {
    this.live()?.send(encodePing(payload));
  }

  /** With `manualAck`: the consumer has processed output up to `offset`. */
  ack(offset: number): void {
    if (offset <= this.acked) return;
    this.acked = offset;
    this.live()?.send(encodeAck(offset));
  }

  /** Drops the connection as a network failure would; the client reconnects. */
  dropConnection(): void {
    this.attached = false;
    this.socket?.close(4000, 'dropped by client');
  }

  close(): void {
    this.finish(1000, 'closed by client');
  }

  private finish(code: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    this.attached = false;
    const s = this.socket;
    this.socket = undefined;
    if (s && s.readyState <= 1) s.close(1000, reason);
    this.statusL.emit('closed', { code, reason });
    this.resolveClosed({ code, reason });
  }

  private buildUrl(): string {
    const u = new URL(this.opts.url);
    const sid = this.sessionId;
    if (this.session && !this.token) {
      u.searchParams.set('resume', this.session.resumeToken);
    } else if (this.token) {
      u.searchParams.set('token', this.token);
    }
    if (sid) u.searchParams.set('sid', sid);
    if (this.session || this.opts.lastOffset !== undefined)
      u.searchParams.set('offset', String(this.received));
    if (this.size) {
      u.searchParams.set('cols', String(this.size.cols));
      u.searchParams.set('rows', String(this.size.rows));
    }
    if (this.opts.command && !sid) u.searchParams.set('cmd', JSON.stringify(this.opts.command));
    return u.toString();
  }

  private open(): void {
    this.statusL.emit(this.attempt === 0 ? 'connecting' : 'reconnecting', undefined);
    const url = this.buildUrl();
    // A ticket is for one attach; later connections resume.
    this.token = undefined;
    const socket = this.factory(url);
    this.socket = socket;
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      const bytes = frameBytes(ev.data);
      if (bytes) this.onFrame(bytes);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.attached = false;
      this.onSocketClosed(ev.code, ev.reason);
    };
    socket.onerror = () => {
      /* followed by close */
    };
  }

  private onSocketClosed(code: number, reason: string): void {
    if (this.finished) return;
    const refusedResume = code === 4401 && this.session !== undefined;
    if (refusedResume && this.opts.refreshToken) {
      this.opts.refreshToken().then(
        (token) => {
          this.token = token;
          this.scheduleReconnect();
        },
        (err: unknown) => this.finish(code, `${reason}; refreshing the ticket failed: ${String(err)}`),
      );
      return;
    }
    if (isFinalCloseCode(code) || this.opts.reconnect === false || this.session === undefined) {
      return this.finish(code, reason);
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    // First retry at once (a blip), then back off to 5 s.
    const delay =
      this.attempt === 0 ? 0 : Math.min(5000, 100 * 2 ** (this.attempt - 1)) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private onFrame(bytes: Uint8Array): void {
    const frame = decodeFrame(bytes);
    switch (frame.op) {
      case TerminalOp.Output: {
        const end = frame.offset + frame.data.byteLength;
        if (end <= this.received) return;
        const data =
          frame.offset < this.received ? frame.data.subarray(this.received - frame.offset) : frame.data;
        const at = Math.max(frame.offset, this.received);
        this.received = end;
        this.outputL.emit(data, at);
        if (!this.opts.manualAck && this.received - this.acked >= this.ackBytes) this.ack(this.received);
        return;
      }
      case TerminalOp.Snapshot:
        this.received = frame.offset;
        if (this.acked > frame.offset) this.acked = frame.offset;
        this.snapshotL.emit({ offset: frame.offset, cols: frame.cols, rows: frame.rows, data: frame.data });
        return;
      case TerminalOp.SessionInfo:
        this.onSessionInfo(frame.info);
        return;
      case TerminalOp.Exit:
        this.exitL.emit({ code: frame.code, signal: frame.signal });
        this.finish(4410, 'session ended');
        return;
      case TerminalOp.Pong:
        this.pongL.emit(frame.payload);
        return;
      default:
        return;
    }
  }

  private onSessionInfo(info: TerminalSessionInfo): void {
    const first = !this.attached;
    this.session = info;
    if (first) {
      this.attached = true;
      this.attempt = 0;
      this.statusL.emit('open', undefined);
      const socket = this.socket;
      if (socket) {
        // The gateway counts acks from the offset we asked for.
        if (this.received > this.acked) this.acked = this.received;
        if (
          this.size &&
          info.role === 'driver' &&
          (this.size.cols !== info.cols || this.size.rows !== info.rows)
        ) {
          socket.send(encodeResize(this.size.cols, this.size.rows));
        }
        for (const frame of this.pendingInput) socket.send(frame);
        this.pendingInput = [];
        this.pendingBytes = 0;
      }
    }
    this.infoL.emit(info);
  }
}

export function connectTerminal(opts: TerminalConnectOptions): TerminalClient {
  return new TerminalClient(opts);
}
