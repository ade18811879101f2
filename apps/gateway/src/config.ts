import { readFileSync } from 'node:fs';
import type { GatewayConfigInput } from '@berth/protocol';

/** The provider hands the config as JSON in `BERTH_GATEWAY_CONFIG` or a file named by `BERTH_GATEWAY_CONFIG_FILE`. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfigInput {
  const inline = env.BERTH_GATEWAY_CONFIG;
  if (inline) return JSON.parse(inline) as GatewayConfigInput;
  const file = env.BERTH_GATEWAY_CONFIG_FILE;
  if (file) return JSON.parse(readFileSync(file, 'utf8')) as GatewayConfigInput;
  throw new Error('set BERTH_GATEWAY_CONFIG (JSON) or BERTH_GATEWAY_CONFIG_FILE');
}
