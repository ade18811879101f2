// What a gateway or CLI needs at launch, without the fake Vault (test code stays out of bundles).
export { VaultError } from './errors.js';
export { kvDataPath } from './client.js';
export {
  fetchSecrets,
  unwrapSecrets,
  type FetchedSecrets,
  type SecretRef,
  type UnwrappedSecrets,
  type VaultTarget,
} from './secrets.js';
export { DEFAULT_MIN_MASK_LENGTH, createMasker, type Masker, type MaskerOptions } from './masker.js';
