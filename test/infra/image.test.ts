import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '@berth/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
      // Host network: the test Postgres listens on the host's loopback.
      child = spawn(
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
          '-e',
          `DATABASE_URL=${db.url}`,
          '-e',
          `BERTH_PORT=${port}`,
          '-e',
          'BERTH_HOST=127.0.0.1',
          '-e',
          'BERTH_ADMIN_EMAIL=admin@example.com',
          '-e',
          'BERTH_ADMIN_PASSWORD=image test password',
          image,
          'server',
        ],
        { stdio: 'pipe' },
      );
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
});
