import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '@berth/gateway/testing';
import { decodeFrame, TerminalOp } from '@berth/protocol';
import { reachOffset, screenShows, view, type Viewer } from './helpers.js';

const HIGH_WATER = 256 * 1024;
/**
 * Output read in one loop iteration goes out as one frame before the pause decision: libuv does
 * up to 32 reads of a PTY per poll (4 KiB each in practice), so allow a generous margin.
 */
const MAX_READ = 256 * 1024;

const gateways: TestGateway[] = [];
const viewers: Viewer[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const v of viewers.splice(0)) {
    v.client.close();
    v.screen.dispose();
  }
  for (const gw of gateways.splice(0)) {
    await gw.close();
    expect(gw.gateway.sessions.list()).toEqual([]);
  }
});

async function gateway(): Promise<TestGateway> {
  const gw = await startTestGateway(
    { terminal: { ringBytes: 1024 * 1024, idleTimeoutMs: 60_000, interactive: true } },
    { highWaterBytes: HIGH_WATER, lowWaterBytes: HIGH_WATER / 4 },
  );
  gateways.push(gw);
  return gw;
}

describe('flow control', () => {
  it('a driver that stops acknowledging pauses the PTY; acknowledging resumes it', async () => {
    const gw = await gateway();
    const v = view(gw, await gw.signer.sign({}), {
      command: ['yes', 'a line of output that never ends'],
      manualAck: true,
    });
    viewers.push(v);
    const info = await v.client.ready();
    const session = gw.gateway.sessions.get(info.sessionId);
    if (!session) throw new Error('no session');
    if (!session.paused) await once(session, 'pause');
    expect(session.paused).toBe(true);
    const atPause = session.outputOffset;
    expect(atPause).toBeLessThanOrEqual(HIGH_WATER + 2 * MAX_READ);
    // Everything read from the PTY reaches the client, and nothing more is read meanwhile.
    await reachOffset(v.client, atPause);
    expect(session.outputOffset).toBe(atPause);
    expect(session.paused).toBe(true);
    const resumed = once(session, 'pause');
    v.client.ack(v.client.offset);
    expect(await resumed).toEqual([false]);
    await reachOffset(v.client, atPause + 1);
  });

  it('a client whose socket stops reading does not make the gateway read (and hold) output without bound', async () => {
    const gw = await gateway();
    const token = await gw.signer.sign({});
    const ws = new WebSocket(
      `${gw.url}?token=${token}&cmd=${encodeURIComponent(JSON.stringify(['yes', 'x'.repeat(100)]))}`,
      { perMessageDeflate: false },
    );
    sockets.push(ws);
    // The first frame is the session info; then stop reading the TCP socket altogether.
    const [data] = (await once(ws, 'message')) as [Buffer];
    const frame = decodeFrame(data);
    if (frame.op !== TerminalOp.SessionInfo) throw new Error(`expected session info, got ${frame.op}`);
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const session = gw.gateway.sessions.get(frame.info.sessionId);
    if (!session) throw new Error('no session');
    if (!session.paused) await once(session, 'pause');
    // What the gateway has taken from the PTY (and may hold for this client) stays under the mark.
    expect(session.outputOffset).toBeLessThanOrEqual(HIGH_WATER + 2 * MAX_READ);
    expect(session.paused).toBe(true);
  });

  it('a slow observer is skipped (snapshot mode) while the driver streams, then catches up with a snapshot', async () => {
    const gw = await gateway();
    const driver = view(gw, await gw.signer.sign({}), {
      command: [
        'sh',
        '-c',
        'stty -echo; read go; head -c 3000000 /dev/zero | base64; printf "\\033[2;5HDONE"; read x',
      ],
    });
    viewers.push(driver);
    const info = await driver.client.ready();
    const observer = view(gw, await gw.signer.sign({ role: 'observer', sid: info.sessionId }), {
      sessionId: info.sessionId,
      manualAck: true,
    });
    viewers.push(observer);
    await observer.client.ready();
    const session = gw.gateway.sessions.get(info.sessionId);
    if (!session) throw new Error('no session');
    driver.client.write('\r');
    // The driver gets all ~4 MB although the observer acknowledges nothing.
    await screenShows(driver, (t) => t.includes('DONE'));
    const observerInfo = session.clientInfos().find((c) => c.role === 'observer');
    expect(observerInfo?.mode).toBe('snapshot');
    expect(observer.client.offset).toBeLessThanOrEqual(HIGH_WATER + 2 * MAX_READ);
    // Once it has read what it was sent, it gets the current screen and continues live.
    const snapshotsBefore = observer.snapshots;
    observer.client.ack(observer.client.offset);
    await reachOffset(observer.client, session.outputOffset);
    expect(observer.snapshots).toBe(snapshotsBefore + 1);
    await Promise.all([driver.screen.flush(), observer.screen.flush()]);
    expect(observer.screen.state()).toEqual(driver.screen.state());
    expect(session.clientInfos().find((c) => c.role === 'observer')?.mode).toBe('live');
  });
});
