export { ProviderError } from './errors.js';
export type {
  CreateOptions,
  CreateResult,
  EnvironmentProvider,
  ListedEnvironment,
  ProgressEvent,
  ProviderStateStore,
} from './types.js';
export {
  defaultSpecPolicy,
  validateSpec,
  type ResourceLimits,
  type SpecCheck,
  type SpecIssue,
  type SpecPolicy,
} from './spec.js';
export {
  parseBerthYaml,
  parseDevcontainer,
  readContextConfig,
  stripJsonc,
  type ContextConfig,
} from './config-files.js';
export { baseImageTag, defaultGatewayAssets, ensureDocker, type GatewayAssets } from './assets.js';
export { ImageBuilder, contextFiles, type ImageRequest, type ImageResult } from './images.js';
export { LocalProvider, type LocalProviderOptions } from './local.js';
export {
  DockerProvider,
  containerName,
  LABEL_ENV,
  LABEL_OWNER,
  LABEL_SPEC,
  type DockerProviderOptions,
} from './docker.js';
export { FakeProvider } from './fake.js';
export { reconcile, type ReconcileReport } from './reconcile.js';
export { WarmPool, type Claim, type WarmPoolOptions } from './warm-pool.js';
export { cloneRepo } from './repo.js';
export {
  ModalProvider,
  ModalProviderError,
  gatewayInstallCommands,
  isRetryable,
  MemoryStateStore,
  type GatewayInstallOptions,
  type ModalEnvState,
  type ModalGatewayOptions,
  type ModalProviderOptions,
} from './modal/provider.js';
