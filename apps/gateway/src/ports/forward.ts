import { connect, type Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { TCP_EOF_MESSAGE } from '@berth/protocol';

/** Text frame meaning "no more bytes this way" (TCP half-close); binary frames carry data. */
export const TCP_EOF = TCP_EOF_MESSAGE;
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** Dials 127.0.0.1:<port> before the WebSocket is accepted, so a closed port is a plain 502. */
export function dialLoopback(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => {
      s.off('error', reject);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Carries one TCP connection over one WebSocket. Back-pressure both ways: the socket pauses
 * while the WebSocket has more than 1 MiB unsent, and the WebSocket stops reading while the
 * socket's write buffer is full. Half-closes travel as a text `eof`; the WebSocket closes with
 * 1000 once the TCP connection is fully closed, or with 1011 if it failed.
 */
export function bridge(ws: WebSocket, tcp: Socket): void {
  let tcpPaused = false;
  const drained = () => {
    if (tcpPaused && ws.bufferedAmount < LOW_WATER) {
      tcpPaused = false;
      tcp.resume();
    }
  };
  tcp.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(chunk, { binary: true }, drained);
    if (!tcpPaused && ws.bufferedAmount > HIGH_WATER) {
      tcpPaused = true;
      tcp.pause();
    }
  });
  tcp.on('end', () => {
    if (ws.readyState === ws.OPEN) ws.send(TCP_EOF);
  });
  let failed: Error | undefined;
  tcp.on('error', (err) => (failed = err));
  tcp.on('close', () => {
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING)
      ws.close(failed ? 1011 : 1000, failed ? failed.message.slice(0, 100) : 'closed');
  });
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) {
      if (data.toString() === TCP_EOF) tcp.end();
      return;
    }
    if (!tcp.write(data)) {
      ws.pause();
      tcp.once('drain', () => ws.resume());
    }
  });
  ws.on('close', (code) => {
    // A clean close still delivers what was written; anything else drops the connection.
    if (code !== 1000 || tcp.writableFinished) return void tcp.destroy();
    if (!tcp.writableEnded) tcp.end();
    tcp.once('finish', () => tcp.destroy());
  });
  ws.on('error', () => tcp.destroy());
}
