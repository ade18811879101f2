import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { cpSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
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

/**
 * The assets of this installation, or given ones. With `stageDir` (the operator's
 * BERTH_GATEWAY_ASSETS_DIR, docs/configuration.md), the ones not given are copied into that
 * directory and used from there (see stageGatewayAssets).
 */
export function defaultGatewayAssets(
  overrides: Partial<GatewayAssets> = {},
  stageDir?: string,
): GatewayAssets {
  const bundle = overrides.bundle ?? join(repoRoot, 'apps/gateway/dist/gateway.mjs');
  let nodePtyDir = overrides.nodePtyDir;
  if (!nodePtyDir) {
    const req = createRequire(join(repoRoot, 'apps/gateway/package.json'));
    nodePtyDir = dirname(req.resolve('node-pty/package.json'));
  }
  const own = { node: overrides.node ?? process.execPath, bundle, nodePtyDir };
  const dir = stageDir;
  if (!dir) return own;
  const staged = stageGatewayAssets(
    {
      node: overrides.node ? undefined : own.node,
      bundle: overrides.bundle ? undefined : own.bundle,
      nodePtyDir: overrides.nodePtyDir ? undefined : own.nodePtyDir,
    },
    dir,
  );
  return { ...own, ...staged };
}

/** Where stageGatewayAssets puts each asset in `dir`. */
export function gatewayAssetsIn(dir: string): GatewayAssets {
  return { node: join(dir, 'node'), bundle: join(dir, 'gateway.mjs'), nodePtyDir: join(dir, 'node-pty') };
}

/**
 * The docker provider bind-mounts the assets by path, and the engine resolves that path on its
 * own filesystem. When Berth runs in a container, that is not Berth's filesystem: the host's
 * engine through its socket, or a Docker-in-Docker sidecar, does not have `/opt/berth/app/...`.
 * So the assets are copied into a directory the deployment shares with the engine at the same
 * path (infra/compose.yaml: a host directory, or a volume mounted in both containers). Copies are
 * kept while their source's size and mtime are unchanged, so a restart copies nothing; a changed
 * file is replaced by a rename, so environments never see half a file. A missing source is not
 * staged (the provider then reports it at its own path).
 */
export function stageGatewayAssets(from: Partial<GatewayAssets>, dir: string): Partial<GatewayAssets> {
  if (!isAbsolute(dir)) throw new Error(`BERTH_GATEWAY_ASSETS_DIR must be an absolute path, not ${dir}`);
  const to = gatewayAssetsIn(dir);
  const out: Partial<GatewayAssets> = {};
  try {
    for (const key of ['node', 'bundle', 'nodePtyDir'] as const) {
      const src = from[key];
      if (!src || !existsSync(src)) continue;
      const dest = to[key];
      const stamp = `${dest}.stamp`;
      const want = JSON.stringify(fingerprint(src));
      if (!existsSync(dest) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== want) {
        // Unique per copy: two containers sharing the directory may both be pid 1.
        const tmp = `${dest}.tmp-${randomUUID()}`;
        rmSync(tmp, { recursive: true, force: true });
        cpSync(src, tmp, {
          recursive: true,
          preserveTimestamps: true,
          dereference: true,
          // node-pty ships prebuilt addons for other platforms (most of its size): not those.
          filter: (p) => !/\/prebuilds\/[^/]+/.test(p.slice(src.length)) || p.includes(ownPrebuilds),
        });
        // A directory cannot be renamed over a non-empty one: move the old copy away first.
        if (statSync(tmp).isDirectory()) rmSync(dest, { recursive: true, force: true });
        renameSync(tmp, dest);
        writeFileSync(stamp, want);
      }
      out[key] = dest;
    }
  } catch (err) {
    throw new ProviderError(
      'gateway_missing',
      `cannot copy the gateway's files into BERTH_GATEWAY_ASSETS_DIR ${dir}: ${(err as Error).message}`,
      `make ${dir} exist and be writable by uid ${process.getuid?.() ?? '?'} (e.g. \`sudo install -d -o ${process.getuid?.() ?? 1000} ${dir}\`)`,
    );
  }
  return out;
}

const ownPrebuilds = `/prebuilds/${process.platform}-${process.arch}`;

/** Size and mtime of a file, or of a directory's package.json and native addon (node-pty). */
function fingerprint(src: string): unknown {
  const st = statSync(src);
  if (!st.isDirectory()) return { src, size: st.size, mtime: st.mtimeMs };
  return [
    src,
    ...['package.json', 'build/Release/pty.node'].map((f) => {
      const p = join(src, f);
      return existsSync(p) ? { f, size: statSync(p).size, mtime: statSync(p).mtimeMs } : { f };
    }),
  ];
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
