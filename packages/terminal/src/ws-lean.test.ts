import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { receiveDirect, sendBinary } from './ws-lean.js';

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

interface End {
  ws: WebSocket;
  received: Array<{ data: Buffer; binary: boolean }>;
  next(n: number): Promise<void>;
  /** How many socket reads went through ws's own receiver (not the direct path). */
  viaWs(): number;
}

function collect(ws: WebSocket): End {
  const received: End['received'] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  ws.on('message', (data: Buffer, binary) => {
    // Copied: a direct-path message is a view of the socket read, like ws's own.
    received.push({ data: Buffer.from(data), binary });
    for (const w of waiters.splice(0)) {
      if (received.length >= w.n) w.resolve();
      else waiters.push(w);
    }
  });
  let slow = 0;
  const receiver = (ws as unknown as { _receiver: { _write: (...a: unknown[]) => void } })._receiver;
  const wsWrite = receiver._write.bind(receiver);
  receiver._write = (...a: unknown[]) => {
    slow++;
    wsWrite(...a);
  };
  return {
    ws,
    received,
    next: (n) =>
      received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
    viaWs: () => slow,
  };
}

/** A real ws server and client on loopback, both with the direct receive path. */
async function pair(maxPayload = 0): Promise<{ server: End; client: End }> {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload });
  await new Promise<void>((resolve) => wss!.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  const server = new Promise<WebSocket>((resolve) => wss!.once('connection', resolve));
  client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve) => client!.once('open', () => resolve()));
  const s = await server;
  expect(receiveDirect(s)).toBe(true);
  expect(receiveDirect(client)).toBe(true);
  return { server: collect(s), client: collect(client) };
}

const bytes = (len: number, seed: number): Buffer =>
  Buffer.from(Array.from({ length: len }, (_, i) => (i * 7 + seed) % 256));

const hex = (list: Array<{ data: Buffer }>): string[] => list.map((m) => m.data.toString('hex'));

