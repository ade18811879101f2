import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connectTerminal, type TerminalClient, type TerminalStatus } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { OutputLog, startTestGateway, type TestGateway } from './testing.js';

// Viewers who came through a read-only link (their ticket names the share): the control plane's
// revoke call and the link's expiry close them, and they cannot come back with what they hold.

const open: TestGateway[] = [];
const clients: TerminalClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const gw of open.splice(0)) await gw.close();
});

async function gateway(): Promise<TestGateway> {
  const gw = await startTestGateway();
  open.push(gw);
  return gw;
}

function connect(gw: TestGateway, token: string, sessionId?: string) {
  const client = connectTerminal({
    url: gw.url,
    token,
    socketFactory: nodeSocketFactory,
    ...(sessionId ? { sessionId } : { command: ['cat'] }),
  });
  clients.push(client);
  const statuses: TerminalStatus[] = [];
  client.onStatus((s) => statuses.push(s));
  return { client, out: new OutputLog(client), statuses };
}

/**
 * A driver's `cat` session and a viewer of it through share `share`, whose link expires in
 * `ttlS` seconds from when the viewer's ticket is made (whole seconds, as in a JWT: up to one less).
 */
async function watched(gw: TestGateway, share: string, ttlS = 3600) {
  const driver = connect(gw, await gw.signer.sign({}));
  const { sessionId } = await driver.client.ready();
  const exp = Math.floor(Date.now() / 1000) + ttlS;
  const viewerTicket = await gw.signer.sign({ role: 'observer', sid: sessionId, share, share_exp: exp });
  const viewer = connect(gw, viewerTicket, sessionId);
  const info = await viewer.client.ready();
  driver.client.write('seen-by-viewer\r');
  await viewer.out.until('seen-by-viewer', viewer.client);
  return { driver, viewer, sessionId, resumeToken: info.resumeToken, exp };
}

/** How the gateway answers a raw resume with this token (`attached` when it lets it in). */
async function resume(
  gw: TestGateway,
  sid: string,
  token: string,
): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(`${gw.url}?resume=${encodeURIComponent(token)}&sid=${sid}&offset=0`);
  ws.on('error', () => undefined);
  return new Promise((resolve) => {
    ws.on('message', () => {
      resolve({ code: 0, reason: 'attached' });
      ws.terminate();
    });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

function revoke(gw: TestGateway, shareId: string, token?: string): Promise<Response> {
  return fetch(`${gw.http}/shares/${shareId}`, {
    method: 'DELETE',
    ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  });
}

describe('gateway: read-only link viewers', () => {
  it("revoking takes only the control plane's exec token for that share", async () => {
    const gw = await gateway();
    const { viewer, sessionId } = await watched(gw, 'share-1');
    const refused: Array<[string, string | undefined]> = [
      ['no token', undefined],
      ["the owner's terminal ticket", await gw.signer.sign({})],
      [
        "the viewer's own ticket for it",
        await gw.signer.sign({ role: 'observer', sid: sessionId, share: 'share-1' }),
      ],
      ['an exec token for a task', await gw.signer.sign({ scope: 'exec', sid: 'task-1' })],
      ['an exec token for another share', await gw.signer.sign({ scope: 'exec', share: 'share-2' })],
    ];
    for (const [what, token] of refused) {
      const res = await revoke(gw, 'share-1', token);
      expect({ what, status: res.status }).toEqual({ what, status: 401 });
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    // Still watching after all of that.
    expect(
      gw.gateway.sessions
        .get(sessionId)
        ?.clientInfos()
        .map((c) => c.role),
    ).toEqual(['driver', 'observer']);
    expect(viewer.statuses).not.toContain('closed');

    const ok = await revoke(gw, 'share-1', await gw.signer.sign({ scope: 'exec', share: 'share-1' }));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ closed: 1 });
    expect(await viewer.client.closed).toEqual({ code: 4430, reason: 'share revoked' });
  });

  it('a revoked link closes its viewers for good, not the driver or other links; nothing it issued gets back in', async () => {
    const gw = await gateway();
    const { driver, viewer, sessionId, resumeToken, exp } = await watched(gw, 'share-1');
    const other = connect(
      gw,
      await gw.signer.sign({ role: 'observer', sid: sessionId, share: 'share-2', share_exp: exp }),
      sessionId,
    );
    await other.client.ready();
    // A ticket for the link made just before the revoke, not used yet (good for a minute).
    const unused = await gw.signer.sign({
      role: 'observer',
      sid: sessionId,
      share: 'share-1',
      share_exp: exp,
    });

    const res = await revoke(gw, 'share-1', await gw.signer.sign({ scope: 'exec', share: 'share-1' }));
    expect(await res.json()).toEqual({ closed: 1 });
    expect(await viewer.client.closed).toEqual({ code: 4430, reason: 'share revoked' });
    // Final: the client never tried to reconnect.
    expect(viewer.statuses).toEqual(['connecting', 'open', 'closed']);

    expect(await resume(gw, sessionId, resumeToken)).toEqual({ code: 4430, reason: 'share revoked' });
    const late = connect(gw, unused, sessionId);
    expect(await late.client.closed).toEqual({ code: 4430, reason: 'share revoked' });

    driver.client.write('after-revoke\r');
    await driver.out.until('after-revoke\r\nafter-revoke', driver.client);
    await other.out.until('after-revoke\r\nafter-revoke', other.client);
    expect(viewer.out.text()).not.toContain('after-revoke');
  });

  it('an expired link closes its viewer at the expiry and refuses its resume token', async () => {
    const gw = await gateway();
    // Two to three seconds: the close is awaited, not slept for.
    const { viewer, sessionId, resumeToken, driver } = await watched(gw, 'share-short', 3);
    const closed = await viewer.client.closed;
    expect(closed).toEqual({ code: 4440, reason: 'share expired' });
    expect(viewer.statuses).toEqual(['connecting', 'open', 'closed']);
    expect(await resume(gw, sessionId, resumeToken)).toEqual({ code: 4440, reason: 'share expired' });
    // The driver's own connection has no link to expire.
    driver.client.write('still-here\r');
    await driver.out.until('still-here\r\nstill-here', driver.client);
  });
});
