import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { gatewayAssetsIn } from '../../packages/providers/src/assets.js';
import { generatedKeyFiles } from './shared-settings.js';

const file = fileURLToPath(new URL('../../infra/compose.yaml', import.meta.url));
// Only the variables below, never an operator's infra/.env (docker-compose 1.29 wants a regular file).
const emptyEnvFile = join(mkdtempSync(join(tmpdir(), 'berth-compose-env-')), 'empty.env');
writeFileSync(emptyEnvFile, '');
// Compose interpolates these; the file refuses to start without them (`:?` errors).
const env = { ...process.env, POSTGRES_PASSWORD: 'pw', BERTH_SIGNING_KEYS: '[]', BERTH_WEBHOOK_KEY: 'a2V5' };

/**
 * The real validator: the compose plugin, else Debian's docker-compose 1.29
 * (scripts/prereqs/25-compose.sh installs it).
 */
function composeCli(): string[] | null {
  if (spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0)
    return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0) return ['docker-compose'];
  return null;
}

// The subset of the compose specification this file uses, strictly: a typo in a key fails.
const Healthcheck = z.strictObject({
  test: z.array(z.string()).min(2),
  interval: z.string().optional(),
  timeout: z.string().optional(),
  retries: z.number().int().positive().optional(),
  start_period: z.string().optional(),
});
const Service = z.strictObject({
  image: z.string().min(1),
  build: z.strictObject({ context: z.string(), dockerfile: z.string() }).optional(),
  profiles: z.array(z.string().min(1)).optional(),
  restart: z.enum(['no', 'always', 'on-failure', 'unless-stopped']),
  depends_on: z
    .record(z.string(), z.strictObject({ condition: z.enum(['service_started', 'service_healthy']) }))
    .optional(),
  ports: z.array(z.string().regex(/^(\$\{[^}]+\}|[\d.]+):(\$\{[^}]+\}|\d+):\d+$/)).optional(),
  environment: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), z.string()).optional(),
  volumes: z.array(z.string().regex(/^[^:]+:[^:]+(:ro)?$/)).optional(),
  tmpfs: z.array(z.string()).optional(),
  read_only: z.boolean().optional(),
  cap_drop: z.array(z.string()).optional(),
  security_opt: z.array(z.string()).optional(),
  group_add: z.array(z.string()).optional(),
  privileged: z.boolean().optional(),
  healthcheck: Healthcheck.optional(),
});
const ComposeFile = z.strictObject({
  services: z.record(z.string(), Service),
  volumes: z.record(z.string(), z.null()),
});

async function load() {
  const doc = parse(await readFile(file, 'utf8'), { merge: true }) as Record<string, unknown>;
  // x-* keys are compose extensions (here the shared `x-berth` anchor); compose ignores them.
  const r = ComposeFile.safeParse(
    Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith('x-'))),
  );
  if (!r.success) throw new Error(z.prettifyError(r.error));
  return r.data;
}

