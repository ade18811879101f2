import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BERTH_BIN, waitForExit, waitForLine } from '../helpers/cli.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

describe('berth server on its embedded defaults', () => {
  let home: string;
  const children: ChildProcess[] = [];

  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(waitForExit));
    children.length = 0;
    if (home) await rm(home, { recursive: true, force: true });
  });

  function start(extraEnv: Record<string, string> = {}) {
    const child = spawn(BERTH_BIN, ['server', '--port', '0'], {
      env: { PATH: process.env.PATH ?? '', HOME: home, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    return child;
  }

  it('prints the bootstrap URL once, keeps data in ~/.berth, and stops cleanly on SIGTERM and SIGINT', async () => {
    home = await mkdtemp(join(tmpdir(), 'berth-home-'));
    const first = start();
    const boot = waitForLine(first, /create the admin account at (\S+)/);
    const [, url] = await waitForLine(first, /listening on (http:\/\/\S+)/);
    const [, bootstrapUrl] = await boot;
    const token = new URL(bootstrapUrl!).searchParams.get('token');
    const r = await fetch(`${url}/api/v1/auth/bootstrap`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, email: 'root@example.com', password: 'a long password' }),
    });
    expect(r.status).toBe(201);
    const pgPid = await postmasterPid(join(home, '.berth'));
    expect(alive(pgPid)).toBe(true);
    first.kill('SIGTERM');
    expect(await waitForExit(first)).toEqual({ code: 0, signal: null });
    expect(alive(pgPid)).toBe(false);

    // Second start: the admin survived, and no bootstrap URL is printed again.
    const second = start();
    let out = '';
    second.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const [, url2] = await waitForLine(second, /listening on (http:\/\/\S+)/);
    const login = await fetch(`${url2}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'root@example.com', password: 'a long password' }),
    });
    expect(login.status).toBe(200);
    const pgPid2 = await postmasterPid(join(home, '.berth'));
    second.kill('SIGINT');
    expect(await waitForExit(second)).toEqual({ code: 0, signal: null });
    expect(out).not.toContain('bootstrap');
    expect(alive(pgPid2)).toBe(false);
  });

  it('starts again after being killed with SIGKILL, with its data', async () => {
    home = await mkdtemp(join(tmpdir(), 'berth-home-'));
    const env = { BERTH_ADMIN_EMAIL: 'ops@example.com', BERTH_ADMIN_PASSWORD: 'ops password' };
    const first = start(env);
    await waitForLine(first, /listening on/);
    const orphan = await postmasterPid(join(home, '.berth'));
    first.kill('SIGKILL');
    await waitForExit(first);
    expect(alive(orphan)).toBe(true); // Postgres outlives a killed parent...

    const second = start(env);
    const [, url] = await waitForLine(second, /listening on (http:\/\/\S+)/);
    expect(alive(orphan)).toBe(false); // ...and the next start stops it and takes over its data.
    const login = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ops@example.com', password: 'ops password' }),
    });
    expect(login.status).toBe(200);
    second.kill('SIGTERM');
    expect((await waitForExit(second)).code).toBe(0);
  });

  it('refuses a bad setting with a hint and exit code 2', async () => {
    home = await mkdtemp(join(tmpdir(), 'berth-home-'));
    const child = start({ BERTH_ADMIN_EMAIL: 'only-email@example.com' });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    expect((await waitForExit(child)).code).toBe(2);
    expect(err).toMatch(/error: BERTH_ADMIN_EMAIL and BERTH_ADMIN_PASSWORD must be set together/);
    expect(err).toMatch(/hint: /);
  });
});
