import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalProvider } from '@berth/providers';
import {
  behaviourSuite,
  createGatewaySigner,
  ensureGatewayBundle,
  localHarness,
  pollUntil,
  withGatewayConfig,
} from '@berth/providers/testing';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-local-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

behaviourSuite('local', async () => {
  ensureGatewayBundle();
  return localHarness(new LocalProvider({ dataDir }), dataDir);
});

/** Running, not a zombie waiting for a reaper (this container's pid 1 may not reap). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

describe('local provider without a sandbox', () => {
  it('stopping an environment whose gateway was killed from outside also ends the tasks it left running', async () => {
    ensureGatewayBundle();
    const signer = createGatewaySigner();
    const local = new LocalProvider({ dataDir, sandbox: 'none' });
    const provider = withGatewayConfig(local, signer);
    const id = `nosandbox-${randomUUID().slice(0, 8)}`;
    const env = await provider.create({ id, ownerId: 'owner-1' });
    let taskPid = 0;
    try {
      expect(env.state).toBe('ready');
      const task = randomUUID();
      const started = await fetch(`${env.gatewayUrl}/exec/tasks/${task}/messages`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${signer.execToken(id, task)}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          messages: [
            { seq: 1, kind: 'start', body: { command: ['sh', '-c', 'echo $$ > task.pid; exec sleep 600'] } },
          ],
        }),
      });
      expect(started.ok).toBe(true);
      const pidFile = join(local.dir(id), 'workspace', 'task.pid');
      // The task's own file is the only sign from outside that it runs: poll for it.
      expect(
        await pollUntil(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 10_000),
      ).toBe(true);
      taskPid = Number(readFileSync(pidFile, 'utf8'));
      expect(running(taskPid)).toBe(true);

      const gateway = await local.pid(id);
      process.kill(-gateway!, 'SIGKILL');
      expect(await pollUntil(async () => (await provider.inspect(id)).state === 'failed', 10_000)).toBe(true);
      // Its own process group: the gateway's death did not take it along.
      expect(running(taskPid)).toBe(true);

      await provider.stop(id);
      expect(await pollUntil(() => !running(taskPid), 5_000)).toBe(true);
    } finally {
      await provider.destroy(id);
      // Should this test fail, leave no task behind it.
      if (taskPid && running(taskPid)) process.kill(-taskPid, 'SIGKILL');
    }
  });
});
