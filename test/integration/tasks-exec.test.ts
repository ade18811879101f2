import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Docker from 'dockerode';
import { createPool } from '@berth/db';
import { containerName, ensureDocker } from '@berth/providers';
import { ensureGatewayBundle } from '@berth/providers/testing';
import { createTestDatabase, type TestDatabase } from '@berth/db/testing';
import {
  ADMIN,
  Client,
  killProcessesUnder,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { BERTH_BIN, waitForExit, waitForLine } from '../helpers/cli.js';

/**
 * Tasks that run for real: in a `local` environment, through its gateway's exec API, driven by
 * the control plane's task workers.
 */

const FINAL = ['succeeded', 'failed', 'canceled', 'timed_out'];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface TaskJson {
  id: string;
  state: string;
  exitCode: number | null;
  error: string | null;
  logBytes: number;
}

async function settleEnv(
  c: Client,
  live: LiveWaiter,
  id: string,
  states = ['ready', 'stopped', 'destroyed', 'failed'],
): Promise<{ state: string }> {
  const r = await live.until(
    () => c.get(`/api/v1/environments/${id}`),
    (x) => states.includes(x.json?.environment?.state as string),
  );
  return r.json.environment as { state: string };
}

async function task(c: Client, id: string): Promise<TaskJson> {
  const r = await c.get(`/api/v1/tasks/${id}`);
  expect(r.status).toBe(200);
  return (r.json.task ?? r.json) as TaskJson;
}

async function finished(c: Client, live: LiveWaiter, id: string): Promise<TaskJson> {
  const r = await live.until(
    () => task(c, id),
    (t) => FINAL.includes(t.state),
  );
  return r;
}

/** The whole stored log through the API, page by page (base64 keeps binary intact). */
async function storedLog(c: Client, id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const r = await c.get(`/api/v1/tasks/${id}/logs?offset=${offset}&limit=4194304&encoding=base64`);
    expect(r.status).toBe(200);
    const data = Buffer.from(r.json.data as string, 'base64');
    parts.push(data);
    offset = r.json.nextOffset as number;
    if (data.length === 0 || offset >= (r.json.totalBytes as number)) break;
  }
  return Buffer.concat(parts);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Resolves once `check` holds, re-checked on every live notice in Postgres (stored output sends
 * one per chunk; the socket.io relay only carries state changes).
 */
async function untilNotice(dbUrl: string, check: () => Promise<boolean>): Promise<void> {
  const pool = createPool(dbUrl, 1);
  const client = await pool.connect();
  try {
    await client.query('LISTEN berth_live');
    await new Promise<void>((resolve, reject) => {
      let busy = false;
      let again = false;
      const tick = () => {
        if (busy) return void (again = true);
        busy = true;
        check().then((ok) => {
          busy = false;
          if (ok) resolve();
          else if (again) {
            again = false;
            tick();
          }
        }, reject);
      };
      client.on('notification', tick);
      tick();
    });
  } finally {
    client.release();
    await pool.end();
  }
}

/**
 * Host pids of running (not zombie) processes whose argv is exactly `argv`. Found through the
 * host's /proc because the environment may have its own pid namespace (bubblewrap).
 */
function running(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        if (readFileSync(`/proc/${d}/cmdline`, 'utf8') !== want) return false;
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('tasks in a local environment, through the gateway', () => {
  let s: TestServer;
  let admin: Client;
  let live: LiveWaiter;
  let envId: string;
  let workspace: string;

  beforeAll(async () => {
    s = await startTestServer({ BERTH_PROVIDERS: 'local' });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    admin.token = (await admin.post('/api/v1/tokens', { name: 'exec' })).json.token;
    live = await LiveWaiter.connect(admin);
    const r = await admin.post('/api/v1/environments', { name: 'exec-local' });
    expect(r.status).toBe(201);
    envId = r.json.environment.id as string;
    expect((await settleEnv(admin, live, envId)).state).toBe('ready');
    workspace = join(s.dataDir, 'local', 'envs', envId, 'workspace');
  });

  afterAll(async () => {
    if (envId) {
      await admin.del(`/api/v1/environments/${envId}`);
      await settleEnv(admin, live, envId, ['destroyed', 'failed']);
    }
    live?.close();
    await s?.stop();
  });

  const run = async (body: Record<string, unknown>) => {
    const r = await admin.post('/api/v1/tasks', { environmentId: envId, ...body });
    expect(r.status).toBe(201);
    return (r.json.task ?? r.json) as TaskJson;
  };

  it('50 MB of binary output arrives complete and in order', async () => {
    const t = await run({ command: ['sh', '-c', 'head -c 52428800 /dev/urandom | tee big.bin'] });
    const done = await finished(admin, live, t.id);
    expect(done).toMatchObject({ state: 'succeeded', exitCode: 0, logBytes: 52428800 });
    const log = await storedLog(admin, t.id);
    expect(log.length).toBe(52428800);
    expect(sha(log)).toBe(sha(await readFile(join(workspace, 'big.bin'))));
    await rm(join(workspace, 'big.bin'));
  });

  it('cancel: the process tree is gone, the state is canceled and the exit recorded', async () => {
    // A child in the background and a grandchild below it: the whole tree must go.
    const t = await run({
      command: ['sh', '-c', 'sleep 987651 & sh -c "sleep 987652 & wait" & echo started; wait'],
    });
    await untilNotice(s.db.url, async () => (await storedLog(admin, t.id)).toString() === 'started\n');
    expect(running(['sleep', '987651'])).toHaveLength(1);
    expect(running(['sleep', '987652'])).toHaveLength(1);
    expect((await admin.post(`/api/v1/tasks/${t.id}/cancel`)).status).toBe(200);
    const done = await finished(admin, live, t.id);
    expect(done).toMatchObject({ state: 'canceled', exitCode: 143 });
    expect(running(['sleep', '987651'])).toEqual([]);
    expect(running(['sleep', '987652'])).toEqual([]);
    const timeline = await admin.get(`/api/v1/tasks/${t.id}/timeline`);
    expect(JSON.stringify(timeline.json)).toContain('canceled; process stopped (SIGTERM)');
  });

  it('timeout: the process is stopped and the task is timed_out', async () => {
    const t = await run({ command: ['sleep', '1000'], timeoutSeconds: 1 });
    const done = await finished(admin, live, t.id);
    expect(done).toMatchObject({ state: 'timed_out', exitCode: 143 });
  });

  it('a command that does not exist fails with the shell message in the log and a hint', async () => {
    const t = await run({ command: ['no-such-command-xyz', '--version'] });
    const done = await finished(admin, live, t.id);
    expect(done).toMatchObject({ state: 'failed', exitCode: 127 });
    expect(done.error).toMatch(/command not found: check that the program is installed/);
    expect((await storedLog(admin, t.id)).toString()).toMatch(/no-such-command-xyz: not found/);
  });

  it('env and working directory come from the task; another user cannot run in this environment', async () => {
    const t = await run({
      command: ['sh', '-c', 'echo "$GREETING from $(pwd)"'],
      env: { GREETING: 'hello' },
    });
    const done = await finished(admin, live, t.id);
    expect(done.state).toBe('succeeded');
    expect((await storedLog(admin, t.id)).toString()).toBe(`hello from ${workspace}\n`);
    const mallory = await memberClient(s, admin, 'mallory@example.com');
    const r = await mallory.post('/api/v1/tasks', { environmentId: envId, command: ['id'] });
    expect(r.status).toBe(404);
  });
  it('stopping the environment under a running task fails it with the reason, not running forever', async () => {
    const t = await run({ command: ['sh', '-c', 'echo started; exec sleep 987654'] });
    await untilNotice(s.db.url, async () => (await storedLog(admin, t.id)).toString() === 'started\n');
    expect((await admin.post(`/api/v1/environments/${envId}/stop`)).status).toBeLessThan(300);
    const done = await finished(admin, live, t.id);
    expect(done.state).toBe('failed');
    expect(done.error).toMatch(
      /environment \S+ went (stopping|stopped) while the task ran|gateway was stopped/,
    );
    expect(running(['sleep', '987654'])).toEqual([]);
    expect((await storedLog(admin, t.id)).toString()).toBe('started\n');
    expect((await settleEnv(admin, live, envId)).state).toBe('stopped');
    expect((await admin.post(`/api/v1/environments/${envId}/start`)).status).toBeLessThan(300);
    expect((await settleEnv(admin, live, envId)).state).toBe('ready');
  });
});

describe('a gateway killed under a running task', () => {
  let s: TestServer;
  let admin: Client;
  let live: LiveWaiter;

  beforeAll(async () => {
    // The reaper notices a dead gateway on its next round; one second keeps the test short.
    s = await startTestServer({ BERTH_PROVIDERS: 'local', BERTH_ENV_REAP_SECONDS: '1' });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    admin.token = (await admin.post('/api/v1/tokens', { name: 'gw-kill' })).json.token;
    live = await LiveWaiter.connect(admin);
  });

  afterAll(async () => {
    live?.close();
    await s?.stop();
  });

  it('fails the task with the reason instead of leaving it running', async () => {
    const r = await admin.post('/api/v1/environments', { name: 'gw-kill' });
    const envId = r.json.environment.id as string;
    expect((await settleEnv(admin, live, envId)).state).toBe('ready');
    const created = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      command: ['sh', '-c', 'echo started; exec sleep 987655'],
    });
    const id = (created.json.task ?? created.json).id as string;
    await untilNotice(s.db.url, async () => (await storedLog(admin, id)).toString() === 'started\n');
    const meta = JSON.parse(await readFile(join(s.dataDir, 'local', 'envs', envId, 'meta.json'), 'utf8')) as {
      pid: number;
    };
    process.kill(-meta.pid, 'SIGKILL');
    const done = await finished(admin, live, id);
    expect(done.state).toBe('failed');
    expect(done.error).toMatch(/went failed while the task ran.*gateway process is gone/);
    expect((await storedLog(admin, id)).toString()).toBe('started\n');
    await admin.del(`/api/v1/environments/${envId}`);
    await settleEnv(admin, live, envId, ['destroyed']);
  });
});

