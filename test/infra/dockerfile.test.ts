import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../docker/control-plane/', import.meta.url);

/** Instructions of a Dockerfile, continuation lines joined, comments dropped, split into stages. */
async function stages(name: string): Promise<string[][]> {
  const text = (await readFile(new URL(name, dir), 'utf8')).replace(/\\\n/g, ' ');
  const out: string[][] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    if (/^FROM\s/i.test(line)) out.push([]);
    out.at(-1)?.push(line.replace(/\s+/g, ' '));
  }
  return out;
}

// The registry image (Dockerfile) cannot be built here (no registry); this keeps it honest and in
// step with the offline one, which test/infra/image.test.ts builds and runs.
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

  it('has the same user, environment and entrypoint as the offline build', async () => {
    const online = (await stages('Dockerfile')).at(-1)!;
    const offline = (await stages('Dockerfile.offline')).at(-1)!;
    const pick = (lines: string[]) =>
      lines.filter((l) => /^(USER|ENTRYPOINT|CMD|EXPOSE|WORKDIR)\s/.test(l)).filter((l) => l !== 'USER root');
    expect(pick(online)).toEqual(pick(offline));
    const env = (lines: string[]) =>
      Object.fromEntries(
        lines
          .filter((l) => l.startsWith('ENV '))
          .flatMap((l) => l.slice(4).split(' '))
          .map((kv) => kv.split('=') as [string, string]),
      );
    const { HOME: _h1, ...a } = env(online);
    const { HOME: _h2, ...b } = env(offline);
    expect(a).toEqual(b);
    expect(a).toMatchObject({
      NODE_ENV: 'production',
      BERTH_HOST: '0.0.0.0',
      BERTH_DATA_DIR: '/var/lib/berth',
    });
  });
});
