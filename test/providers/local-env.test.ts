import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalProvider } from '@berth/providers';
import { ensureGatewayBundle } from '@berth/providers/testing';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-local-env-'));
const provider = new LocalProvider({ dataDir });
const id = '6f1d2c3b-0000-4000-8000-00000000e4e4';
afterAll(async () => {
  await provider.destroy(id).catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('local provider environment', () => {
  it("does not hand the control plane's own settings to the gateway (and so to tasks and terminals)", async () => {
    ensureGatewayBundle();
    process.env.DATABASE_URL = 'postgres://berth:canary-db-password@127.0.0.1/berth';
    process.env.BERTH_ADMIN_PASSWORD = 'canary-admin-password';
    try {
      await provider.create({ id, ownerId: 'u', env: { MINE: 'kept' } });
      const meta = JSON.parse(readFileSync(join(dataDir, 'envs', id, 'meta.json'), 'utf8')) as {
        pid: number;
      };
      const environ = readFileSync(`/proc/${meta.pid}/environ`, 'utf8').split('\0');
      expect(environ.some((e) => e.includes('canary-'))).toBe(false);
      expect(environ).toContain('MINE=kept');
      expect(environ.some((e) => e.startsWith('PATH='))).toBe(true);
    } finally {
      delete process.env.DATABASE_URL;
      delete process.env.BERTH_ADMIN_PASSWORD;
    }
  });
});
