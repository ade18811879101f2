// Helpers for tests of code that talks to Vault: a JWT issuer with a JWKS. The fake Vault
// itself is exported from the package entry (startFakeVault).
export { startTestIssuer, type SignOptions, type TestIssuer, type WorkloadClaims } from './issuer.js';
