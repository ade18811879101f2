import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultGatewayAssets } from '../assets.js';

/**
 * Dockerfile commands that install the gateway into a Modal image whose base has node 20+ and
 * npm (e.g. `node:20-bookworm-slim`, or the operator's base image). node-pty is installed by npm
 * at the version the gateway was built against (it builds from source when no prebuild fits, so
 * the commands add a compiler first). The bundle comes either from a URL the operator hosts, or
 * inline: base64 chunks in the commands themselves (no hosting needed; about 1.6 MB of commands).
 */
export interface GatewayInstallOptions {
  /** HTTPS URL of apps/gateway/dist/gateway.mjs as built for this Berth version. */
  bundleUrl?: string;
  /** Local path of the bundle to inline (default: this checkout's build). */
  bundlePath?: string;
  /** Directory inside the image. */
  dir?: string;
}

const CHUNK = 96 * 1024;

function nodePtyVersion(): string {
  const dir = defaultGatewayAssets().nodePtyDir;
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

export function gatewayInstallCommands(opts: GatewayInstallOptions = {}): {
  install: string[];
  command: string[];
} {
  const dir = opts.dir ?? '/opt/berth';
  const install = [
    'RUN (command -v node && command -v npm) >/dev/null || (echo "the Modal base image needs node 20+ and npm for the Berth gateway" >&2; exit 1)',
    'RUN command -v g++ >/dev/null || (apt-get update && apt-get install -y --no-install-recommends python3 make g++ git ca-certificates curl && rm -rf /var/lib/apt/lists/*)',
    `RUN mkdir -p ${dir} && cd ${dir} && echo '{"private":true}' > package.json && npm install --no-audit --no-fund --omit=dev node-pty@${nodePtyVersion()}`,
  ];
  if (opts.bundleUrl) {
    install.push(`RUN curl -fsSL '${opts.bundleUrl.replaceAll("'", '')}' -o ${dir}/gateway.mjs`);
  } else {
    const b64 = readFileSync(opts.bundlePath ?? defaultGatewayAssets().bundle).toString('base64');
    install.push(`RUN mkdir -p ${dir} && rm -f ${dir}/gateway.b64`);
    for (let i = 0; i < b64.length; i += CHUNK)
      install.push(`RUN printf %s '${b64.slice(i, i + CHUNK)}' >> ${dir}/gateway.b64`);
    install.push(`RUN base64 -d ${dir}/gateway.b64 > ${dir}/gateway.mjs && rm ${dir}/gateway.b64`);
  }
  return { install, command: ['node', `${dir}/gateway.mjs`] };
}
