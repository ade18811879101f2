import WebSocket from 'ws';
import type { SocketFactory, TerminalSocket } from './socket.js';
import { receiveDirect, sendBinary } from './ws-lean.js';

export { receiveDirect, sendBinary } from './ws-lean.js';

/**
 * Node: `ws` without permessage-deflate (it costs ~0.4 ms per keystroke); Buffers, no copies.
 * Listens with ws's own events instead of its `onmessage` emulation, which builds a MessageEvent
 * for every frame (on the path of every keystroke's echo), and takes ws-lean's direct paths for
 * plain binary frames.
 */
export const nodeSocketFactory: SocketFactory = (url) => {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  const socket: TerminalSocket = {
    get readyState() {
      return ws.readyState;
    },
    send: (data) => sendBinary(ws, data),
    close: (code, reason) => ws.close(code, reason),
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
  };
  ws.on('open', () => {
    receiveDirect(ws);
    socket.onopen?.(undefined);
  });
  // As the browser API: text frames arrive as strings (the terminal protocol ignores them).
  ws.on('message', (data: Buffer, isBinary) =>
    socket.onmessage?.({ data: isBinary ? data : data.toString() }),
  );
  ws.on('close', (code, reason) => socket.onclose?.({ code, reason: reason.toString() }));
  ws.on('error', (err) => socket.onerror?.(err));
  return socket;
};
