// Helpers for tests of code that talks to Vault: a JWT issuer with a JWKS, and the one-time
// setup that makes a Vault trust Berth. The fake Vault itself is exported from the package entry
// (startFakeVault).
export { startTestIssuer, type SignOptions, type TestIssuer, type WorkloadClaims } from './issuer.js';
export { berthKeys, trustBerth, type BerthTrust, type TrustBerthOptions } from './trust.js';