describe.skipIf(process.env.BERTH_SKIP_DOCKER === '1')('tasks in a docker environment', () => {
  let s: TestServer;
  let admin: Client;
  let live: LiveWaiter;
  let envId: string | undefined;

  beforeAll(async () => {
    const base = ensureDocker();
    ensureGatewayBundle();
    s = await startTestServer({
      BERTH_PROVIDERS: 'docker',
      BERTH_DOCKER_BASE_IMAGE: base,
      BERTH_ENV_DEFAULT_MEMORY_MB: '512',
    });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    live = await LiveWaiter.connect(admin);
  });

  afterAll(async () => {
    // A failed test must not leave its container running on the shared engine.
    if (envId)
      await new Docker()
        .getContainer(containerName(envId))
        .remove({ force: true })
        .catch(() => undefined);
    live?.close();
    await s?.stop();
  });

  it(
    'binary output arrives intact; cancel ends the process in the container',
    { timeout: 240_000 },
    async () => {
      const r = await admin.post('/api/v1/environments', { name: 'exec-docker' });
      expect(r.status).toBe(201);
      envId = r.json.environment.id as string;
      expect((await settleEnv(admin, live, envId)).state).toBe('ready');
      const start = async (command: string[]) => {
        const t = await admin.post('/api/v1/tasks', { environmentId: envId, command });
        expect(t.status).toBe(201);
        return (t.json.task ?? t.json) as TaskJson;
      };
      const write = await start(['sh', '-c', 'head -c 4194304 /dev/urandom | tee /tmp/out.bin']);
      expect(await finished(admin, live, write.id)).toMatchObject({ state: 'succeeded', logBytes: 4194304 });
      const sum = await start(['sha256sum', '/tmp/out.bin']);
      expect((await finished(admin, live, sum.id)).state).toBe('succeeded');
      const log = await storedLog(admin, write.id);
      expect((await storedLog(admin, sum.id)).toString().split(' ')[0]).toBe(sha(log));

      const hang = await start(['sh', '-c', 'sleep 987653 & echo started; wait']);
      await untilNotice(s.db.url, async () => (await storedLog(admin, hang.id)).toString() === 'started\n');
      expect((await admin.post(`/api/v1/tasks/${hang.id}/cancel`)).status).toBe(200);
      expect(await finished(admin, live, hang.id)).toMatchObject({ state: 'canceled', exitCode: 143 });
      const ps = await start(['sh', '-c', 'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; done']);
      await finished(admin, live, ps.id);
      const procs = (await storedLog(admin, ps.id)).toString();
      expect(procs).toContain('for p in'); // it saw itself
      expect(procs).not.toContain('987653');

      await admin.del(`/api/v1/environments/${envId}`);
      await settleEnv(admin, live, envId, ['destroyed', 'failed']);
    },
  );
});

