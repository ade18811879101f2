import { homedir } from 'node:os';
import { join } from 'node:path';

/** Everything the CLI takes from its environment, read once in main(). */
export interface CliEnv {
  url?: string;
  token?: string;
  configPath: string;
  raw: Record<string, string | undefined>;
}

export function readEnv(env: Record<string, string | undefined>): CliEnv {
  const configHome = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return {
    ...(env.BERTH_URL ? { url: env.BERTH_URL.replace(/\/+$/, '') } : {}),
    ...(env.BERTH_TOKEN ? { token: env.BERTH_TOKEN } : {}),
    configPath: env.BERTH_CONFIG || join(configHome, 'berth', 'config.json'),
    raw: env,
  };
}
