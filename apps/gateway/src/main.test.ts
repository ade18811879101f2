import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectTerminal, type TerminalClient } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { createTestSigner, OutputLog, TEST_ISSUER } from './testing.js';

const here = dirname(fileURLToPath(import.meta.url));
const children: ChildProcess[] = [];
const clients: TerminalClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('gateway process', () => {
  it('keeps serving terminals after whoever started it stops reading its stdout', async () => {
    const environmentId = 'env-main-test';
    const signer = await createTestSigner(environmentId);
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-gw-main-'));
    dirs.push(dataDir);
    const config = {
      environmentId,
      issuer: TEST_ISSUER,
      jwks: signer.jwks,
      dataDir,
      workdir: dataDir,
      host: '127.0.0.1',
      port: 0,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'main.ts')], {
      env: { ...process.env, BERTH_GATEWAY_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as { msg?: string; port?: number };
        if (msg.msg === 'gateway listening' && msg.port) resolve(msg.port);
      });
    });
    // Like a provider that only waited for the listening line: the pipe's read end goes away.
    child.stdout!.destroy();

    const client = connectTerminal({
      url: `ws://127.0.0.1:${port}/terminal`,
      token: await signer.sign({}),
      command: ['cat'],
      socketFactory: nodeSocketFactory,
    });
    clients.push(client);
    const out = new OutputLog(client);
    await client.ready();
    client.write('still here\r');
    await out.until('still here\r\nstill here\r\n', client);
    expect(child.exitCode).toBeNull();
    // The log file still has every line, including the ones stdout could not take.
    const log = readFileSync(join(dataDir, 'gateway.log'), 'utf8');
    expect(log).toContain('"msg":"session started"');

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });
});
