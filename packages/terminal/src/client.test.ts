import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, OutputLog, type TestGateway } from '@berth/gateway/testing';
import { connectTerminal, type TerminalClient, type TerminalStatus } from './index.js';
import { nodeSocketFactory } from './node.js';

const gateways: TestGateway[] = [];
const clients: TerminalClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const gw of gateways.splice(0)) await gw.close();
});

describe('TerminalClient', () => {
  it('reconnects to the same session with its resume token and gets each byte exactly once', async () => {
    const gw = await startTestGateway();
    gateways.push(gw);
    const client = connectTerminal({
      url: gw.url,
      token: await gw.signer.sign({}),
      command: ['cat'],
      socketFactory: nodeSocketFactory,
    });
    clients.push(client);
    const statuses: TerminalStatus[] = [];
    client.onStatus((s) => statuses.push(s));
    const out = new OutputLog(client);
    const first = await client.ready();
    client.write('one\r');
    await out.until('one\r\none\r\n', client);
    client.dropConnection();
    // Typed while the connection is down: delivered after the reattach.
    client.write('two\r');
    await out.until('two\r\ntwo\r\n', client);
    expect(out.text()).toBe('one\r\none\r\ntwo\r\ntwo\r\n');
    expect(client.sessionId).toBe(first.sessionId);
    expect(client.offset).toBe(out.length);
    expect(statuses).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    expect(gw.gateway.sessions.list()).toHaveLength(1);
  });

  it('stops for good on a final refusal instead of retrying', async () => {
    const gw = await startTestGateway();
    gateways.push(gw);
    const client = connectTerminal({ url: gw.url, token: 'nope', socketFactory: nodeSocketFactory });
    clients.push(client);
    const statuses: TerminalStatus[] = [];
    client.onStatus((s) => statuses.push(s));
    await expect(client.ready()).rejects.toThrow(/4401/);
    expect(statuses).toEqual(['connecting', 'closed']);
  });
});
