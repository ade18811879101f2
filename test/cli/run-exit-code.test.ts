import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import {
  ADMIN,
  Client,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { createServer, connect, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { BERTH_BIN, runCli, waitForExit } from '../helpers/cli.js';

// Through the real gateway runner: a task in a local environment runs as a real process.
let s: TestServer;
let dir: string;
let alice: Client;
let aliceEnv: Record<string, string>;
let waiter: LiveWaiter;

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'local' });
  dir = await mkdtemp(join(tmpdir(), 'berth-cli-run-'));
  const admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  alice = await memberClient(s, admin, 'alice-run@example.com');
  aliceEnv = { HOME: dir, BERTH_URL: s.url, BERTH_TOKEN: alice.token! };
  waiter = await LiveWaiter.connect(alice);
});
afterAll(async () => {
  waiter.close();
  await s.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('berth run in a real environment', () => {
  it("`berth run --env <local env> -- sh -c 'exit 3'` prints the output and exits 3; --tty gives it a terminal", async () => {
    const e = await alice.post('/api/v1/environments', { provider: 'local', name: 'exit-code' });
    expect(e.status).toBe(201);
    const ready = await waiter.until(
      () => alice.get(`/api/v1/environments/${e.json.environment.id}`),
      (r) => ['ready', 'failed'].includes(r.json.environment.state as string),
    );
    expect(ready.json.environment.state).toBe('ready');
    const r = await runCli(
      ['run', '--env', 'exit-code', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'],
      aliceEnv,
    );
    expect(r.stdout).toContain('out\n');
    expect(r.code).toBe(3);
    const ok = await runCli(['run', '--env', 'exit-code', '--', 'sh', '-c', 'seq 1 2000'], aliceEnv);
    expect(ok.stdout).toBe(Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join(''));
    expect(ok.code).toBe(0);

    // A failure says why, when the server knows.
    const missing = await runCli(['run', '--env', 'exit-code', '--', 'no-such-program-here'], aliceEnv);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/failed \(exit 127\); see: berth task show \S+\n  .*command not found/);

    // --tty runs it under a pseudo-terminal; without it, stdout is a pipe.
    const probe = ['sh', '-c', 'if test -t 1; then echo tty; else echo pipe; fi'];
    const tty = await runCli(['run', '--env', 'exit-code', '--tty', '--', ...probe], aliceEnv);
    expect(tty.stdout.trim()).toBe('tty');
    const pipe = await runCli(['run', '--env', 'exit-code', '--', ...probe], aliceEnv);
    expect(pipe.stdout).toBe('pipe\n');
  });

  it('50 MB of binary output arrives complete and in order through the CLI and the SSE follow stream', async () => {
    const e = await alice.post('/api/v1/environments', { provider: 'local', name: 'big-output' });
    const envId = e.json.environment.id as string;
    const ready = await waiter.until(
      () => alice.get(`/api/v1/environments/${envId}`),
      (r) => ['ready', 'failed'].includes(r.json.environment.state as string),
    );
    expect(ready.json.environment.state).toBe('ready');
    // The process keeps a copy of what it wrote, to compare with.
    const child = spawn(
      BERTH_BIN,
      ['run', '--env', 'big-output', '--', 'sh', '-c', 'head -c 52428800 /dev/urandom | tee big.bin'],
      { env: { PATH: process.env.PATH ?? '', ...aliceEnv }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    expect((await waitForExit(child)).code, err).toBe(0);
    const written = await readFile(join(s.dataDir, 'local', 'envs', envId, 'workspace', 'big.bin'));
    expect(written.length).toBe(52428800);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const cli = Buffer.concat(out);
    expect(cli.length).toBe(written.length);
    expect(sha(cli)).toBe(sha(written));

    // The same task's output over SSE (base64 frames), from the start.
    const id = err.match(/task ([0-9a-f-]{36})/)![1]!;
    const res = await fetch(`${s.url}/api/v1/tasks/${id}/logs?follow=1&encoding=base64`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    const parts: Buffer[] = [];
    let ended = false;
    for (const block of (await res.text()).split('\n\n')) {
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (block.includes('event: end')) ended = true;
      if (!block.includes('event: output') || !data) continue;
      parts.push(Buffer.from((JSON.parse(data.slice(6)) as { data: string }).data, 'base64'));
    }
    expect(ended).toBe(true);
    const sse = Buffer.concat(parts);
    expect(sse.length).toBe(written.length);
    expect(sha(sse)).toBe(sha(written));
    await alice.del(`/api/v1/environments/${envId}`);
  }, 180_000);

  it('a dropped connection while following is resumed from the last byte: nothing lost, nothing twice', async () => {
    // Between the CLI and the server: a proxy that can cut every open connection.
    const open = new Set<Socket>();
    let accepted = 0;
    const target = new URL(s.url);
    const proxy = createServer((c) => {
      accepted++;
      const u = connect(Number(target.port), target.hostname);
      open.add(c).add(u);
      c.pipe(u).pipe(c);
      for (const x of [c, u])
        x.on('error', () => undefined).on('close', () => {
          open.delete(x);
          c.destroy();
          u.destroy();
        });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    try {
      const child = spawn(
        BERTH_BIN,
        ['run', '--env', 'exit-code', '--', 'sh', '-c', 'for i in $(seq 1 40); do echo $i; sleep 0.05; done'],
        { env: { PATH: process.env.PATH ?? '', ...aliceEnv, BERTH_URL: `http://127.0.0.1:${port}` } },
      );
      let out = '';
      let cut = false;
      let acceptedAtCut = 0;
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (!cut && out.includes('\n5\n')) {
          cut = true;
          acceptedAtCut = accepted;
          for (const x of open) x.destroy();
        }
      });
      expect((await waitForExit(child)).code).toBe(0);
      expect(cut).toBe(true);
      expect(accepted).toBeGreaterThan(acceptedAtCut); // it did reconnect
      expect(out).toBe(Array.from({ length: 40 }, (_, i) => `${i + 1}\n`).join(''));
    } finally {
      for (const x of open) x.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });
});
