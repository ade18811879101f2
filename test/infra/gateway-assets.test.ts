import { chmod, mkdtemp, readFile, rm, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultGatewayAssets, stageGatewayAssets } from '../../packages/providers/src/assets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// BERTH_GATEWAY_ASSETS_DIR: the docker provider's bind-mount sources, copied where the engine
// sees them at the same path (infra/compose.yaml shares that directory with the engine).
describe('gateway assets staged for an engine on another filesystem', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'berth-assets-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('copies this installation’s node, gateway bundle and node-pty there, and the provider uses those paths', async () => {
    const own = defaultGatewayAssets({});
    const dir = join(tmp, 'shared');
    await mkdir(dir);
    const staged = defaultGatewayAssets({}, dir);
    expect(staged).toEqual({
      node: join(dir, 'node'),
      bundle: join(dir, 'gateway.mjs'),
      nodePtyDir: join(dir, 'node-pty'),
    });
    expect((await stat(staged.node)).size).toBe((await stat(own.node)).size);
    expect((await stat(staged.node)).mode & 0o111).not.toBe(0);
    expect((await readFile(staged.bundle)).equals(await readFile(own.bundle))).toBe(true);
    expect(await readFile(join(staged.nodePtyDir, 'package.json'), 'utf8')).toBe(
      await readFile(join(own.nodePtyDir, 'package.json'), 'utf8'),
    );
  });

  it('copies nothing again while a source is unchanged, and replaces a changed one (new file, not rewritten)', async () => {
    const src = join(tmp, 'src');
    await mkdir(src, { recursive: true });
    const bundle = join(src, 'gateway.mjs');
    await writeFile(bundle, 'v1');
    const dir = join(tmp, 'shared2');
    await mkdir(dir);
    const first = stageGatewayAssets({ bundle }, dir);
    const before = await stat(first.bundle!);
    stageGatewayAssets({ bundle }, dir);
    expect((await stat(first.bundle!)).ino).toBe(before.ino);

    await writeFile(bundle, 'v2 longer');
    await utimes(bundle, new Date(), new Date(Date.now() + 5000));
    stageGatewayAssets({ bundle }, dir);
    expect(await readFile(first.bundle!, 'utf8')).toBe('v2 longer');
    // A rename: running environments keep the file they mounted.
    expect((await stat(first.bundle!)).ino).not.toBe(before.ino);
  });

  it('fails with the directory and what to do when it cannot be written', async () => {
    const file = join(tmp, 'not-a-dir');
    await writeFile(file, '');
    await chmod(file, 0o644);
    const bundle = join(tmp, 'src', 'gateway.mjs');
    expect(() => stageGatewayAssets({ bundle }, join(file, 'sub'))).toThrow(
      expect.objectContaining({
        message: expect.stringContaining(`BERTH_GATEWAY_ASSETS_DIR ${join(file, 'sub')}`),
        hint: expect.stringContaining('writable by uid'),
      }),
    );
    expect(() => stageGatewayAssets({ bundle }, 'relative/dir')).toThrow(/absolute path/);
  });
});
