import WebSocket from 'ws';
import type { SocketFactory, TerminalSocket } from './socket.js';

/** Node: `ws` without permessage-deflate (it costs ~0.4 ms per keystroke); Buffers, no copies. */
export const nodeSocketFactory: SocketFactory = (url) => {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  return ws as unknown as TerminalSocket;
};
