import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider, LocalProvider, WarmPool } from '@berth/providers';
import { ensureGatewayBundle, localHarness } from '@berth/providers/testing';

describe('warm pool', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-warm-'));
  let local: LocalProvider;
  beforeAll(() => {
    ensureGatewayBundle();
    local = new LocalProvider({ dataDir });
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('hands out a ready environment, maps the new id to it and refills', async () => {
    const pool = new WarmPool({ provider: local, size: 1, template: { ownerId: 'pool' }, idPrefix: 'wp' });
    await pool.fill();
    expect(pool.available).toBe(1);
    const claim = await pool.claim('env-a');
    expect(claim?.info.state).toBe('ready');
    expect((await fetch(`${claim?.info.gatewayUrl}/healthz`)).ok).toBe(true);
    expect(pool.resolve('env-a')).toBe(claim?.backingId);
    expect((await pool.claim('env-a'))?.backingId).toBe(claim?.backingId);
    await pool.fill();
    expect(pool.available).toBe(1);
    await pool.drain();
    await local.destroy(claim?.backingId ?? '');
    expect(await localHarness(local, dataDir).leftovers('wp-')).toEqual([]);
  });

  it('skips members that died in the pool and returns undefined when empty', async () => {
    const fake = new FakeProvider();
    const pool = new WarmPool({ provider: fake, size: 2, template: { ownerId: 'pool' } });
    await pool.fill();
    const [first] = [...fake.envs.keys()];
    fake.killFromOutside(first ?? '');
    const claim = await pool.claim('env-b');
    expect(claim?.backingId).not.toBe(first);
    expect(fake.envs.has(first ?? '')).toBe(false);
    await pool.drain();
    expect(
      await new WarmPool({ provider: fake, size: 0, template: { ownerId: 'x' } }).claim('env-c'),
    ).toBeUndefined();
  });
});
