import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import type { GatewayConfigInput, GatewayTokenClaims } from '@berth/protocol';
import type { TerminalClient } from '@berth/terminal';
import { startGateway, TERMINAL_PATH, type Gateway, type GatewayOptions } from './server.js';

export const TEST_ISSUER = 'https://control-plane.test';

export interface TestSigner {
  jwks: { keys: Record<string, unknown>[] };
  /** Signs like the control plane will: EdDSA, 60 s, `aud` = environment. Overrides win. */
  sign(
    claims: Partial<GatewayTokenClaims> & Record<string, unknown>,
    opts?: { expiresIn?: string | number; iat?: number },
  ): Promise<string>;
}

export async function createTestSigner(environmentId: string): Promise<TestSigner> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = await exportJWK(publicKey);
  jwk.kid = 'test-key';
  jwk.alg = 'EdDSA';
  return {
    jwks: { keys: [jwk as Record<string, unknown>] },
    async sign(claims, opts = {}) {
      const { iat, ...rest } = { iat: opts.iat, ...claims };
      const jwt = new SignJWT({ scope: 'terminal', role: 'driver', jti: randomUUID(), ...rest } as JWTPayload)
        .setProtectedHeader({ alg: 'EdDSA', kid: 'test-key' })
        .setIssuer(TEST_ISSUER)
        .setSubject(typeof claims.sub === 'string' ? claims.sub : 'user-1')
        .setAudience((claims.aud as string | string[] | undefined) ?? environmentId)
        .setExpirationTime(opts.expiresIn ?? '60s');
      jwt.setIssuedAt(typeof iat === 'number' ? iat : undefined);
      return jwt.sign(privateKey);
    },
  };
}

export interface TestGateway {
  gateway: Gateway;
  signer: TestSigner;
  environmentId: string;
  dataDir: string;
  /** `ws://127.0.0.1:port/terminal` */
  url: string;
  http: string;
  close(): Promise<void>;
}

/** A gateway on a free loopback port with a fresh signing key and data dir. */
export async function startTestGateway(
  overrides: Partial<GatewayConfigInput> = {},
  options: GatewayOptions = {},
): Promise<TestGateway> {
  const environmentId = overrides.environmentId ?? `env-${randomUUID().slice(0, 8)}`;
  const signer = await createTestSigner(environmentId);
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-gw-'));
  const gateway = await startGateway(
    {
      environmentId,
      issuer: TEST_ISSUER,
      jwks: signer.jwks,
      dataDir,
      workdir: dataDir,
      host: '127.0.0.1',
      port: 0,
      ...overrides,
    },
    { logToStdout: false, shell: ['/bin/sh'], ...options },
  );
  return {
    gateway,
    signer,
    environmentId,
    dataDir,
    url: `ws://127.0.0.1:${gateway.port}${TERMINAL_PATH}`,
    http: `http://127.0.0.1:${gateway.port}`,
    async close() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Output a client received, as bytes and text, with a way to await what is expected. */
export class OutputLog {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(client: TerminalClient) {
    client.onOutput((data) => this.push(data));
    void client.closed.then(() => this.settle());
  }

  push(data: Uint8Array): void {
    this.chunks.push(Buffer.from(data));
    this.bytes += data.byteLength;
    this.settle();
  }

  get length(): number {
    return this.bytes;
  }

  buffer(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  text(): string {
    return this.buffer().toString('utf8');
  }

  /** Resolves once `test` holds; rejects if the client closes first. */
  until(test: string | RegExp | (() => boolean), client?: TerminalClient): Promise<void> {
    const fn =
      typeof test === 'function'
        ? test
        : typeof test === 'string'
          ? () => this.text().includes(test)
          : () => test.test(this.text());
    if (fn()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ test: fn, resolve });
      void client?.closed.then((c) => {
        if (!fn())
          reject(
            new Error(
              `client closed (${c.code} ${c.reason}) before output matched ${String(test)}; got ${JSON.stringify(this.text().slice(-300))}`,
            ),
          );
      });
    });
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }
}
