import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '@berth/db/testing';
import { ensureDocker } from '@berth/providers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { ADMIN, Client } from '../../apps/control-plane/src/testing/server.js';
import { waitForExit, waitForLine } from '../helpers/cli.js';

const run = promisify(execFile);
const skip = process.env.BERTH_SKIP_DOCKER === '1';
const script = fileURLToPath(new URL('../../docker/control-plane/build-offline.sh', import.meta.url));
let image = '';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * Starts `berth server` from the image as infra/k8s runs it: read-only root, writable tmpfs for
 * /tmp and the data directory, no capabilities. Host network, so it reaches the test Postgres on
 * the host's loopback and listens there only. `extraArgs` go before the image.
 */
function runImage(name: string, env: Record<string, string>, extraArgs: string[] = []): ChildProcess {
  const envArgs = Object.entries({ ...env, BERTH_HOST: '127.0.0.1' }).flatMap(([k, v]) => [
    '-e',
    `${k}=${v}`,
  ]);
  return spawn(
    'docker',
    [
      'run',
      '--rm',
      '--name',
      name,
      '--network',
      'host',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--tmpfs',
      '/var/lib/berth:uid=1000,gid=1000',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges:true',
      ...extraArgs,
      ...envArgs,
      image,
      'server',
    ],
    { stdio: 'pipe' },
  );
}

