import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultKeyFile, loadKeys, MissingKeysError } from './keys.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('signing key file', () => {
  it('processes starting together on one data dir end up with the same key', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-keys-'));
    const sets = await Promise.all(Array.from({ length: 8 }, () => loadKeys({ dataDir: dir! })));
    const kids = new Set(sets.map((k) => k.active.kid));
    expect(kids.size).toBe(1);
    const onDisk = JSON.parse(await readFile(defaultKeyFile(dir), 'utf8')) as { kid: string }[];
    expect(onDisk.map((k) => k.kid)).toEqual([...kids]);
    expect((await stat(defaultKeyFile(dir))).mode & 0o777).toBe(0o600);
  });

  it('with create: false, a missing file is an error and nothing is written', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-keys-'));
    await expect(loadKeys({ dataDir: dir, create: false })).rejects.toBeInstanceOf(MissingKeysError);
    await expect(stat(defaultKeyFile(dir))).rejects.toThrow(/ENOENT/);
  });
});
