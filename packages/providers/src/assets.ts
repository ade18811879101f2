import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProviderError } from './errors.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Host files a provider mounts or runs: the node binary, the gateway bundle and node-pty. */
export interface GatewayAssets {
  node: string;
  /** apps/gateway/dist/gateway.mjs (built by `npm run build -w @berth/gateway`). */
  bundle: string;
  /** node-pty's package directory, mounted so `require('node-pty')` resolves next to the bundle. */
  nodePtyDir: string;
}

export function defaultGatewayAssets(overrides: Partial<GatewayAssets> = {}): GatewayAssets {
  const bundle = overrides.bundle ?? join(repoRoot, 'apps/gateway/dist/gateway.mjs');
  let nodePtyDir = overrides.nodePtyDir;
  if (!nodePtyDir) {
    const req = createRequire(join(repoRoot, 'apps/gateway/package.json'));
    nodePtyDir = dirname(req.resolve('node-pty/package.json'));
  }
  return { node: overrides.node ?? process.execPath, bundle, nodePtyDir };
}

export function assertBundle(assets: GatewayAssets): void {
  if (!existsSync(assets.bundle)) {
    throw new ProviderError(
      'gateway_missing',
      `gateway bundle not found at ${assets.bundle}`,
      'run `npm run build -w @berth/gateway` first',
    );
  }
}

export const baseImageScript = join(repoRoot, 'docker/base/build-offline.sh');
export const prereqScript = join(repoRoot, 'scripts/prereqs/20-docker.sh');
export { repoRoot };

/** The base image tag the offline build script produces: keyed by a hash of the script. */
export function baseImageTag(): string {
  const hash = createHash('sha256').update(readFileSync(baseImageScript)).digest('hex').slice(0, 12);
  return `berth-base:${hash}`;
}

/**
 * Runs scripts/prereqs/20-docker.sh: installs Docker when missing, starts dockerd, builds the
 * base image when missing. Returns the base image tag.
 */
export function ensureDocker(): string {
  const res = spawnSync('bash', [prereqScript], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.status !== 0)
    throw new ProviderError(
      'docker_unavailable',
      `Docker prerequisites failed: ${res.stderr.slice(-800)}`,
      'see /var/log/berth-dockerd.log; set BERTH_SKIP_DOCKER=1 to skip the Docker suites',
    );
  return baseImageTag();
}
