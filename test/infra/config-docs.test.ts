import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);

describe('docs/configuration.md', () => {
  it('names every environment variable loadConfig reads', async () => {
    const src = await readFile(new URL('apps/control-plane/src/config.ts', root), 'utf8');
    const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
    const names = [...new Set([...src.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!))];
    // Guards against a refactor that stops the regex from matching anything.
    expect(names).toEqual(expect.arrayContaining(['BERTH_PORT', 'DATABASE_URL', 'BERTH_SIGNING_KEYS']));
    const documented = new Set([...doc.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!));
    expect(names.filter((n) => !documented.has(n))).toEqual([]);
  });

  it('states the same defaults as loadConfig', async () => {
    const { loadConfig } = await import('../../apps/control-plane/src/config.js');
    const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
    const c = loadConfig({ HOME: '/home/x' });
    const row = (name: string) => doc.split('\n').find((l) => l.startsWith(`| \`${name}\``)) ?? '';
    expect(row('BERTH_PORT')).toContain(`\`${c.port}\``);
    expect(row('BERTH_HOST')).toContain(`\`${c.host}\``);
    expect(row('BERTH_LOG_LEVEL')).toContain(`\`${c.logLevel}\``);
    expect(row('BERTH_SESSION_TTL_HOURS')).toContain(`\`${c.sessionTtlHours}\``);
    expect(row('BERTH_TOKEN_MAX_DAYS')).toContain(`\`${c.tokenMaxDays}\``);
    expect(row('BERTH_LOGIN_RATE_LIMIT')).toContain(`\`${c.loginRateLimit}\``);
    expect(row('BERTH_LOGIN_RATE_WINDOW_SECONDS')).toContain(`\`${c.loginRateWindowSeconds}\``);
    expect(row('BERTH_TASK_DEFAULT_TIMEOUT_SECONDS')).toContain(`\`${c.taskDefaultTimeoutSeconds}\``);
    expect(row('BERTH_TASK_MAX_TIMEOUT_SECONDS')).toContain(`\`${c.taskMaxTimeoutSeconds}\``);
    expect(row('BERTH_ENV_IDLE_STOP_MINUTES')).toContain(`\`${c.envIdleStopMinutes}\``);
    expect(row('BERTH_WORKERS')).toContain(`\`${String(c.workers)}\``);
    expect(row('BERTH_INTERACTIVE_ATTACH')).toContain(`\`${String(c.interactiveAttach)}\``);
  });
});
