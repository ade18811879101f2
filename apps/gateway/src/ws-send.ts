import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** The parts of ws's internals this relies on; when they look different, it falls back to `send`. */
interface WsInternals {
  _extensions?: Record<string, unknown> | null;
  _socket?: Socket | null;
  _sender?: { _state?: unknown; _queue?: unknown[]; _firstFragment?: unknown } | null;
}

/** Frames up to this size are copied behind their header; bigger ones are not worth the copy. */
const ONE_WRITE_MAX_BYTES = 16 * 1024;

/**
 * Sends one binary message from the server. ws writes a frame's header and payload as two corked
 * writes, which Node turns into a writev through the stream's buffering; for small frames (a
 * keystroke's echo) that path was ~20 % of the gateway's CPU per keystroke in a profile. Here the
 * unmasked server frame is built in one buffer and written once. Only while ws's sender is idle
 * (nothing queued, no fragmented message open, permessage-deflate off), so bytes keep their order;
 * otherwise, and for big frames, ws sends it.
 */
export function sendBinary(ws: WebSocket, data: Uint8Array): void {
  const { _socket: socket, _sender: sender, _extensions: extensions } = ws as unknown as WsInternals;
  const len = data.byteLength;
  if (
    len > ONE_WRITE_MAX_BYTES ||
    !socket ||
    !sender ||
    sender._state !== 0 ||
    !Array.isArray(sender._queue) ||
    sender._queue.length > 0 ||
    sender._firstFragment !== true ||
    !extensions ||
    Object.keys(extensions).length > 0
  ) {
    ws.send(data, { binary: true });
    return;
  }
  const head = len < 126 ? 2 : 4;
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = 0x82; // FIN, binary
  if (head === 2) {
    frame[1] = len;
  } else {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  }
  frame.set(data, head);
  socket.write(frame);
}
