import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentSpec } from '@berth/protocol';
import { ProviderError } from '../errors.js';
import { reconcile } from '../reconcile.js';
import { serveRepoWithToken } from './git-server.js';
import type { EnvironmentProvider } from '../types.js';

/** What the shared suite needs from a provider beyond the interface, per provider. */
export interface BehaviourHarness {
  provider: EnvironmentProvider;
  /** A real gateway answers /healthz at gatewayUrl (false for the fake). */
  hasGateway: boolean;
  writeFile(id: string, rel: string, content: string): Promise<void>;
  readFile(id: string, rel: string): Promise<string>;
  killFromOutside(id: string): Promise<void>;
  /**
   * Whether environments can reach this host's loopback and files (a repo served by the test);
   * false for remote ones (real Modal), which skip the repo cases.
   */
  reachesTestHost?: boolean;
  /** uid the environment's processes run as, when the provider can tell. */
  uid?(id: string): Promise<number>;
  /** Resources (containers, processes, directories) left for ids starting with `prefix`. */
  leftovers(prefix: string): Promise<string[]>;
}

/** A bare git repo with one commit, on a file:// URL. */
export function makeBareRepo(): { url: string; path: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'berth-repo-'));
  const work = join(root, 'work');
  const git = (...args: string[]): void => void execFileSync('git', args, { cwd: root, stdio: 'ignore' });
  git('init', '-q', '-b', 'main', work);
  execFileSync(
    'sh',
    ['-c', 'echo hello > README.md && git add . && git -c user.email=t@t -c user.name=t commit -qm init'],
    { cwd: work },
  );
  git('clone', '-q', '--bare', work, join(root, 'repo.git'));
  return {
    url: `file://${join(root, 'repo.git')}`,
    path: join(root, 'repo.git'),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

async function expectProviderError(p: Promise<unknown>, code: string): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  const pe = err as ProviderError;
  expect(pe.code).toBe(code);
  expect(pe.hint.length).toBeGreaterThan(0);
  return pe;
}

