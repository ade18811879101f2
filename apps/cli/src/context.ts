import type { ApiTarget } from './api.js';
import { readConfigFile } from './config-file.js';
import type { CliEnv } from './env.js';
import { CliError, EXIT } from './errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface Ctx {
  env: CliEnv;
  /** Server and token: BERTH_URL/BERTH_TOKEN first, then the config file. */
  target(opts?: { needToken?: boolean }): Promise<ApiTarget>;
}

export function makeCtx(env: CliEnv): Ctx {
  return {
    env,
    async target({ needToken = true } = {}) {
      const file = await readConfigFile(env.configPath);
      const url = env.url ?? file.url ?? DEFAULT_URL;
      const token = env.token ?? (env.url && env.url !== file.url ? undefined : file.token);
      if (needToken && !token)
        throw new CliError(`not signed in to ${url}`, 'run `berth login`, or set BERTH_TOKEN', EXIT.auth);
      return token ? { url, token } : { url };
    },
  };
}
