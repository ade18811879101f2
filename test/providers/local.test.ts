import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { LocalProvider } from '@berth/providers';
import { behaviourSuite, ensureGatewayBundle, localHarness } from '@berth/providers/testing';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-local-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

behaviourSuite('local', async () => {
  ensureGatewayBundle();
  return localHarness(new LocalProvider({ dataDir }), dataDir);
});
