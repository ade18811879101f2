import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * A keystroke's round trip crosses four WebSocket hops (client send, gateway receive, gateway
 * send, client receive). ws handles each with general machinery: a send is a header and a payload
 * written as two corked writes (a writev through the stream's buffering), a receive goes through
 * a Writable stream and a state machine that copies the frame out of its buffer list. For the
 * terminal's frames (small, binary, whole) that machinery cost more than the bytes; these two
 * functions take the direct path for exactly those frames and hand everything else to ws.
 *
 * They rely on parts of ws's internals, checked on every call; when those look different (another
 * ws version), or the frame or the connection's state is anything but plain, ws does the work.
 */

interface SenderInternals {
  _state?: unknown;
  _queue?: unknown[];
  _firstFragment?: unknown;
}

interface ReceiverInternals {
  _state?: unknown;
  _bufferedBytes?: unknown;
  _fragmented?: unknown;
  _errored?: unknown;
  _opcode?: unknown;
  _isServer?: unknown;
  _maxPayload?: unknown;
  _binaryType?: unknown;
  _allowSynchronousEvents?: unknown;
  writableLength: number;
  write(chunk: Buffer): boolean;
  emit(event: 'message', data: Buffer, isBinary: boolean): boolean;
}

interface WsInternals {
  _isServer?: unknown;
  _extensions?: Record<string, unknown> | null;
  _socket?: Socket | null;
  _sender?: SenderInternals | null;
  _receiver?: ReceiverInternals | null;
}

/** Frames up to this size are copied behind their header; bigger ones are not worth the copy. */
const ONE_WRITE_MAX_BYTES = 16 * 1024;

/** Masking keys for client frames, drawn from the CSPRNG in blocks (RFC 6455 §5.3). */
const maskPool = Buffer.allocUnsafe(4096);
let maskAt = maskPool.length;

function nextMask(): Buffer {
  if (maskAt + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskAt = 0;
  }
  const mask = maskPool.subarray(maskAt, maskAt + 4);
  maskAt += 4;
  return mask;
}

function applyMask(buf: Buffer, from: number, to: number, mask: Uint8Array): void {
  const m0 = mask[0]!;
  const m1 = mask[1]!;
  const m2 = mask[2]!;
  const m3 = mask[3]!;
  let i = from;
  for (; i + 3 < to; i += 4) {
    buf[i] = buf[i]! ^ m0;
    buf[i + 1] = buf[i + 1]! ^ m1;
    buf[i + 2] = buf[i + 2]! ^ m2;
    buf[i + 3] = buf[i + 3]! ^ m3;
  }
  for (let k = 0; i < to; i++, k++) buf[i] = buf[i]! ^ mask[k & 3]!;
}

/**
 * Sends one binary message as a single socket write (masked when `ws` is a client), while ws's
 * sender is idle (nothing queued, no fragmented message open, permessage-deflate off) so bytes
 * keep their order; otherwise, and for big frames, ws sends it.
 */
export function sendBinary(ws: WebSocket, data: Uint8Array): void {
  const w = ws as unknown as WsInternals;
  const { _socket: socket, _sender: sender, _extensions: extensions } = w;
  const len = data.byteLength;
  if (
    len > ONE_WRITE_MAX_BYTES ||
    ws.readyState !== 1 ||
    !socket ||
    !sender ||
    typeof w._isServer !== 'boolean' ||
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
  const masked = !w._isServer;
  const lenBytes = len < 126 ? 0 : 2;
  const head = 2 + lenBytes + (masked ? 4 : 0);
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = 0x82; // FIN, binary
  frame[1] = (masked ? 0x80 : 0) | (lenBytes === 0 ? len : 126);
  if (lenBytes === 2) frame.writeUInt16BE(len, 2);
  frame.set(data, head);
  if (masked) {
    const mask = nextMask();
    frame.set(mask, 2 + lenBytes);
    applyMask(frame, head, head + len, mask);
  }
  socket.write(frame);
}

/**
 * Lets `ws` receive whole, unfragmented binary frames without its stream machinery: each socket
 * read is parsed here while ws's receiver is idle, and from the first frame that is not plain
 * (a control frame, a fragment, text, a frame split across reads, anything oversized or wrongly
 * masked) the rest goes to ws as usual. Returns false (and changes nothing) when ws's internals
 * are not what this expects.
 */
export function receiveDirect(ws: WebSocket): boolean {
  const receiver = (ws as unknown as WsInternals)._receiver;
  if (
    !receiver ||
    typeof receiver.write !== 'function' ||
    typeof receiver._isServer !== 'boolean' ||
    typeof receiver._maxPayload !== 'number' ||
    typeof receiver._bufferedBytes !== 'number' ||
    receiver._allowSynchronousEvents !== true
  )
    return false;
  const wsWrite = receiver.write.bind(receiver);
  const expectMask = receiver._isServer ? 0x80 : 0;
  const maxPayload = receiver._maxPayload;
  receiver.write = (chunk: Buffer): boolean => {
    if (
      receiver._state !== 0 ||
      receiver._bufferedBytes !== 0 ||
      receiver._fragmented !== 0 ||
      receiver._errored !== false ||
      receiver._opcode === 0x08 ||
      receiver._binaryType !== 'nodebuffer' ||
      receiver.writableLength !== 0
    )
      return wsWrite(chunk);
    const end = chunk.length;
    let at = 0;
    while (at + 2 <= end) {
      const b0 = chunk[at]!;
      const b1 = chunk[at + 1]!;
      if (b0 !== 0x82 || (b1 & 0x80) !== expectMask) break;
      let len = b1 & 0x7f;
      let head = 2;
      if (len === 127) break;
      if (len === 126) {
        if (at + 4 > end) break;
        len = chunk.readUInt16BE(at + 2);
        head = 4;
      }
      if (maxPayload > 0 && len > maxPayload) break;
      const maskAt = at + head;
      if (expectMask) head += 4;
      const from = at + head;
      if (from + len > end) break;
      if (expectMask) applyMask(chunk, from, from + len, chunk.subarray(maskAt, maskAt + 4));
      at = from + len;
      // As ws does: later frames of the read are still delivered if a handler closes the socket.
      receiver.emit('message', chunk.subarray(from, at), true);
    }
    if (at === end) return true;
    return wsWrite(at === 0 ? chunk : chunk.subarray(at));
  };
  return true;
}