describe('infra/compose.yaml', () => {
  afterAll(() => rmSync(dirname(emptyEnvFile), { recursive: true, force: true }));

  it('matches the compose schema subset, with references that resolve', async () => {
    const c = await load();
    for (const [name, s] of Object.entries(c.services)) {
      for (const dep of Object.keys(s.depends_on ?? {}))
        expect(c.services[dep], `${name} depends on ${dep}`).toBeDefined();
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (!src.startsWith('/') && !src.startsWith('.'))
          expect(Object.keys(c.volumes), `${name} mounts ${src}`).toContain(src);
      }
    }
  });

  it('runs Berth hardened against Postgres, in both Docker-access modes', async () => {
    const c = await load();
    const socket = c.services.berth!;
    const dind = c.services['berth-dind']!;
    expect(c.services.postgres?.healthcheck).toBeDefined();
    expect(socket.profiles).toEqual(['socket']);
    expect(dind.profiles).toEqual(['dind']);
    for (const s of [socket, dind]) {
      expect(s.read_only).toBe(true);
      expect(s.cap_drop).toEqual(['ALL']);
      expect(s.security_opt).toContain('no-new-privileges:true');
      expect(s.privileged).toBeUndefined();
      expect(s.depends_on?.postgres?.condition).toBe('service_healthy');
      expect(s.environment?.DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\/berth$/);
      expect(s.environment?.BERTH_SIGNING_KEYS).toBeDefined();
      expect(s.healthcheck?.test.join(' ')).toContain('/readyz');
      expect(s.build?.dockerfile).toBe('docker/control-plane/Dockerfile');
    }
    expect(socket.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(dind.environment?.DOCKER_HOST).toBe('tcp://dind:2376');
    expect(c.services.dind?.privileged).toBe(true);
  });

  it('takes every key the control plane would otherwise generate from infra/.env, required', async () => {
    const raw = parse(await readFile(file, 'utf8'), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string> }>;
    };
    const example = await readFile(new URL('../../infra/.env.example', import.meta.url), 'utf8');
    const generated = await generatedKeyFiles();
    expect(generated.length).toBeGreaterThanOrEqual(2);
    for (const { file: key, variable } of generated) {
      expect(variable, `documented setting for <data dir>/keys/${key}`).toBeDefined();
      for (const service of ['berth', 'berth-dind'])
        expect(raw.services[service]?.environment?.[variable!], `${service}: ${variable}`).toMatch(
          new RegExp(`^\\$\\{${variable}:\\?`),
        );
      expect(example, `infra/.env.example: ${variable}`).toMatch(new RegExp(`^${variable}=`, 'm'));
    }
  });

  it('shares every file the docker provider bind-mounts with the engine, at the same path, in both profiles', async () => {
    const c = await load();
    const mounts = (service: string) =>
      new Map((c.services[service]?.volumes ?? []).map((v) => [v.split(':')[1]!, v.split(':')[0]!]));
    const covered = (dir: string, path: string) => path.startsWith(`${dir}/`);
    for (const [service, engine] of [
      ['berth', 'host'],
      ['berth-dind', 'dind'],
    ] as const) {
      const dir = c.services[service]?.environment?.BERTH_GATEWAY_ASSETS_DIR;
      expect(dir, `${service}: BERTH_GATEWAY_ASSETS_DIR`).toMatch(/^\/[^:]+$/);
      // What the provider mounts, as the engine will resolve it.
      for (const path of Object.values(gatewayAssetsIn(dir!))) expect(covered(dir!, path), path).toBe(true);
      const source = mounts(service).get(dir!);
      expect(source, `${service} mounts ${dir}`).toBeDefined();
      if (engine === 'host') {
        // The host's engine resolves bind sources on the host: the host path must be the same.
        expect(source).toBe(dir);
      } else {
        // A named volume, mounted in the dind engine's container at the same path.
        expect(Object.keys(c.volumes)).toContain(source);
        expect(mounts('dind').get(dir!), `dind mounts ${source} at ${dir}`).toBe(source);
      }
    }
    // A fresh volume takes its owner from the image's directory: the service user must own it.
    const dockerfile = await readFile(
      new URL('../../docker/control-plane/Dockerfile', import.meta.url),
      'utf8',
    );
    const dir = c.services.berth!.environment!.BERTH_GATEWAY_ASSETS_DIR!;
    expect(dockerfile).toMatch(new RegExp(`chown 1000:1000 [^\\n]*${dir}`));
  });

  const cli = composeCli();
  it(`passes \`${cli?.join(' ') ?? 'docker compose'} config\` in each profile`, () => {
    if (!cli)
      throw new Error('no compose CLI: run scripts/prereqs/25-compose.sh (or install the compose plugin)');
    for (const profile of ['socket', 'dind']) {
      const [cmd, ...pre] = cli;
      const r = spawnSync(
        cmd!,
        [...pre, '--env-file', emptyEnvFile, '-f', file, '--profile', profile, 'config', '-q'],
        {
          encoding: 'utf8',
          env,
        },
      );
      expect(r.stderr, `profile ${profile}`).toBe('');
      expect(r.status).toBe(0);
    }
    // The validator really checks: a required secret left unset, or a volume nobody declared, fails.
    const [cmd, ...pre] = cli;
    const { BERTH_WEBHOOK_KEY: _unset, ...noKey } = env;
    const missing = spawnSync(
      cmd!,
      [...pre, '--env-file', emptyEnvFile, '-f', file, '--profile', 'socket', 'config', '-q'],
      {
        encoding: 'utf8',
        env: noKey,
      },
    );
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('set BERTH_WEBHOOK_KEY in infra/.env');
  });

  it('the compose CLI refuses a file with an undeclared volume (the check is real)', async () => {
    if (!cli) throw new Error('no compose CLI: run scripts/prereqs/25-compose.sh');
    const dir = await mkdtemp(join(tmpdir(), 'berth-compose-'));
    try {
      const broken = join(dir, 'compose.yaml');
      const text = await readFile(file, 'utf8');
      expect(text).toContain('- berth-gateway:/var/lib/berth-gateway:ro');
      await writeFile(broken, text.replace('- berth-gateway:/var/lib/berth-gateway:ro', '- typo:/x:ro'));
      const [cmd, ...pre] = cli;
      const r = spawnSync(
        cmd!,
        [...pre, '--env-file', emptyEnvFile, '-f', broken, '--profile', 'dind', 'config', '-q'],
        {
          encoding: 'utf8',
          env,
        },
      );
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/typo/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
