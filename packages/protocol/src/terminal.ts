/**
 * Terminal frames between a client (browser, CLI) and the environment gateway. Every frame is one
 * binary WebSocket message; the first byte is the opcode. Offsets count output bytes since the
 * session started and are sent as two big-endian u32 (high, low) so they stay exact past 4 GiB.
 *
 * The connection itself: `GET <url>?token=<ticket>[&sid=<session>][&offset=<n>][&cols=&rows=]`
 * (or `resume=<resumeToken>` instead of `token` when reconnecting). Refusals close the socket with
 * one of `TerminalCloseCode` before any frame is sent.
 */
export const TerminalOp = {
  /** client → gateway: bytes for the PTY (dropped for observers). */
  Input: 0x01,
  /** client → gateway: u16 cols, u16 rows (applied for drivers only). */
  Resize: 0x02,
  /** client → gateway: u64 offset the client has consumed up to (flow control). */
  Ack: 0x03,
  /** client → gateway: opaque payload, answered by Pong with the same payload. */
  Ping: 0x04,
  /** gateway → client: u64 offset of the first byte, then raw PTY output. */
  Output: 0x81,
  /** gateway → client: u64 offset, u16 cols, u16 rows, then a serialized screen (UTF-8). */
  Snapshot: 0x82,
  /** gateway → client: i32 exit code, i32 signal (0 when none). */
  Exit: 0x83,
  /** gateway → client: the Ping payload. */
  Pong: 0x84,
  /** gateway → client: JSON `TerminalSessionInfo`. */
  SessionInfo: 0x85,
} as const;
export type TerminalOp = (typeof TerminalOp)[keyof typeof TerminalOp];

/** WebSocket close codes the gateway uses; 4xxx ones are final (a client must not retry). */
export const TerminalCloseCode = {
  Unauthorized: 4401,
  Forbidden: 4403,
  SessionNotFound: 4404,
  /** Operator turned interactive attach off (`terminal.interactive: false`). */
  Disabled: 4423,
  SessionEnded: 4410,
  /** The read-only link this viewer came through was revoked by its owner. */
  ShareRevoked: 4430,
  /** The read-only link this viewer came through expired. */
  ShareExpired: 4440,
  /** Gateway shutting down; a client may retry later. */
  GoingAway: 1001,
} as const;

export function isFinalCloseCode(code: number): boolean {
  return code >= 4400 && code < 4500;
}

export type TerminalRole = 'driver' | 'observer';

export interface TerminalClientInfo {
  id: string;
  sub: string;
  role: TerminalRole;
  connectedAt: string;
  /** `live`, or `snapshot` while a slow observer is skipped until it catches up. */
  mode: 'live' | 'snapshot';
}

export interface TerminalSessionInfo {
  sessionId: string;
  /** This connection's id and role. */
  clientId: string;
  role: TerminalRole;
  /** Reconnect with `resume=<resumeToken>` instead of a (short-lived) ticket. */
  resumeToken: string;
  cols: number;
  rows: number;
  state: 'running' | 'exited';
  clients: TerminalClientInfo[];
}

export type TerminalFrame =
  | { op: typeof TerminalOp.Input; data: Uint8Array }
  | { op: typeof TerminalOp.Resize; cols: number; rows: number }
  | { op: typeof TerminalOp.Ack; offset: number }
  | { op: typeof TerminalOp.Ping; payload: Uint8Array }
  | { op: typeof TerminalOp.Output; offset: number; data: Uint8Array }
  | { op: typeof TerminalOp.Snapshot; offset: number; cols: number; rows: number; data: string }
  | { op: typeof TerminalOp.Exit; code: number; signal: number }
  | { op: typeof TerminalOp.Pong; payload: Uint8Array }
  | { op: typeof TerminalOp.SessionInfo; info: TerminalSessionInfo };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TWO_32 = 2 ** 32;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function putOffset(dv: DataView, at: number, offset: number): void {
  dv.setUint32(at, Math.floor(offset / TWO_32));
  dv.setUint32(at + 4, offset >>> 0);
}

function getOffset(dv: DataView, at: number): number {
  return dv.getUint32(at) * TWO_32 + dv.getUint32(at + 4);
}

