import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '@berth/db';
import { createTestDatabase, type TestDatabase } from '@berth/db/testing';
import { ensureGatewayBundle } from '@berth/providers/testing';
import type { FakeModal } from '../../../../packages/providers/src/modal/fake/modal.js';
import {
  fakeProcesses,
  fakeProvider,
  sandboxOf,
  startFake,
} from '../../../../packages/providers/src/modal/testing.js';
import { PostgresProviderStateStore } from './provider-state.js';

// Two control planes on one Postgres: each its own pool and store, sharing only the database.
let db: TestDatabase;
let poolA: Pool;
let poolB: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  poolA = createPool(db.url, 2);
  poolB = createPool(db.url, 2);
});
afterAll(async () => {
  await poolA?.end();
  await poolB?.end();
  await db?.drop();
});

describe('provider state in Postgres', () => {
  it('what one control plane puts another reads; scoped by provider; delete is idempotent', async () => {
    const a = new PostgresProviderStateStore(poolA, 'modal');
    const b = new PostgresProviderStateStore(poolB, 'modal');
    const other = new PostgresProviderStateStore(poolB, 'other');
    await a.put('env-1', { desired: 'running', imageId: 'im-1' });
    await a.put('env-1', { desired: 'stopped', imageId: 'im-2' });
    await a.put('env-2', { desired: 'running', imageId: 'im-3' });
    expect(await b.get('env-1')).toEqual({ desired: 'stopped', imageId: 'im-2' });
    expect(await b.list()).toEqual([
      { id: 'env-1', state: { desired: 'stopped', imageId: 'im-2' } },
      { id: 'env-2', state: { desired: 'running', imageId: 'im-3' } },
    ]);
    expect(await other.get('env-1')).toBeUndefined();
    expect(await other.list()).toEqual([]);
    await b.delete('env-1');
    await b.delete('env-1');
    expect(await a.get('env-1')).toBeUndefined();
    await a.delete('env-2');
  });

  describe('the modal provider on it (FakeModal)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-pstate-'));
    let fake: FakeModal;
    beforeAll(async () => {
      ensureGatewayBundle();
      fake = await startFake(dir);
    });
    afterAll(async () => {
      await fake?.close();
      expect(fakeProcesses(dir)).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    });

    it('a stop on one control plane and a start on another, with no shared disk', async () => {
      const id = `ps${process.pid}`;
      const a = fakeProvider(fake, { state: new PostgresProviderStateStore(poolA, 'modal') });
      const b = fakeProvider(fake, { state: new PostgresProviderStateStore(poolB, 'modal') });
      try {
        await a.create({ id, ownerId: 'owner-1', resources: { cpus: 1, memoryMb: 768 } });
        await writeFile(join(sandboxOf(fake, id).spec.dir, 'upper/workspace/notes.txt'), 'kept');
        await a.stop(id);
        expect((await b.inspect(id)).state).toBe('stopped');
        expect((await b.list()).find((e) => e.id === id)).toMatchObject({
          state: 'stopped',
          ownerId: 'owner-1',
        });
        const info = await b.start(id);
        expect(info.state).toBe('ready');
        expect((await fetch(`${info.gatewayUrl}/healthz`)).ok).toBe(true);
        const sb = sandboxOf(fake, id);
        expect(await readFile(join(sb.spec.dir, 'upper/workspace/notes.txt'), 'utf8')).toBe('kept');
        expect(sb.resources.memoryMb).toBe(768);
        await b.destroy(id);
        expect((await a.inspect(id)).state).toBe('missing');
        const { rowCount } = await poolA.query('SELECT 1 FROM provider_state WHERE environment_id = $1', [
          id,
        ]);
        expect(rowCount).toBe(0);
      } finally {
        a.close();
        b.close();
      }
    });
  });
});
