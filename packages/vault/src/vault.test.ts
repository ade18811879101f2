import { startFakeVault } from './fake/server.js';
import { defineVaultCases } from './testing/cases.js';

// The shared Vault cases against the fake; real-vault.test.ts runs the same against a real one.
defineVaultCases({
  name: 'fake',
  async start() {
    const fake = await startFakeVault();
    return {
      address: fake.address,
      rootToken: fake.rootToken,
      namespace: 'team-a',
      advanceClock: (seconds) => Promise.resolve(fake.advanceClock(seconds)),
      requests: fake.requests,
      close: () => fake.close(),
    };
  },
});
