import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../apps/control-plane/src/testing/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.stop());

describe('docs/observability.md', () => {
  it('documents every metric the server exposes (besides Node’s default ones)', async () => {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const families = [...text.matchAll(/^# TYPE (\S+) /gm)]
      .map((m) => m[1]!)
      .filter((n) => !/^berth_(process|nodejs)_/.test(n));
    expect(families.length).toBeGreaterThan(3);
    const doc = await readFile(new URL('../../docs/observability.md', import.meta.url), 'utf8');
    expect(families.filter((n) => !doc.includes(`\`${n}\``))).toEqual([]);
  });
});
