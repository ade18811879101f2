import { describe, expect, it } from 'vitest';
import { ClientSecretsBody, ClientSecretsStore } from './client-secrets.js';

const ID = '6f1d7a52-8a51-4c1f-9a55-0c8f5f0f6a11';

describe('secrets berth run sends for a launch', () => {
  it('are taken once, whether they come before or after the start asks', async () => {
    const store = new ClientSecretsStore();
    try {
      expect(store.put(ID, { values: { A: 'one' } })).toBe(true);
      expect(store.put(ID, { values: { A: 'two' } })).toBe(false);
      expect(await store.take(ID, 1000)).toEqual({ values: { A: 'one' } });
      expect(await store.take(ID, 10)).toBeUndefined();
      expect(store.put(ID, { values: { A: 'three' } })).toBe(false);

      const other = '0b7e1f0e-1a7b-4a86-8a34-64bd1f7b1d20';
      const waiting = store.take(other, 60_000);
      expect(store.put(other, { wrappedToken: 'hvs.wrapped' })).toBe(true);
      expect(await waiting).toEqual({ wrappedToken: 'hvs.wrapped' });
      expect(store.put(other, { wrappedToken: 'hvs.again' })).toBe(false);
    } finally {
      store.close();
    }
  });

  it('a start waits a bounded time for secrets that never come', async () => {
    const store = new ClientSecretsStore();
    try {
      expect(await store.take(ID, 5)).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it('accepts a wrapping token or env values, nothing else', () => {
    expect(ClientSecretsBody.safeParse({ wrappedToken: 'hvs.x' }).success).toBe(true);
    expect(ClientSecretsBody.safeParse({ values: { API_KEY: 'v' } }).success).toBe(true);
    expect(ClientSecretsBody.safeParse({ values: {} }).success).toBe(false);
    expect(ClientSecretsBody.safeParse({ values: { 'BAD-NAME': 'v' } }).success).toBe(false);
    expect(ClientSecretsBody.safeParse({ wrappedToken: 'x', values: { A: 'v' } }).success).toBe(false);
  });
});