/** A masked client frame built by hand, to control how it reaches the server's socket. */
function clientFrame(first: number, payload: Buffer, mask = Buffer.from([1, 2, 3, 4])): Buffer {
  const len = payload.length;
  const head =
    len < 126 ? Buffer.from([first, 0x80 | len]) : Buffer.from([first, 0x80 | 126, len >> 8, len & 255]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

const rawSocket = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;

/** Hands chunks to the server as separate socket reads, exactly as cut here. */
function feed(server: End, ...chunks: Buffer[]): void {
  for (const chunk of chunks) rawSocket(server.ws).emit('data', chunk);
}

describe('sendBinary and receiveDirect', () => {
  it('carry every size both ways byte for byte (header lengths 2, 4 and 10; ws for the big ones)', async () => {
    const { server, client: c } = await pair();
    const sizes = [0, 1, 125, 126, 127, 1000, 16 * 1024, 16 * 1024 + 1, 65_535, 65_536, 200_000];
    const sent = sizes.map((len, i) => bytes(len, i));
    // A view into a bigger buffer, as the session sends: only the view's bytes may go out.
    const backing = Buffer.concat([Buffer.from('xxxx'), bytes(300, 99), Buffer.from('yyyy')]);
    sent.push(backing.subarray(4, 304));
    for (const data of sent) sendBinary(server.ws, data);
    for (const data of sent) sendBinary(c.ws, data);
    await Promise.all([c.next(sent.length), server.next(sent.length)]);
    const want = sent.map((b) => b.toString('hex'));
    expect(hex(c.received)).toEqual(want);
    expect(hex(server.received)).toEqual(want);
    expect(c.received.every((m) => m.binary) && server.received.every((m) => m.binary)).toBe(true);
    // The client's frames were masked: ws's server would have failed the connection otherwise.
    expect(server.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('takes the direct path for small whole frames, many to a read', async () => {
    const { server, client: c } = await pair();
    const sent = Array.from({ length: 200 }, (_, i) => bytes(1 + (i % 40), i));
    rawSocket(c.ws).cork();
    for (const data of sent) sendBinary(c.ws, data);
    rawSocket(c.ws).uncork();
    await server.next(sent.length);
    expect(hex(server.received)).toEqual(sent.map((b) => b.toString('hex')));
    expect(server.viaWs()).toBe(0);
  });

  it('hands frames split across reads, pings, fragments and text to ws, in order', async () => {
    const { server } = await pair();
    const a = bytes(300, 1);
    const split = clientFrame(0x82, a);
    const pinged = new Promise<Buffer>((resolve) => server.ws.once('ping', resolve));
    feed(
      server,
      // One frame in three reads, the last with the next frame behind it.
      split.subarray(0, 1),
      split.subarray(1, 7),
      Buffer.concat([split.subarray(7), clientFrame(0x82, Buffer.from('after-split'))]),
      Buffer.concat([
        clientFrame(0x82, Buffer.from('before-ping')),
        clientFrame(0x89, Buffer.from('p1')),
        clientFrame(0x82, Buffer.from('after-ping')),
        clientFrame(0x02, Buffer.from('frag-')), // binary, not final
        clientFrame(0x80, Buffer.from('ment')), // continuation, final
        clientFrame(0x81, Buffer.from('text')),
        clientFrame(0x82, Buffer.from('last')),
      ]),
    );
    await server.next(7);
    expect((await pinged).toString()).toBe('p1');
    expect(
      server.received.map((m) => [m.binary, m.binary ? m.data.toString('latin1') : m.data.toString()]),
    ).toEqual([
      [true, a.toString('latin1')],
      [true, 'after-split'],
      [true, 'before-ping'],
      [true, 'after-ping'],
      [true, 'frag-ment'],
      [false, 'text'],
      [true, 'last'],
    ]);
    expect(server.viaWs()).toBeGreaterThan(0);
  });

  it('leaves protocol errors to ws: an unmasked client frame and an oversized one fail the connection', async () => {
    for (const [frame, code] of [
      [Buffer.from([0x82, 0x02, 0x61, 0x62]), 1002], // a client frame must be masked
      [clientFrame(0x82, bytes(2000, 3)), 1009], // over maxPayload (1000)
    ] as const) {
      const { server, client: c } = await pair(1000);
      const failed = new Promise<Error>((resolve) => server.ws.once('error', resolve));
      const closed = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
      feed(server, Buffer.concat([frame, clientFrame(0x82, Buffer.from('never'))]));
      expect(await closed).toBe(code);
      expect((await failed).message).toMatch(
        code === 1002 ? /MASK must be set/ : /Max payload size exceeded/,
      );
      expect(server.received).toEqual([]);
      client?.terminate();
      await new Promise<void>((resolve) => wss!.close(() => resolve()));
      wss = undefined;
    }
  });

  it('delivers nothing after a close frame in the same read', async () => {
    const { server } = await pair();
    const closed = new Promise<number>((resolve) => server.ws.once('close', (code) => resolve(code)));
    const close = Buffer.from([0x03, 0xe8]); // 1000
    feed(
      server,
      Buffer.concat([
        clientFrame(0x82, Buffer.from('one')),
        clientFrame(0x88, close),
        clientFrame(0x82, Buffer.from('two')),
      ]),
    );
    expect(await closed).toBe(1000);
    expect(server.received.map((m) => m.data.toString())).toEqual(['one']);
  });

  it('keeps the order of messages when it alternates with ws sending (big frames, a queued close)', async () => {
    const { server, client: c } = await pair();
    const sent: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const data = bytes(i % 3 === 0 ? 20_000 + i : i * 3, i);
      sent.push(data);
      if (i % 5 === 0) server.ws.send(data, { binary: true });
      else sendBinary(server.ws, data);
    }
    await c.next(sent.length);
    expect(hex(c.received)).toEqual(sent.map((b) => b.toString('hex')));
    const closed = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
    server.ws.close(4410, 'done');
    expect(await closed).toBe(4410);
  });

  it('changes nothing when ws is not what it expects', () => {
    const fake = { _receiver: { write: () => true, _allowSynchronousEvents: false } } as unknown as WebSocket;
    expect(receiveDirect(fake)).toBe(false);
  });
});
