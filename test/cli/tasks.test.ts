import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as pty from 'node-pty';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import {
  ADMIN,
  Client,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { BERTH_BIN, runCli, waitForExit, waitForLine } from '../helpers/cli.js';

let s: TestServer;
let dir: string;
let alice: Client;
let aliceEnv: Record<string, string>;
let bobEnv: Record<string, string>;
let waiter: LiveWaiter;

const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join('');

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake,local' });
  dir = await mkdtemp(join(tmpdir(), 'berth-cli-tasks-'));
  const admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  alice = await memberClient(s, admin, 'alice-cli@example.com');
  const bob = await memberClient(s, admin, 'bob-cli@example.com');
  aliceEnv = { HOME: dir, BERTH_URL: s.url, BERTH_TOKEN: alice.token! };
  bobEnv = { HOME: dir, BERTH_URL: s.url, BERTH_TOKEN: bob.token! };
  waiter = await LiveWaiter.connect(alice);
});
afterAll(async () => {
  waiter.close();
  await s.stop();
  await rm(dir, { recursive: true, force: true });
});

const taskState = async (id: string) => (await alice.get(`/api/v1/tasks/${id}`)).json.task.state as string;

describe('berth run', () => {
  it('prints the output complete and in order and exits 0', async () => {
    const r = await runCli(['run', '--', 'fake:lines', '500'], aliceEnv);
    expect(r.stdout).toBe(lines(500));
    expect(r.stderr).toMatch(/^task [0-9a-f-]{36}\n$/);
    expect(r.code).toBe(0);
  });

  it("exits with the task's exit code when it fails, and says so on stderr", async () => {
    const r = await runCli(['run', '--', 'fake:fail'], aliceEnv);
    expect(r.stdout).toBe('failing on purpose\n');
    expect(r.stderr).toMatch(/task \S+ failed \(exit 1\); see: berth task show/);
    expect(r.code).toBe(1);
  });

  it('--detach prints the id; task logs -f, show, ls and timeline work on it', async () => {
    const d = await runCli(['run', '--detach', '--', 'fake:lines', '20'], aliceEnv);
    expect(d.code).toBe(0);
    const id = d.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const f = await runCli(['task', 'logs', '-f', id], aliceEnv);
    expect(f.stdout).toBe(lines(20));
    expect(f.code).toBe(0);
    const plain = await runCli(['task', 'logs', id], aliceEnv);
    expect(plain.stdout).toBe(lines(20));
    const show = await runCli(['task', 'show', id], aliceEnv);
    expect(show.stdout).toMatch(/^state\s+succeeded$/m);
    expect(show.stdout).toContain('fake:lines 20');
    const ls = await runCli(['task', 'ls'], aliceEnv);
    expect(ls.stdout).toMatch(/^ID\s+STATE\s+EXIT/);
    expect(ls.stdout).toMatch(new RegExp(`^${id}\\s+succeeded\\s+0`, 'm'));
    const json = JSON.parse((await runCli(['task', 'show', id, '--json'], aliceEnv)).stdout);
    expect(json).toMatchObject({ id, state: 'succeeded', exitCode: 0 });
    const tl = await runCli(['task', 'timeline', id], aliceEnv);
    expect(tl.code).toBe(0);
    const rows = tl.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(new RegExp(`^task ${id}  succeeded \\(exit 0\\)`));
    expect(rows.slice(1).map((r) => r.split(' ')[0])).toEqual(['queued', 'provisioning', 'running']);
    for (const r of rows.slice(1)) expect(r).toMatch(/\|[ █]{40}\| +\d+\.\ds$/);
  });

  it('Ctrl-C without a terminal detaches, says how to follow and cancel; the task goes on', async () => {
    const child = spawn(BERTH_BIN, ['run', '--', 'fake:hang'], {
      env: { PATH: process.env.PATH ?? '', ...aliceEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [, id] = await waitForLine(child, /task ([0-9a-f-]{36})/);
    await waitForLine(child, /running until stopped/);
    child.kill('SIGINT');
    expect((await waitForExit(child)).code).toBe(130);
    expect(stderr).toContain(`berth task logs -f ${id}`);
    expect(stderr).toContain(`berth task cancel ${id}`);
    expect(await taskState(id!)).toBe('running');

    const c = await runCli(['task', 'cancel', id!], aliceEnv);
    expect(c.stdout).toBe(`task ${id} is being canceled\n`);
    const f = await runCli(['task', 'logs', '-f', id!], aliceEnv);
    expect(f.stdout).toBe('running until stopped\n');
    expect(f.code).toBe(130);
    expect((await runCli(['task', 'cancel', id!], aliceEnv)).stdout).toBe(`task ${id} is already canceled\n`);
  });

  it('Ctrl-C at a terminal asks; c cancels the task (exit 130), d detaches and leaves it running', async () => {
    for (const answer of ['c', 'd']) {
      const term = pty.spawn(BERTH_BIN, ['run', '--', 'fake:hang'], {
        cols: 100,
        rows: 30,
        env: { PATH: process.env.PATH ?? '', TERM: 'xterm', ...aliceEnv },
      });
      let screen = '';
      const waiters = new Set<() => void>();
      term.onData((d) => {
        screen += d;
        for (const w of [...waiters]) w();
      });
      const seen = (re: RegExp) =>
        new Promise<RegExpMatchArray>((resolve) => {
          const check = () => {
            const m = screen.match(re);
            if (m) {
              waiters.delete(check);
              resolve(m);
            }
          };
          waiters.add(check);
          check();
        });
      const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
      const [, id] = await seen(/task ([0-9a-f-]{36})/);
      await seen(/running until stopped/);
      term.write('\x03');
      await seen(/cancel the task or detach\? \[c\/d\]/);
      term.write(`${answer}\r`);
      expect(await exited).toBe(130);
      // The exit can overtake the last output through the pty; wait for it by content.
      if (answer === 'd') await seen(/berth task cancel/);
      if (answer === 'c') {
        expect(await taskState(id!)).toBe('canceled');
      } else {
        expect(screen).toContain(`berth task cancel ${id}`);
        expect(await taskState(id!)).toBe('running');
        await alice.post(`/api/v1/tasks/${id}/cancel`);
      }
    }
  });

  it("another user's task is not found for every task command (exit 4)", async () => {
    const d = await runCli(['run', '--detach', '--', 'fake:lines', '2'], aliceEnv);
    const id = d.stdout.trim();
    for (const args of [
      ['task', 'show', id],
      ['task', 'logs', id],
      ['task', 'logs', '-f', id],
      ['task', 'cancel', id],
      ['task', 'timeline', id],
      ['debug', 'task', id, '-o', join(dir, 'nope.tar.gz')],
    ]) {
      const r = await runCli(args, bobEnv);
      expect(r.code, args.join(' ')).toBe(4);
      expect(r.stderr).toMatch(/error: task \S+ not found/);
      expect(r.stdout).not.toContain('line 1');
    }
  });
});

describe('berth debug task', () => {
  it('writes one archive with the task, its timeline, full output and its environment', async () => {
    const r = await runCli(['run', '--provider', 'local', '--', 'sh', '-c', 'echo debug me'], aliceEnv);
    const id = r.stderr.match(/task ([0-9a-f-]{36})/)![1]!;
    expect(r.stdout).toBe('debug me\n');
    expect(r.stderr).toMatch(/^task \S+ in a new environment env-\S+ \(\S+\)\n/);
    expect(r.code).toBe(0);
    const out = join(dir, 'bundle.tar.gz');
    const d = await runCli(['debug', 'task', id, '-o', out], aliceEnv);
    expect(d.code).toBe(0);
    expect(d.stdout).toBe(`${out}\n`);
    const tar = spawnSync('tar', ['-xzf', out, '-C', dir], { encoding: 'utf8' });
    expect(tar.status, tar.stderr).toBe(0);
    const root = join(dir, `berth-task-${id}`);
    const task = JSON.parse(await readFile(join(root, 'task.json'), 'utf8'));
    expect(task).toMatchObject({ id, environmentId: expect.any(String) });
    const timeline = JSON.parse(await readFile(join(root, 'timeline.json'), 'utf8'));
    expect(timeline[0]).toMatchObject({ to: 'queued' });
    expect(timeline.at(-1).to).toBe(task.state);
    expect(await readFile(join(root, 'output.log'), 'utf8')).toBe(r.stdout);
    const env = JSON.parse(await readFile(join(root, 'environment.json'), 'utf8'));
    expect(env.record).toMatchObject({ id: task.environmentId, provider: 'local' });
    const events = JSON.parse(await readFile(join(root, 'environment-events.json'), 'utf8'));
    expect(events.items.map((e: { kind: string }) => e.kind)).toContain('created');
    // The environment's steps are drawn under the task's provisioning, which waited for them.
    expect(await readFile(join(root, 'timeline.txt'), 'utf8')).toMatch(
      /^queued +\|.*\n^provisioning +\|.*\n^  env provisioning +\|[ █]+\| +\d+\.\ds\n^running/m,
    );
    expect(await readFile(join(root, 'README.txt'), 'utf8')).toContain('gateway log');
  });

  it('includes the gateway log when the environment is still running', async () => {
    const r = await runCli(['run', '--provider', 'local', '--keep', '--', 'true'], aliceEnv);
    expect(r.code).toBe(0);
    const id = r.stderr.match(/task ([0-9a-f-]{36})/)![1]!;
    const out = join(dir, 'kept.tar.gz');
    expect((await runCli(['debug', 'task', id, '-o', out], aliceEnv)).code).toBe(0);
    const sub = join(dir, 'kept');
    await mkdir(sub, { recursive: true });
    expect(spawnSync('tar', ['-xzf', out, '-C', sub]).status).toBe(0);
    const root = join(sub, `berth-task-${id}`);
    const log = await readFile(join(root, 'gateway.log'), 'utf8');
    expect(log).toContain('gateway listening');
    expect(log).toContain(id); // what the gateway did for this task
    expect(await readFile(join(root, 'README.txt'), 'utf8')).toContain(
      "gateway.log       the end of the environment gateway's own log",
    );
    const envId = JSON.parse(await readFile(join(root, 'task.json'), 'utf8')).environmentId as string;
    await alice.del(`/api/v1/environments/${envId}`);
    await waiter.until(
      () => alice.get(`/api/v1/environments/${envId}`),
      (x) => x.json.environment.state === 'destroyed',
    );
  });
});

describe('berth run against a server without the fake provider', () => {
  let plain: TestServer;
  let plainEnv: Record<string, string>;
  beforeAll(async () => {
    plain = await startTestServer(); // BERTH_PROVIDERS defaults to local
    const admin = new Client(plain.url);
    await admin.login(ADMIN.email, ADMIN.password);
    const carol = await memberClient(plain, admin, 'carol-cli@example.com');
    plainEnv = { HOME: dir, BERTH_URL: plain.url, BERTH_TOKEN: carol.token! };
  });
  afterAll(async () => {
    await plain?.stop();
  });

  it('a command without --env or --provider is refused with the way to name an environment', async () => {
    const r = await runCli(['run', '--', 'echo', 'hi'], plainEnv);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: a task runs in an environment');
    expect(r.stderr).toContain('hint: CLI: berth run --env NAME -- CMD');
    expect(r.stderr).toContain('berth run --provider local -- CMD');
    expect(r.code).toBe(1);
  });
});
