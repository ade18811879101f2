export { VaultError } from './errors.js';
export {
  VaultClient,
  kvDataPath,
  type KvV2Secret,
  type RequestOptions,
  type VaultAuth,
  type VaultClientOptions,
  type VaultResponse,
  type WrapInfo,
  type WrappingLookup,
} from './client.js';
export {
  fetchSecrets,
  unwrapSecrets,
  type FetchedSecrets,
  type SecretRef,
  type UnwrappedSecrets,
  type VaultTarget,
} from './secrets.js';
export { DEFAULT_MIN_MASK_LENGTH, createMasker, type Masker, type MaskerOptions } from './masker.js';
// A fake, for tests only: see README "Fake Vault".
export { startFakeVault, type FakeVault, type FakeVaultOptions } from './fake/server.js';
