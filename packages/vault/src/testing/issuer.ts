import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';

/**
 * A stand-in for Berth's OIDC issuer in tests: a fresh Ed25519 key, its JWKS and an OIDC
 * discovery document on a loopback HTTP server, and a signer for workload-identity JWTs shaped
 * like Berth's (iss, aud, sub = user:<id>, environment/task/provider/launch_source, jti, short exp).
 */
export interface TestIssuer {
  /** `iss` of the JWTs and the OIDC discovery URL. */
  readonly issuer: string;
  readonly jwksUrl: string;
  sign(claims: WorkloadClaims, opts?: SignOptions): Promise<string>;
  close(): Promise<void>;
}

export interface WorkloadClaims {
  aud: string | string[];
  /** `user:<berth user id>` */
  sub: string;
  environment_id?: string;
  task_id?: string;
  provider?: string;
  launch_source?: 'web' | 'mobile' | 'cli' | 'api';
  [claim: string]: unknown;
}

export interface SignOptions {
  /** Issued-at in seconds since epoch; default now. */
  iat?: number;
  /** Lifetime in seconds; default 300. */
  ttlSeconds?: number;
  /** Sign with a key that is NOT in the JWKS (but the same kid), to test signature checks. */
  foreignKey?: boolean;
  issuer?: string;
  /** Leave out exp (and nbf): Vault then applies its expiration leeway to iat. */
  noExpiry?: boolean;
  /** JWS alg header; default `EdDSA`. `Ed25519` (RFC 9864) is for testing that Vault refuses it. */
  alg?: 'EdDSA' | 'Ed25519';
}

export async function startTestIssuer(
  opts: { bindHost?: string; advertiseHost?: string } = {},
): Promise<TestIssuer> {
  const kid = `berth-test-${randomBytes(4).toString('hex')}`;
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const foreign = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  let issuer = '';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/.well-known/jwks.json') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    } else if (path === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({
          issuer,
          jwks_uri: `${issuer}/.well-known/jwks.json`,
          id_token_signing_alg_values_supported: ['EdDSA'],
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
        }),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, opts.bindHost ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  issuer = `http://${opts.advertiseHost ?? '127.0.0.1'}:${port}`;

  const signWith = async (key: CryptoKey, claims: WorkloadClaims, o: SignOptions): Promise<string> => {
    const iat = o.iat ?? Math.floor(Date.now() / 1000);
    const payload: JWTPayload = { jti: randomBytes(12).toString('hex'), ...claims };
    const jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: o.alg ?? 'EdDSA', kid, typ: 'JWT' })
      .setIssuer(o.issuer ?? issuer)
      .setIssuedAt(iat);
    if (!o.noExpiry) jwt.setNotBefore(iat).setExpirationTime(iat + (o.ttlSeconds ?? 300));
    return jwt.sign(key);
  };

  return {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    sign: (claims, o = {}) => signWith(o.foreignKey ? foreign.privateKey : privateKey, claims, o),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
