export { loadConfig, ConfigError, ConfigSchema, type Config, type ConfigFlags, type Env } from './config.js';
export { startServer, type RunningServer, type ServerOptions } from './server.js';
export { createLogger } from './common/logging.js';
export { runWorker, type RunningWorker, type RunWorkerOptions } from './worker/index.js';
export { defaultKeyFile, loadKeys, MissingKeysError } from './identity/keys.js';
