import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../apps/control-plane/src/testing/server.js';
import { BERTH_BIN, runCli, waitForExit, waitForLine } from '../helpers/cli.js';

// `berth worker` against a real server's database: it must use the server's keys and issuer.
let s: TestServer;
let home: string;

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake', BERTH_WORKERS: 'false' });
  home = await mkdtemp(join(tmpdir(), 'berth-worker-'));
});
afterAll(async () => {
  await s.stop();
  await rm(home, { recursive: true, force: true });
});

describe('berth worker: the servers’ keys or nothing', { timeout: 60_000 }, () => {
  it('refuses to start without the signing keys, saying where they come from', async () => {
    const r = await runCli(['worker'], { HOME: home, DATABASE_URL: s.databaseUrl, BERTH_PUBLIC_URL: s.url });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error: berth worker needs the servers' signing keys/);
    expect(r.stderr).toMatch(/hint: set BERTH_SIGNING_KEYS .* or BERTH_SIGNING_KEY_FILE/);
    await expect(
      import('node:fs/promises').then((f) => f.stat(join(home, '.berth', 'keys'))),
    ).rejects.toThrow(/ENOENT/);
  });

  it('refuses to start without BERTH_PUBLIC_URL (the issuer)', async () => {
    const r = await runCli(['worker'], {
      HOME: home,
      DATABASE_URL: s.databaseUrl,
      BERTH_DATA_DIR: s.dataDir,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error: berth worker needs BERTH_PUBLIC_URL/);
  });

  it('starts with the server’s key file and public URL, and stops on SIGTERM', async () => {
    const child = spawn(BERTH_BIN, ['worker'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: home,
        DATABASE_URL: s.databaseUrl,
        BERTH_PUBLIC_URL: s.url,
        BERTH_SIGNING_KEY_FILE: join(s.dataDir, 'keys', 'signing-keys.json'),
        BERTH_PROVIDERS: 'fake',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await waitForLine(child, /berth worker \S+ running/);
      child.kill('SIGTERM');
      expect(await waitForExit(child)).toEqual({ code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await waitForExit(child);
    }
  });
});
