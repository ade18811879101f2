import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { repoRoot } from '../assets.js';
import { containerName, DockerProvider, LABEL_ENV } from '../docker.js';
import type { FakeProvider } from '../fake.js';
import type { LocalProvider } from '../local.js';
import { pollUntil } from '../wait.js';
import type { BehaviourHarness } from './behaviour.js';

/** Builds apps/gateway/dist/gateway.mjs when it is missing or older than the gateway sources. */
export function ensureGatewayBundle(): void {
  const bundle = join(repoRoot, 'apps/gateway/dist/gateway.mjs');
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  const stale =
    !existsSync(bundle) ||
    Math.max(newest(join(repoRoot, 'apps/gateway/src')), newest(join(repoRoot, 'packages/terminal/src'))) >
      statSync(bundle).mtimeMs;
  if (stale)
    execFileSync(
      'flock',
      ['/tmp/berth-gateway-build.lock', 'npm', 'run', '-s', 'build', '-w', '@berth/gateway'],
      { cwd: repoRoot, stdio: 'ignore' },
    );
}

export function fakeHarness(provider: FakeProvider): BehaviourHarness {
  const env = (id: string) => {
    const e = provider.envs.get(id);
    if (!e) throw new Error(`no fake environment ${id}`);
    return e;
  };
  return {
    provider,
    hasGateway: false,
    writeFile: async (id, rel, content) => void env(id).files.set(rel, content),
    readFile: async (id, rel) => env(id).files.get(rel) ?? '',
    killFromOutside: async (id) => provider.killFromOutside(id),
    leftovers: async (prefix) => [...provider.envs.keys()].filter((id) => id.startsWith(prefix)),
  };
}

function processesUnder(path: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(path)) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

export function localHarness(provider: LocalProvider, dataDir: string): BehaviourHarness {
  const ws = (id: string, rel: string) => resolve(provider.dir(id), 'workspace', rel);
  return {
    provider,
    hasGateway: true,
    writeFile: async (id, rel, content) => {
      await mkdir(dirname(ws(id, rel)), { recursive: true });
      await writeFile(ws(id, rel), content);
    },
    readFile: (id, rel) => readFile(ws(id, rel), 'utf8'),
    killFromOutside: async (id) => {
      const pid = await provider.pid(id);
      if (!pid) throw new Error(`${id} has no process`);
      process.kill(-pid, 'SIGKILL');
      // Not an event we can subscribe to for a process group: poll /proc with a deadline.
      await pollUntil(() => processesUnder(provider.dir(id)).length === 0, 10_000);
    },
    leftovers: async (prefix) => {
      const envs = join(dataDir, 'envs');
      const dirs = existsSync(envs) ? readdirSync(envs).filter((d) => d.startsWith(prefix)) : [];
      const procs = processesUnder(join(envs, prefix)).map((p) => `pid ${p}`);
      return [...dirs, ...procs];
    },
  };
}

export function dockerHarness(provider: DockerProvider): BehaviourHarness {
  const capture = async (id: string, cmd: string[]): Promise<string> => {
    const lines: string[] = [];
    const code = await provider.exec(id, cmd, (l) => lines.push(l));
    if (code !== 0) throw new Error(`${cmd.join(' ')} exited ${code}: ${lines.join('\n')}`);
    return lines.join('\n');
  };
  return {
    provider,
    hasGateway: true,
    writeFile: async (id, rel, content) =>
      void (await capture(id, ['sh', '-c', 'printf %s "$1" > "/workspace/$2"', 'sh', content, rel])),
    readFile: (id, rel) => capture(id, ['cat', `/workspace/${rel}`]),
    killFromOutside: async (id) => {
      const c = provider.docker.getContainer(containerName(id));
      const exited = c.wait();
      await c.kill({ signal: 'SIGKILL' });
      await exited;
    },
    uid: async (id) => {
      const uids = (await capture(id, ['ps', '-eo', 'uid=']))
        .split('\n')
        .map((s) => Number(s.trim()))
        .filter((n) => !Number.isNaN(n));
      return uids.includes(0) ? 0 : (uids[0] ?? 0);
    },
    leftovers: async (prefix) => {
      const cs = await provider.docker.listContainers({ all: true, filters: { label: [LABEL_ENV] } });
      const vols = (await provider.docker.listVolumes()).Volumes ?? [];
      const nets = await provider.docker.listNetworks();
      return [
        ...cs
          .filter((c) => (c.Labels[LABEL_ENV] ?? '').startsWith(prefix))
          .map((c) => `container ${c.Names[0] ?? c.Id}`),
        ...vols.filter((v) => v.Name.includes(prefix)).map((v) => `volume ${v.Name}`),
        ...nets.filter((n) => n.Name.includes(prefix)).map((n) => `network ${n.Name}`),
      ];
    },
  };
}