describe.skipIf(skip)('control-plane image (docker/control-plane/build-offline.sh)', () => {
  beforeAll(async () => {
    // Cached by input hash: a second run with an unchanged tree takes seconds. The first one may
    // also build the offline base image (debootstrap), hence the long limit.
    const { stdout } = await run('bash', [script], { maxBuffer: 1 << 24, timeout: 900_000 });
    image = stdout.trim().split('\n').at(-1) ?? '';
  }, 900_000);

  it('is tagged by input hash, and runs `berth --help` as a non-root user', async () => {
    expect(image).toMatch(/^berth-control-plane:[0-9a-f]{12}$/);
    const help = await run('docker', [
      'run',
      '--rm',
      '--entrypoint',
      'node_modules/.bin/berth',
      image,
      '--help',
    ]);
    expect(help.stdout).toContain('Usage: berth');
    expect(help.stdout).toMatch(/\bserver\b/);
    const id = await run('docker', ['run', '--rm', '--entrypoint', 'id', image, '-u']);
    expect(id.stdout.trim()).toBe('1000');
  });

  it('carries the shipped Dockerfile’s user, port and health check', async () => {
    const { stdout } = await run('docker', ['image', 'inspect', '-f', '{{json .Config}}', image]);
    const config = JSON.parse(stdout) as {
      User: string;
      ExposedPorts: Record<string, unknown>;
      Healthcheck?: { Test: string[] };
      Entrypoint: string[];
      Cmd: string[];
    };
    expect(config.User).toBe('1000:1000');
    expect(Object.keys(config.ExposedPorts)).toEqual(['8080/tcp']);
    expect(config.Healthcheck?.Test[0]).toBe('CMD');
    expect(config.Healthcheck?.Test.join(' ')).toContain('/healthz');
    expect(config.Entrypoint).toEqual(['/opt/berth/app/node_modules/.bin/berth']);
    expect(config.Cmd).toEqual(['server']);
  });

  it('ships no dev tooling', async () => {
    const ls = await run('docker', ['run', '--rm', '--entrypoint', 'ls', image, 'node_modules']);
    const names = ls.stdout.split('\n');
    for (const dev of ['vitest', 'typescript', 'eslint', 'next', 'playwright-core'])
      expect(names).not.toContain(dev);
    expect(names).toContain('tsx');
  });

  describe('serving against Postgres with a read-only root, like infra/k8s', () => {
    let db: TestDatabase;
    let child: ChildProcess | undefined;
    const name = `berth-image-test-${process.pid}`;
    beforeAll(async () => {
      db = await createTestDatabase();
    });
    afterAll(async () => {
      if (child && child.exitCode === null) {
        await run('docker', ['stop', '-t', '10', name]).catch(() => undefined);
        await waitForExit(child);
      }
      await db?.drop();
    });

    it('starts, migrates, and answers /healthz and /readyz', async () => {
      const port = await freePort();
      child = runImage(name, {
        DATABASE_URL: db.url,
        BERTH_PORT: String(port),
        BERTH_ADMIN_EMAIL: 'admin@example.com',
        BERTH_ADMIN_PASSWORD: 'image test password',
      });
      await waitForLine(child, /listening on/);
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const login = await fetch(`${base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'admin@example.com', password: 'image test password' }),
      });
      expect(login.status).toBe(200);
      // The image's own HEALTHCHECK command, run as Docker runs it, passes on the configured port.
      const { stdout } = await run('docker', [
        'image',
        'inspect',
        '-f',
        '{{json .Config.Healthcheck.Test}}',
        image,
      ]);
      const [kind, ...cmd] = JSON.parse(stdout) as string[];
      expect(kind).toBe('CMD');
      await expect(run('docker', ['exec', name, ...cmd])).resolves.toBeDefined();
      // And fails when the server is not there: the check is real.
      await expect(
        run('docker', ['exec', '-e', `BERTH_PORT=${await freePort()}`, name, ...cmd]),
      ).rejects.toThrow();
    });
  });
  // infra/compose.yaml's socket profile: Berth in its container, environments on the host's engine,
  // the gateway's files shared through BERTH_GATEWAY_ASSETS_DIR at the same path on the host.
  describe('docker environments from inside the image, through the host’s socket', () => {
    let db: TestDatabase;
    let child: ChildProcess | undefined;
    let assets = '';
    let live: LiveWaiter | undefined;
    const made: string[] = [];
    const name = `berth-image-socket-test-${process.pid}`;
    beforeAll(async () => {
      db = await createTestDatabase();
      assets = await mkdtemp(join(tmpdir(), 'berth-gateway-'));
      await chown(assets, 1000, 1000);
    });
    afterAll(async () => {
      live?.close();
      for (const id of made) await run('docker', ['rm', '-f', `berth-env-${id}`]).catch(() => undefined);
      if (child && child.exitCode === null) {
        await run('docker', ['stop', '-t', '10', name]).catch(() => undefined);
        await waitForExit(child);
      }
      await db?.drop();
      if (assets) await rm(assets, { recursive: true, force: true });
    });

    it(
      'creates an environment whose gateway runs from the shared files, and destroys it',
      { timeout: 240_000 },
      async () => {
        const base = ensureDocker();
        const port = await freePort();
        const socketGid = String((await stat('/var/run/docker.sock')).gid);
        child = runImage(
          name,
          {
            BERTH_GATEWAY_ASSETS_DIR: assets,
            BERTH_PROVIDERS: 'docker',
            BERTH_DOCKER_BASE_IMAGE: base,
            BERTH_ENV_DEFAULT_MEMORY_MB: '512',
            DATABASE_URL: db.url,
            BERTH_PORT: String(port),
            BERTH_ADMIN_EMAIL: ADMIN.email,
            BERTH_ADMIN_PASSWORD: ADMIN.password,
          },
          [
            '--group-add',
            socketGid,
            '-v',
            '/var/run/docker.sock:/var/run/docker.sock',
            '-v',
            `${assets}:${assets}`,
          ],
        );
        await waitForLine(child, /listening on/);
        const admin = new Client(`http://127.0.0.1:${port}`);
        await admin.login(ADMIN.email, ADMIN.password);
        live = await LiveWaiter.connect(admin);
        const r = await admin.post('/api/v1/environments', { name: 'from-the-image' });
        expect(r.status).toBe(201);
        const id = r.json.environment.id as string;
        made.push(id);
        const settle = () =>
          live!.until(
            () => admin.get(`/api/v1/environments/${id}`),
            (x) => ['ready', 'stopped', 'destroyed', 'failed'].includes(x.json.environment.state as string),
          );
        const env = (await settle()).json.environment;
        expect(env.stateReason ?? '').toBe('');
        expect(env.state).toBe('ready');
        expect((await fetch(`${env.gatewayUrl as string}/healthz`)).status).toBe(200);
        // The engine mounted the copies in the shared directory, not paths inside Berth's image.
        const { stdout } = await run('docker', [
          'inspect',
          '-f',
          '{{json .HostConfig.Binds}}',
          `berth-env-${id}`,
        ]);
        const sources = (JSON.parse(stdout) as string[]).map((b) => b.split(':')[0]!);
        expect(sources).toEqual([
          join(assets, 'node'),
          join(assets, 'gateway.mjs'),
          join(assets, 'node-pty'),
        ]);

        await admin.del(`/api/v1/environments/${id}`);
        expect((await settle()).json.environment.state).toBe('destroyed');
      },
    );
  });
});