/** The behavioural suite every provider runs (fake, local, docker). */
export function behaviourSuite(name: string, makeHarness: () => Promise<BehaviourHarness>): void {
  describe(`provider behaviour: ${name}`, () => {
    let h: BehaviourHarness;
    const prefix = `bt${process.pid}-`;
    let n = 0;
    const spec = (extra: Partial<EnvironmentSpec> = {}): EnvironmentSpec => ({
      id: `${prefix}${++n}`,
      ownerId: 'owner-1',
      ...extra,
    });

    beforeAll(async () => {
      h = await makeHarness();
    });
    afterEach(async () => {
      for (const e of await h.provider.list()) if (e.id.startsWith(prefix)) await h.provider.destroy(e.id);
      expect(await h.leftovers(prefix)).toEqual([]);
    });

    it('creates a ready environment whose gateway answers, and create is idempotent on the id', async () => {
      const s = spec();
      const first = await h.provider.create(s);
      expect(first.created).toBe(true);
      expect(first.state).toBe('ready');
      expect(first.node.length).toBeGreaterThan(0);
      expect(first.isolation.length).toBeGreaterThan(0);
      if (h.hasGateway) {
        const res = await fetch(`${first.gatewayUrl}/healthz`);
        expect(res.ok).toBe(true);
        expect(((await res.json()) as { environmentId: string }).environmentId).toBe(s.id);
      }
      const again = await h.provider.create(s);
      expect(again.created).toBe(false);
      expect(again.gatewayUrl).toBe(first.gatewayUrl);
    });

    it('keeps /workspace files across stop and start', async () => {
      const s = spec();
      await h.provider.create(s);
      await h.writeFile(s.id, 'kept.txt', 'still here');
      await h.provider.stop(s.id);
      expect((await h.provider.inspect(s.id)).state).toBe('stopped');
      const started = await h.provider.start(s.id);
      expect(started.state).toBe('ready');
      expect(await h.readFile(s.id, 'kept.txt')).toBe('still here');
      if (h.hasGateway) expect((await fetch(`${started.gatewayUrl}/healthz`)).ok).toBe(true);
    });

    it('notices an environment killed from outside', async () => {
      const s = spec();
      await h.provider.create(s);
      await h.killFromOutside(s.id);
      const info = await h.provider.inspect(s.id);
      expect(info.state).toBe('failed');
      expect(info.gatewayUrl).toBeNull();
    });

    it('destroy leaves nothing behind and is idempotent', async () => {
      const s = spec();
      await h.provider.create(s);
      await h.provider.destroy(s.id);
      await h.provider.destroy(s.id);
      expect((await h.provider.inspect(s.id)).state).toBe('missing');
      expect(await h.leftovers(prefix)).toEqual([]);
    });

    it('runs the environment as a non-root user', async ({ skip }) => {
      if (!h.uid) skip();
      const s = spec();
      await h.provider.create(s);
      expect(await h.uid!(s.id)).not.toBe(0);
    });

    it('rejects a bad berth.yaml with the field and a hint, creating nothing', async () => {
      const s = spec({ berthYaml: 'setup: echo not-a-list\n' });
      const err = await expectProviderError(h.provider.create(s), 'invalid_config');
      expect(err.message).toContain('setup');
      expect((await h.provider.inspect(s.id)).state).toBe('missing');
      expect(await h.leftovers(prefix)).toEqual([]);
    });

    it('rejects limits above the operator maximum with the field named', async () => {
      const s = spec({ resources: { memoryMb: 10_000_000 } });
      const err = await expectProviderError(h.provider.create(s), 'invalid_spec');
      expect(err.message).toContain('resources.memoryMb');
      expect((await h.provider.inspect(s.id)).state).toBe('missing');
    });

    describe('with a repo', () => {
      const token = 'sekrit-token-123';
      let repo: ReturnType<typeof makeBareRepo>;
      let served: Awaited<ReturnType<typeof serveRepoWithToken>>;
      beforeAll(async () => {
        repo = makeBareRepo();
        served = await serveRepoWithToken(repo.path, token);
      });
      afterAll(async () => {
        await served.close();
        repo.cleanup();
      });

      it('clones over HTTP with the token, and leaves the token nowhere in the workspace git config', async ({
        skip,
      }) => {
        if (!h.hasGateway || h.reachesTestHost === false) skip();
        const s = spec({ repo: { url: served.url, ref: 'main', token } });
        await h.provider.create(s);
        expect((await h.readFile(s.id, 'README.md')).trim()).toBe('hello');
        const config = await h.readFile(s.id, '.git/config');
        expect(config).toContain(served.url);
        expect(config).not.toContain(token);
        expect(config).not.toContain(Buffer.from(`x-access-token:${token}`).toString('base64'));
        expect(config).not.toContain('extraHeader');
      });

      it('fails a clone with a wrong token with a hint and no token in the message, creating nothing', async ({
        skip,
      }) => {
        if (!h.hasGateway || h.reachesTestHost === false) skip();
        const s = spec({ repo: { url: served.url, token: 'wrong-token-456' } });
        const err = await expectProviderError(h.provider.create(s), 'clone_failed');
        expect(err.message).not.toContain('wrong-token-456');
        expect((await h.provider.inspect(s.id)).state).toBe('missing');
        expect(await h.leftovers(prefix)).toEqual([]);
      });

      it('clones a file:// repo at a ref', async ({ skip }) => {
        if (!h.hasGateway || h.reachesTestHost === false) skip();
        const s = spec({ repo: { url: repo.url, ref: 'main' } });
        await h.provider.create(s);
        expect((await h.readFile(s.id, 'README.md')).trim()).toBe('hello');
      });
    });

    it('reconcile reports orphans and vanished environments', async () => {
      const s = spec();
      await h.provider.create(s);
      const report = await reconcile(h.provider, [`${prefix}gone`]);
      expect(report.orphans.map((o) => o.id)).toContain(s.id);
      expect(report.missing).toEqual([`${prefix}gone`]);
    });
  });
}
