/**
 * Environment benchmark: create-to-gateway-ready for the `docker` and `local` providers, claim
 * time from a warm pool, and `docker run` of the same base image to a shell prompt as the floor.
 * Contenders are interleaved round by round (the machine is noisy).
 *
 *   npm run bench:env [-- --quick] [--json-out FILE]
 *
 * Ready means: the provider's create() returned, which happens after the gateway's /healthz
 * answered through the published port (docker) or its loopback port (local).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerProvider, LocalProvider, WarmPool, ensureDocker } from '@berth/providers';
import { ensureGatewayBundle } from '@berth/providers/testing';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOutIdx = args.indexOf('--json-out');
const jsonOut = jsonOutIdx >= 0 ? args[jsonOutIdx + 1] : undefined;
const ROUNDS = quick ? 4 : 20;
const log = (line: string) => process.stderr.write(line + '\n');

/** `docker run` to the point where the shell has printed its first output. */
function dockerRunToPrompt(image: string, name: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      'docker',
      ['run', '--rm', '-i', '--name', name, image, 'bash', '-c', 'echo prompt$; exec cat'],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('prompt$')) {
        const ms = performance.now() - t0;
        child.stdin.end();
        child.once('exit', () => resolve(ms));
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!out.includes('prompt$')) reject(new Error(`docker run exited ${code}`));
    });
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return {
    ready_p50_ms: Math.round(percentile(s, 50) * 10) / 10,
    ready_p95_ms: Math.round(percentile(s, 95) * 10) / 10,
    n: s.length,
  };
};

async function main(): Promise<void> {
  const base = ensureDocker();
  ensureGatewayBundle();
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-bench-env-'));
  const docker = new DockerProvider({ baseImage: base });
  const local = new LocalProvider({ dataDir });
  const pool = new WarmPool({
    provider: docker,
    size: 1,
    template: { ownerId: 'bench' },
    idPrefix: `benchwarm${process.pid}`,
    onError: (err) => log(`warm pool refill failed: ${String(err)}`),
  });
  const samples: Record<string, number[]> = {
    'berth-docker': [],
    'berth-local': [],
    'berth-docker-warm': [],
    'docker-run': [],
  };
  const tag = `bench${process.pid}`;
  try {
    // Warm-up (not measured): first container start, first gateway load from the page cache.
    await dockerRunToPrompt(base, `${tag}-warmup`);
    await docker.create({ id: `${tag}-warmup`, ownerId: 'bench' });
    await docker.destroy(`${tag}-warmup`);
    for (let r = 0; r < ROUNDS; r++) {
      const order = ['docker-run', 'berth-docker', 'berth-local', 'berth-docker-warm'];
      // Rotate who goes first each round.
      for (let k = 0; k < r % order.length; k++) order.push(order.shift() ?? '');
      for (const who of order) {
        const id = `${tag}-${r}`;
        if (who === 'docker-run') {
          samples[who]?.push(await dockerRunToPrompt(base, `${tag}-run-${r}`));
        } else if (who === 'berth-docker') {
          const t0 = performance.now();
          await docker.create({ id, ownerId: 'bench' });
          samples[who]?.push(performance.now() - t0);
          await docker.destroy(id);
        } else if (who === 'berth-local') {
          const t0 = performance.now();
          await local.create({ id, ownerId: 'bench' });
          samples[who]?.push(performance.now() - t0);
          await local.destroy(id);
        } else {
          await pool.fill();
          const t0 = performance.now();
          const claim = await pool.claim(`${id}-warm`);
          samples[who]?.push(performance.now() - t0);
          if (!claim) throw new Error('warm pool was empty after fill');
          await docker.destroy(claim.backingId);
        }
      }
      log(
        `round ${r + 1}/${ROUNDS}: ${Object.entries(samples)
          .map(([k, v]) => `${k}=${Math.round(v.at(-1) ?? NaN)}ms`)
          .join(' ')}`,
      );
    }
  } finally {
    await pool.drain();
    await rm(dataDir, { recursive: true, force: true });
  }
  const results = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
  const floor = results['docker-run']?.ready_p50_ms ?? NaN;
  const ratios = {
    docker_ready_p50_vs_docker_run:
      Math.round(((results['berth-docker']?.ready_p50_ms ?? NaN) / floor) * 100) / 100,
    local_ready_p50_vs_docker_run:
      Math.round(((results['berth-local']?.ready_p50_ms ?? NaN) / floor) * 100) / 100,
    warm_claim_p50_vs_docker_run:
      Math.round(((results['berth-docker-warm']?.ready_p50_ms ?? NaN) / floor) * 1000) / 1000,
  };
  const line = JSON.stringify({ bench: 'env', results, ratios });
  if (jsonOut) await writeFile(jsonOut, line + '\n');
  process.stdout.write(line + '\n');
}

await main();
