import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../docker/control-plane/', import.meta.url);

/** Instructions of a Dockerfile, continuation lines joined, comments dropped, split into stages. */
async function stages(name: string): Promise<string[][]> {
  return parse(await readFile(new URL(name, dir), 'utf8'));
}

function parse(dockerfile: string): string[][] {
  const text = dockerfile.replace(/\\\n/g, ' ');
  const out: string[][] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    if (/^FROM\s/i.test(line)) out.push([]);
    out.at(-1)?.push(line.replace(/\s+/g, ' '));
  }
  return out;
}

// The registry image's build stage needs a registry (npm ci), so it cannot be built here; its final
// stage is what build-offline.sh builds, which test/infra/image.test.ts builds and runs.
describe('docker/control-plane/Dockerfile', () => {
  it('is multi-stage, ships the pruned closure only, and runs as a non-root user', async () => {
    const s = await stages('Dockerfile');
    expect(s.length).toBeGreaterThanOrEqual(2);
    const [build, final] = [s[0]!, s.at(-1)!];
    expect(build.join('\n')).toMatch(/npm ci/);
    expect(build.join('\n')).toMatch(/prune\.mjs --root \/src --out \/out/);
    expect(final.join('\n')).toContain('COPY --from=build /out /opt/berth/app');
    expect(final.filter((l) => /^(RUN|COPY)/.test(l)).join('\n')).not.toMatch(/npm (ci|install)/);
    const users = final.filter((l) => l.startsWith('USER '));
    expect(users.at(-1)).toBe('USER 1000:1000');
    expect(final.some((l) => l.startsWith('HEALTHCHECK') && l.includes('/healthz'))).toBe(true);
  });

  it('is built offline from its own final stage: the same user, ports, health check, environment and entrypoint', async () => {
    const real = await readFile(new URL('Dockerfile', dir), 'utf8');
    const offline = spawnSync('bash', [fileURLToPath(new URL('build-offline.sh', dir)), '--dockerfile'], {
      encoding: 'utf8',
    });
    expect(offline.stderr).toBe('');
    expect(offline.status).toBe(0);
    const prefix = await readFile(new URL('Dockerfile.offline', dir), 'utf8');
    expect(offline.stdout.startsWith(prefix)).toBe(true);
    // Everything after the prefix is the shipped final stage, line for line, but the app's source.
    const finalStage = real.split('\n').slice(real.split('\n').findLastIndex((l) => /^FROM\s/.test(l)) + 1);
    const copied = offline.stdout.slice(prefix.length).split('\n');
    expect(copied).toEqual(
      finalStage.map((l) => (l === 'COPY --from=build /out /opt/berth/app' ? 'COPY app /opt/berth/app' : l)),
    );
    expect(copied).toContain('COPY app /opt/berth/app');

    const online = (await stages('Dockerfile')).at(-1)!;
    const built = parse(offline.stdout).at(-1)!;
    const pick = (lines: string[]) =>
      lines
        .filter((l) => /^(USER|ENTRYPOINT|CMD|EXPOSE|WORKDIR|HEALTHCHECK|ENV)\s/.test(l))
        .filter((l) => l !== 'USER root');
    expect(pick(built)).toEqual(pick(online));
    expect(pick(online).filter((l) => /^(USER|EXPOSE|HEALTHCHECK)/.test(l))).toEqual([
      'USER 1000:1000',
      'EXPOSE 8080',
      expect.stringMatching(/^HEALTHCHECK .*CMD \["node", "-e", ".*process\.env\.BERTH_PORT.*\/healthz/),
    ]);
    const env = (lines: string[]) =>
      Object.fromEntries(
        lines
          .filter((l) => l.startsWith('ENV '))
          .flatMap((l) => l.slice(4).split(' '))
          .map((kv) => kv.split('=') as [string, string]),
      );
    expect(env(online)).toMatchObject({
      NODE_ENV: 'production',
      BERTH_HOST: '0.0.0.0',
      BERTH_DATA_DIR: '/var/lib/berth',
    });
  });
});
