import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate, loadMigrations } from './migrate.js';
import { withDatabase } from './url.js';
import { createTestDatabase, openConnections, type TestDatabase } from './testing/index.js';

describe('migrations', () => {
  let empty: { name: string; url: string } | undefined;

  afterEach(async () => {
    if (!empty) return;
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${empty.name} WITH (FORCE)`);
    await admin.end();
    empty = undefined;
  });

  it('two control planes migrating the same empty database at once apply each migration once', async () => {
    const name = `berth_empty_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    empty = { name, url: withDatabase(inject('pgAdminUrl'), name) };

    const [a, b] = await Promise.all([migrate(empty.url), migrate(empty.url)]);
    const all = (await loadMigrations()).map((m) => m.version);
    // One of them did all the work; the other waited on the lock and found nothing to do.
    expect([...a, ...b].sort((x, y) => x - y)).toEqual(all);
    expect(a.length === 0 || b.length === 0).toBe(true);

    const c = new pg.Client({ connectionString: empty.url });
    await c.connect();
    const { rows } = await c.query<{ version: number }>(
      'SELECT version FROM schema_migrations ORDER BY version',
    );
    await c.end();
    expect(rows.map((r) => r.version)).toEqual(all);
    expect(await openConnections(inject('pgAdminUrl'), name)).toBe(0);
  });

  it('a test database cloned from the template is already migrated', async () => {
    const db: TestDatabase = await createTestDatabase();
    try {
      expect(await migrate(db.url)).toEqual([]);
    } finally {
      await db.drop();
    }
  });
});
