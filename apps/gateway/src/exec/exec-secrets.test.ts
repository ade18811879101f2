import { randomUUID } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecFrameDecoder } from '@berth/protocol';
import { startFakeVault, VaultClient, type FakeVault } from '@berth/vault';
import { startTestIssuer, trustBerth, type TestIssuer } from '@berth/vault/testing';
import { startTestGateway, type TestGateway } from '../testing.js';

/**
 * The Vault token a task's secrets were read with does not outlive the environment: stopping the
 * gateway while the task runs revokes it (a FAKE Vault here; the same API as Vault's).
 */

const AUDIENCE = 'vault.test/berth';
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function vaultWithSecret(issuer: TestIssuer): Promise<FakeVault> {
  const vault = await startFakeVault();
  closers.push(() => vault.close());
  const root = new VaultClient({ address: vault.address, token: vault.rootToken });
  closers.push(() => root.close());
  await trustBerth(root, {
    issuer: issuer.issuer,
    jwksUrl: issuer.jwksUrl,
    audience: AUDIENCE,
    policy: { name: 'reader', path: 'secret/data/app/*' },
  });
  await root.request('POST', 'secret/data/app/db', { body: { data: { password: 'hunter2-but-longer' } } });
  return vault;
}

/**
 * A loopback proxy in front of the fake Vault that holds KV reads until `release()`: the
 * gateway has logged in (it holds a token) but has not got its secrets yet.
 */
async function holdingProxy(
  target: string,
): Promise<{ url: string; held: Promise<void>; release: () => void }> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let seen!: () => void;
  const held = new Promise<void>((r) => (seen = r));
  const server = createServer((req, res) => {
    const forward = () => {
      const up = request(
        new URL(req.url ?? '/', target),
        { method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      req.pipe(up);
    };
    if (req.method === 'GET' && req.url?.includes('/data/')) {
      seen();
      void gate.then(forward);
    } else forward();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(() => r(undefined)));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held, release };
}

describe('a task’s Vault token and the gateway’s end', () => {
  it('stopping the gateway while the task runs revokes the token its secrets were read with', async () => {
    const issuer = await startTestIssuer();
    closers.push(() => issuer.close());
    const vault = await vaultWithSecret(issuer);
    const g: TestGateway = await startTestGateway();
    let closed = false;
    closers.push(() => (closed ? Promise.resolve() : g.close()));
    const taskId = randomUUID();
    // A token is for one request, as the control plane's worker mints them.
    const headers = {
      authorization: `Bearer ${await g.signer.sign({ scope: 'exec', sid: taskId })}`,
      'content-type': 'application/json',
    };
    const jwt = await issuer.sign({ aud: AUDIENCE, sub: 'user:alice' });
    const sent = await fetch(`${g.http}/exec/tasks/${taskId}/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        messages: [
          {
            seq: 1,
            kind: 'start',
            body: {
              command: ['sh', '-c', 'echo "ready ${#DB_PASSWORD}"; exec sleep 60'],
              secrets: {
                vault: { address: vault.address, authMount: 'berth', role: 'berth', kvMount: 'secret' },
                jwt,
                refs: [{ env: 'DB_PASSWORD', path: 'app/db', key: 'password' }],
              },
            },
          },
        ],
      }),
    });
    expect(sent.status).toBe(200);
    // The process runs with the value: the secrets were read with a Vault token.
    const out = await fetch(`${g.http}/exec/tasks/${taskId}/output?offset=0`, {
      headers: { authorization: `Bearer ${await g.signer.sign({ scope: 'exec', sid: taskId })}` },
    });
    expect(out.status).toBe(200);
    const reader = out.body!.getReader();
    const dec = new ExecFrameDecoder();
    let text = '';
    while (!text.includes('\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const ev of dec.push(value)) {
        if (ev.type === 'output') text += ev.data.toString();
        else if (ev.type !== 'heartbeat') text += JSON.stringify(ev);
      }
    }
    await reader.cancel();
    expect(text).toBe('ready 18\n');
    expect(vault.requests.filter((r) => r.path === 'auth/token/revoke-self')).toHaveLength(0);

    await g.close();
    closed = true;
    expect(vault.requests.filter((r) => r.path === 'auth/token/revoke-self')).toHaveLength(1);
  });
  it('stopping the gateway while the task is still reading its secrets revokes the token once they arrive', async () => {
    const issuer = await startTestIssuer();
    closers.push(() => issuer.close());
    const vault = await vaultWithSecret(issuer);
    const proxy = await holdingProxy(vault.address);
    const g: TestGateway = await startTestGateway();
    let closed = false;
    closers.push(() => (closed ? Promise.resolve() : g.close()));
    const taskId = randomUUID();
    const sent = await fetch(`${g.http}/exec/tasks/${taskId}/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await g.signer.sign({ scope: 'exec', sid: taskId })}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        messages: [
          {
            seq: 1,
            kind: 'start',
            body: {
              command: ['sh', '-c', 'echo started'],
              secrets: {
                vault: { address: proxy.url, authMount: 'berth', role: 'berth', kvMount: 'secret' },
                jwt: await issuer.sign({ aud: AUDIENCE, sub: 'user:alice' }),
                refs: [{ env: 'DB_PASSWORD', path: 'app/db', key: 'password' }],
              },
            },
          },
        ],
      }),
    });
    expect(sent.status).toBe(200);
    await proxy.held; // logged in, the read is held
    const closing = g.close();
    proxy.release();
    await closing;
    closed = true;
    expect(vault.requests.filter((r) => r.path === 'auth/token/revoke-self')).toHaveLength(1);
  });
});
