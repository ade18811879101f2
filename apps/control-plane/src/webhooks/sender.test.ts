import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSender, isPrivateAddress, RefusedAddressError } from './sender.js';

let hits = 0;
const server = createServer((_req, res) => {
  hits++;
  res.end('ok');
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('webhook sender', () => {
  it('classifies the control plane’s own networks as private', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.20.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '0.0.0.0',
    ])
      expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '8.8.8.8'])
      expect(isPrivateAddress(a), a).toBe(false);
  });

  it('refuses loopback by address and by name unless allowed, without sending anything', async () => {
    const strict = createSender({ allowPrivate: false, timeoutMs: 2000 });
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::ffff:127.0.0.1]:${port}`])
      await expect(strict(`http://${host}/x`, '{}', {})).rejects.toBeInstanceOf(RefusedAddressError);
    expect(hits).toBe(0);
    const open = createSender({ allowPrivate: true, timeoutMs: 2000 });
    await expect(open(`http://localhost:${port}/x`, '{}', {})).resolves.toMatchObject({
      status: 200,
      bodyStart: 'ok',
    });
    expect(hits).toBe(1);
  });
});
