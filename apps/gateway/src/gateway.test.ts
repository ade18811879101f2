import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { connectTerminal, type TerminalClient, type TerminalConnectOptions } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { GatewayHealth, type GatewayConfigInput } from '@berth/protocol';
import { createTestSigner, OutputLog, startTestGateway, type TestGateway } from './testing.js';
import type { Session } from './session.js';

const open: TestGateway[] = [];
const clients: TerminalClient[] = [];
const pids: number[] = [];

async function gateway(overrides: Partial<GatewayConfigInput> = {}): Promise<TestGateway> {
  const gw = await startTestGateway(overrides);
  gw.gateway.sessions.on('ended', (s: Session) => pids.push(s.pid));
  open.push(gw);
  return gw;
}

function connect(
  gw: TestGateway,
  token: string,
  opts: Partial<TerminalConnectOptions> = {},
): { client: TerminalClient; out: OutputLog } {
  const client = connectTerminal({ url: gw.url, token, socketFactory: nodeSocketFactory, ...opts });
  clients.push(client);
  return { client, out: new OutputLog(client) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const gw of open.splice(0)) {
    const sessions = gw.gateway.sessions.list();
    await gw.close();
    expect(gw.gateway.sessions.list()).toEqual([]);
    for (const s of sessions) expect(s.state).toBe('closed');
  }
  // Every PTY process the gateway started is gone.
  for (const pid of pids.splice(0)) expect(alive(pid)).toBe(false);
});