/** Bytes before the payload of an Output frame. */
export const OUTPUT_HEADER_BYTES = 9;

export function encodeInput(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data;
  const out = new Uint8Array(1 + bytes.byteLength);
  out[0] = TerminalOp.Input;
  out.set(bytes, 1);
  return out;
}

export function encodeResize(cols: number, rows: number): Uint8Array {
  const out = new Uint8Array(5);
  const dv = view(out);
  out[0] = TerminalOp.Resize;
  dv.setUint16(1, cols);
  dv.setUint16(3, rows);
  return out;
}

export function encodeAck(offset: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = TerminalOp.Ack;
  putOffset(view(out), 1, offset);
  return out;
}

function encodePayload(op: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + payload.byteLength);
  out[0] = op;
  out.set(payload, 1);
  return out;
}

export function encodePing(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodePayload(TerminalOp.Ping, payload);
}

export function encodePong(payload: Uint8Array): Uint8Array {
  return encodePayload(TerminalOp.Pong, payload);
}

/** `into` lets the gateway build the frame in a buffer it allocated once for all clients. */
export function encodeOutput(offset: number, data: Uint8Array, into?: Uint8Array): Uint8Array {
  const out = into ?? new Uint8Array(OUTPUT_HEADER_BYTES + data.byteLength);
  out[0] = TerminalOp.Output;
  putOffset(view(out), 1, offset);
  out.set(data, OUTPUT_HEADER_BYTES);
  return out;
}

export function encodeSnapshot(offset: number, cols: number, rows: number, data: string): Uint8Array {
  const text = encoder.encode(data);
  const out = new Uint8Array(13 + text.byteLength);
  const dv = view(out);
  out[0] = TerminalOp.Snapshot;
  putOffset(dv, 1, offset);
  dv.setUint16(9, cols);
  dv.setUint16(11, rows);
  out.set(text, 13);
  return out;
}

export function encodeExit(code: number, signal: number): Uint8Array {
  const out = new Uint8Array(9);
  const dv = view(out);
  out[0] = TerminalOp.Exit;
  dv.setInt32(1, code);
  dv.setInt32(5, signal);
  return out;
}

export function encodeSessionInfo(info: TerminalSessionInfo): Uint8Array {
  return encodePayload(TerminalOp.SessionInfo, encoder.encode(JSON.stringify(info)));
}

export class TerminalFrameError extends Error {}

function need(buf: Uint8Array, n: number): void {
  if (buf.byteLength < n) throw new TerminalFrameError(`frame 0x${(buf[0] ?? 0).toString(16)} too short`);
}

/** Payloads are views into `buf`, not copies. */
export function decodeFrame(buf: Uint8Array): TerminalFrame {
  need(buf, 1);
  const op = buf[0];
  // Keystrokes: nothing allocated beyond the view of the payload.
  if (op === TerminalOp.Input) return { op, data: buf.subarray(1) };
  const dv = view(buf);
  switch (op) {
    case TerminalOp.Resize:
      need(buf, 5);
      return { op, cols: dv.getUint16(1), rows: dv.getUint16(3) };
    case TerminalOp.Ack:
      need(buf, 9);
      return { op, offset: getOffset(dv, 1) };
    case TerminalOp.Ping:
    case TerminalOp.Pong:
      return { op, payload: buf.subarray(1) };
    case TerminalOp.Output:
      need(buf, OUTPUT_HEADER_BYTES);
      return { op, offset: getOffset(dv, 1), data: buf.subarray(OUTPUT_HEADER_BYTES) };
    case TerminalOp.Snapshot:
      need(buf, 13);
      return {
        op,
        offset: getOffset(dv, 1),
        cols: dv.getUint16(9),
        rows: dv.getUint16(11),
        data: decoder.decode(buf.subarray(13)),
      };
    case TerminalOp.Exit:
      need(buf, 9);
      return { op, code: dv.getInt32(1), signal: dv.getInt32(5) };
    case TerminalOp.SessionInfo:
      return { op, info: JSON.parse(decoder.decode(buf.subarray(1))) as TerminalSessionInfo };
    default:
      throw new TerminalFrameError(`unknown terminal opcode 0x${(op ?? 0).toString(16)}`);
  }
}
