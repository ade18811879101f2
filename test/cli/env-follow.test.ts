import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { runCli } from '../helpers/cli.js';

// No workers run, so an environment stays pending: the CLI must not wait for ever.
let s: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake', BERTH_WORKERS: 'false' });
  const admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  const t = await admin.post('/api/v1/tokens', { name: 'cli' });
  env = { HOME: s.dataDir, BERTH_URL: s.url, BERTH_TOKEN: t.json.token as string };
});
afterAll(async () => {
  await s.stop();
});

describe('berth env: waiting has a deadline', { timeout: 60_000 }, () => {
  it('env create --timeout gives up with the state it saw and how to carry on', async () => {
    const r = await runCli(['env', 'create', '--name', 'slow', '--timeout', '2s'], env);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/gave up waiting after \ds: slow is still pending/);
    expect(r.stderr).toMatch(/hint: .*berth env show [0-9a-f-]{36}.*--timeout/);
  });

  it('a malformed --timeout is a usage error before anything is created', async () => {
    const r = await runCli(['env', 'create', '--name', 'never', '--timeout', 'soon'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--timeout must be a duration/);
    const ls = await runCli(['env', 'ls', '--json'], env);
    expect(ls.stdout).not.toContain('never');
  });
});
