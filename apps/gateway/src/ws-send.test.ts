import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { sendBinary } from './ws-send.js';

let wss: WebSocketServer | undefined;
let client: WebSocket | undefined;

afterEach(async () => {
  client?.terminate();
  client = undefined;
  if (wss) {
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss!.close(() => resolve()));
    wss = undefined;
  }
});

/** A real ws server and client on loopback; resolves with the server's end of the connection. */
async function pair(): Promise<{
  server: WebSocket;
  received: Buffer[];
  next: (n: number) => Promise<void>;
}> {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss!.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  const server = new Promise<WebSocket>((resolve) => wss!.once('connection', resolve));
  client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  const received: Buffer[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  client.on('message', (data: Buffer, isBinary) => {
    expect(isBinary).toBe(true);
    received.push(data);
    for (const w of waiters.splice(0)) {
      if (received.length >= w.n) w.resolve();
      else waiters.push(w);
    }
  });
  await new Promise<void>((resolve) => client!.once('open', () => resolve()));
  const next = (n: number): Promise<void> =>
    received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }));
  return { server: await server, received, next };
}

const bytes = (len: number, seed: number): Buffer =>
  Buffer.from(Array.from({ length: len }, (_, i) => (i * 7 + seed) % 256));

describe('sendBinary', () => {
  it('delivers every size a client can tell apart (header lengths 2, 4 and 10, ws fallback) byte for byte', async () => {
    const { server, received, next } = await pair();
    const sizes = [0, 1, 125, 126, 127, 1000, 16 * 1024, 16 * 1024 + 1, 65_535, 65_536, 200_000];
    const sent = sizes.map((len, i) => bytes(len, i));
    // A view into a bigger buffer, as the session sends: only the view's bytes may go out.
    const backing = Buffer.concat([Buffer.from('xxxx'), bytes(300, 99), Buffer.from('yyyy')]);
    sent.push(backing.subarray(4, 304));
    for (const data of sent) sendBinary(server, data);
    await next(sent.length);
    expect(received.map((b) => b.toString('hex'))).toEqual(sent.map((b) => b.toString('hex')));
  });

  it('keeps the order of messages when it alternates with ws sending (big frames, a queued close)', async () => {
    const { server, received, next } = await pair();
    const sent: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const data = bytes(i % 3 === 0 ? 20_000 + i : i * 3, i);
      sent.push(data);
      if (i % 5 === 0) server.send(data, { binary: true });
      else sendBinary(server, data);
    }
    await next(sent.length);
    expect(received.map((b) => b.toString('hex'))).toEqual(sent.map((b) => b.toString('hex')));
    const closed = new Promise<number>((resolve) => client!.once('close', (code) => resolve(code)));
    server.close(4410, 'done');
    expect(await closed).toBe(4410);
  });
});