describe('a control plane killed while a task prints', () => {
  let db: TestDatabase;
  let home: string;
  const children: ChildProcess[] = [];

  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(waitForExit));
    children.length = 0;
    if (home) killProcessesUnder(join(home, 'berth'));
    await db?.drop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  // One port for both: the issuer in the environment's gateway config is the control plane's
  // URL, so a control plane that came back elsewhere would be a stranger to the gateway.
  let port = 0;
  function server(): ChildProcess {
    const child = spawn(BERTH_BIN, ['server', '--port', String(port)], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: home,
        BERTH_DATA_DIR: join(home, 'berth'),
        DATABASE_URL: db.url,
        BERTH_PROVIDERS: 'local',
        BERTH_ADMIN_EMAIL: ADMIN.email,
        BERTH_ADMIN_PASSWORD: ADMIN.password,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    return child;
  }

  // The first server's job lease (30 s) has to run out before the second one resumes the task.
  it(
    'resumes reading after a restart: the stored log equals what the process wrote, byte for byte',
    {
      timeout: 180_000,
    },
    async () => {
      db = await createTestDatabase();
      home = await mkdtemp(join(tmpdir(), 'berth-exec-'));
      port = await freePort();
      const first = server();
      const [, url] = await waitForLine(first, /listening on (http:\/\/\S+)/);
      const c = new Client(url!);
      await c.login(ADMIN.email, ADMIN.password);
      c.token = (await c.post('/api/v1/tokens', { name: 'crash' })).json.token;
      let live = await LiveWaiter.connect(c);
      const env = await c.post('/api/v1/environments', { name: 'crash' });
      const envId = env.json.environment.id as string;
      expect((await settleEnv(c, live, envId)).state).toBe('ready');

      // Prints (about 200 KB/s) until told to stop, keeping a copy in the workspace to compare with:
      // it is printing when the control plane dies, all the while it is down, and after.
      const script =
        'while [ ! -e stop ]; do head -c 2000 /dev/urandom; sleep 0.01; done | tee out.bin; echo; echo done';
      const created = await c.post('/api/v1/tasks', { environmentId: envId, command: ['sh', '-c', script] });
      expect(created.status).toBe(201);
      const id = (created.json.task ?? created.json).id as string;
      await untilNotice(db.url, async () => (await task(c, id)).logBytes > 0);
      expect((await task(c, id)).state).toBe('running');
      live.close();
      first.kill('SIGKILL');
      await waitForExit(first);

      const second = server();
      const [, url2] = await waitForLine(second, /listening on (http:\/\/\S+)/);
      const c2 = new Client(url2!, c.token);
      live = await LiveWaiter.connect(c2);
      try {
        // The first server's lease on the task runs out; the second one resumes it.
        const workspace = join(home, 'berth', 'local', 'envs', envId, 'workspace');
        expect((await task(c2, id)).state).toBe('running');
        await writeFile(join(workspace, 'stop'), '');
        const done = await finished(c2, live, id);
        expect(done.state).toBe('succeeded');
        const written = await readFile(join(workspace, 'out.bin'));
        const log = await storedLog(c2, id);
        expect(log.length).toBe(written.length + '\ndone\n'.length);
        expect(sha(log)).toBe(sha(Buffer.concat([written, Buffer.from('\ndone\n')])));
        await c2.del(`/api/v1/environments/${envId}`);
        await settleEnv(c2, live, envId, ['destroyed', 'failed']);
      } finally {
        live.close();
      }
    },
  );
});