describe('gateway', () => {
  it('answers /healthz and logs JSON lines to <dataDir>/gateway.log', async () => {
    const gw = await gateway();
    const res = await fetch(`${gw.http}/healthz`);
    expect(res.status).toBe(200);
    const health = GatewayHealth.parse(await res.json());
    expect(health).toMatchObject({ ok: true, environmentId: gw.environmentId });
    const lines = readFileSync(join(gw.dataDir, 'gateway.log'), 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'info',
      msg: 'gateway listening',
      port: gw.gateway.port,
    });
  });

  it('echoes keystrokes through a session', async () => {
    const gw = await gateway();
    const { client, out } = connect(gw, await gw.signer.sign({}), { command: ['cat'] });
    await client.ready();
    client.write('hello\r');
    await out.until('hello\r\nhello\r\n', client);
  });

  it('delivers unicode output byte for byte, also when reads split a UTF-8 sequence', async () => {
    const gw = await gateway();
    const file = join(gw.dataDir, 'unicode.txt');
    const content = Buffer.from('héllo 世界 🎉 ─│┌┐ '.repeat(20_000));
    writeFileSync(file, content);
    const { client, out } = connect(gw, await gw.signer.sign({}), {
      command: ['sh', '-c', `stty raw -echo; printf START; cat '${file}'; printf END; read x`],
    });
    await out.until(() => out.length >= content.length + 'STARTEND'.length, client);
    const text = out.buffer();
    const start = text.indexOf('START') + 5;
    expect(text.subarray(start, start + content.length).equals(content)).toBe(true);
  });

  it('takes a 1 MB paste intact', async () => {
    const gw = await gateway();
    const paste = Buffer.alloc(1024 * 1024);
    const pattern = Buffer.concat([
      Buffer.from('ünïcødé 日本語 '),
      randomBytes(64).toString('base64url').length
        ? Buffer.from(randomBytes(48).toString('base64'))
        : Buffer.alloc(0),
    ]);
    for (let at = 0; at < paste.length; at += pattern.length) pattern.copy(paste, at);
    const digest = createHash('sha256').update(paste).digest('hex');
    const { client, out } = connect(gw, await gw.signer.sign({}), {
      command: ['sh', '-c', 'stty raw -echo; printf READY; head -c 1048576 | sha256sum'],
    });
    await out.until('READY', client);
    client.write(paste);
    await out.until(digest, client);
  });

  it('applies the driver size to the PTY (stty size)', async () => {
    const gw = await gateway();
    const { client, out } = connect(gw, await gw.signer.sign({}), {
      command: ['sh', '-c', 'stty size; read x; stty size; read y'],
      cols: 100,
      rows: 30,
    });
    await out.until('30 100', client);
    client.resize(132, 43);
    client.write('\r');
    await out.until('43 132', client);
  });

  it('reports the exit code and ends the session', async () => {
    const gw = await gateway();
    const { client } = connect(gw, await gw.signer.sign({}), { command: ['sh', '-c', 'exit 3'] });
    const exit = new Promise((resolve) => client.onExit(resolve));
    expect(await exit).toEqual({ code: 3, signal: 0 });
    expect((await client.closed).code).toBe(4410);
  });

  it('drops observer input, ignores observer resizes, and lists who is attached', async () => {
    const gw = await gateway();
    const driver = connect(gw, await gw.signer.sign({ sub: 'alice' }), { command: ['cat'] });
    const info = await driver.client.ready();
    const observer = connect(
      gw,
      await gw.signer.sign({ sub: 'bob', role: 'observer', sid: info.sessionId }),
      {
        sessionId: info.sessionId,
      },
    );
    expect((await observer.client.ready()).role).toBe('observer');
    observer.client.write('secret\r');
    observer.client.resize(50, 10);
    // A pong comes back after the gateway handled the frames sent before the ping.
    const pong = new Promise((resolve) => observer.client.onPong(resolve));
    observer.client.ping(new Uint8Array([1]));
    await pong;
    driver.client.write('mine\r');
    await driver.out.until('mine\r\nmine\r\n', driver.client);
    await observer.out.until('mine\r\nmine\r\n', observer.client);
    expect(driver.out.text()).not.toContain('secret');

    const unauth = await fetch(`${gw.http}/sessions`);
    expect(unauth.status).toBe(401);
    // An observer's ticket (what a shared read-only link gives) may not see the other sessions.
    const observerList = await fetch(`${gw.http}/sessions`, {
      headers: { authorization: `Bearer ${await gw.signer.sign({ role: 'observer', sid: info.sessionId })}` },
    });
    expect(observerList.status).toBe(401);
    const res = await fetch(`${gw.http}/sessions`, {
      headers: { authorization: `Bearer ${await gw.signer.sign({})}` },
    });
    const body = (await res.json()) as {
      sessions: { id: string; cols: number; clients: { sub: string; role: string }[] }[];
    };
    expect(body.sessions).toHaveLength(1);
    expect(body.sessions[0]?.id).toBe(info.sessionId);
    expect(body.sessions[0]?.cols).toBe(80);
    expect(body.sessions[0]?.clients.map((c) => `${c.sub}:${c.role}`).sort()).toEqual([
      'alice:driver',
      'bob:observer',
    ]);
  });

  it('refuses an observer that would start a session', async () => {
    const gw = await gateway();
    const { client } = connect(gw, await gw.signer.sign({ role: 'observer' }));
    expect((await client.closed).code).toBe(4403);
    expect(gw.gateway.sessions.list()).toEqual([]);
  });

  describe('tickets', () => {
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const cases: [string, (gw: TestGateway) => Promise<string>][] = [
      ['wrong audience', (gw) => gw.signer.sign({ aud: 'env-other' })],
      ['expired', (gw) => gw.signer.sign({}, { expiresIn: Math.floor(Date.now() / 1000) - 5 })],
      [
        'issued too long ago',
        (gw) => gw.signer.sign({}, { iat: Math.floor(Date.now() / 1000) - 600, expiresIn: '1h' }),
      ],
      ['bad signature', async (gw) => (await createTestSigner(gw.environmentId)).sign({})],
      [
        'alg none',
        async (gw) => {
          const now = Math.floor(Date.now() / 1000);
          const claims = {
            iss: 'https://control-plane.test',
            sub: 'u',
            aud: gw.environmentId,
            iat: now,
            exp: now + 60,
            scope: 'terminal',
            role: 'driver',
          };
          return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
        },
      ],
      [
        'tampered claims',
        async (gw) => {
          const [h, , s] = (await gw.signer.sign({ role: 'observer' })).split('.');
          const now = Math.floor(Date.now() / 1000);
          return `${h}.${b64({ iss: 'https://control-plane.test', sub: 'u', aud: gw.environmentId, iat: now, exp: now + 60, scope: 'terminal', role: 'driver' })}.${s}`;
        },
      ],
      ['wrong scope', (gw) => gw.signer.sign({ scope: 'exec' })],
      ['garbage', () => Promise.resolve('not-a-jwt')],
    ];
    for (const [name, make] of cases) {
      it(`refuses a ticket: ${name}, sending nothing of the session`, async () => {
        const gw = await gateway();
        const { client, out } = connect(gw, await make(gw), { command: ['cat'] });
        let frames = 0;
        client.onSnapshot(() => frames++);
        client.onSession(() => frames++);
        const closed = await client.closed;
        expect(closed.code).toBe(4401);
        expect(frames + out.length).toBe(0);
        expect(gw.gateway.sessions.list()).toEqual([]);
      });
    }

    it('accepts a ticket once', async () => {
      const gw = await gateway();
      const token = await gw.signer.sign({});
      const first = connect(gw, token, { command: ['cat'] });
      await first.client.ready();
      const again = connect(gw, token, { command: ['cat'] });
      expect((await again.client.closed).code).toBe(4401);
    });
  });

  it('refuses terminals with a clear error when the operator turned interactive attach off', async () => {
    const gw = await gateway({
      terminal: { interactive: false, ringBytes: 1024 * 1024, idleTimeoutMs: 60_000 },
    });
    const { client } = connect(gw, await gw.signer.sign({}));
    const closed = await client.closed;
    expect(closed.code).toBe(4423);
    expect(closed.reason).toMatch(/interactive terminals are turned off/);
    expect(gw.gateway.sessions.list()).toEqual([]);
  });

  it('ends a detached session and kills its process after the idle timeout', async () => {
    const gw = await gateway({ terminal: { interactive: true, ringBytes: 64 * 1024, idleTimeoutMs: 300 } });
    const { client } = connect(gw, await gw.signer.sign({}), { command: ['sleep', '1000'] });
    const info = await client.ready();
    const session = gw.gateway.sessions.get(info.sessionId);
    expect(session).toBeDefined();
    const pid = session?.pid ?? 0;
    expect(alive(pid)).toBe(true);
    const ended = once(gw.gateway.sessions, 'ended');
    client.close();
    const [s] = (await ended) as [Session];
    expect(s.id).toBe(info.sessionId);
    expect(alive(pid)).toBe(false);
    expect(gw.gateway.sessions.list()).toEqual([]);
  });
});
