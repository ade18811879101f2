import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { ExecFrameDecoder, type EnvironmentSpec } from '@berth/protocol';
import type { EnvironmentProvider } from '../types.js';

/**
 * Runs commands in an environment through its gateway's exec API, the way the control plane's
 * task workers do: for providers whose environments the test cannot enter from the host (Modal).
 */
export interface GatewaySigner {
  issuer: string;
  jwks: { keys: Record<string, unknown>[] };
  /** An exec ticket for one task: EdDSA, 60 s, `aud` = environment, `sid` = task. */
  execToken(environmentId: string, taskId: string): string;
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Signs gateway tickets like the control plane (node:crypto only, no JWT library needed). */
export function createGatewaySigner(issuer = 'https://berth-provider-tests.invalid'): GatewaySigner {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = {
    ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>),
    kid: 'k1',
    alg: 'EdDSA',
  };
  const key: KeyObject = privateKey;
  return {
    issuer,
    jwks: { keys: [jwk] },
    execToken(environmentId, taskId) {
      const now = Math.floor(Date.now() / 1000);
      const head = b64url({ alg: 'EdDSA', kid: 'k1', typ: 'JWT' });
      const body = b64url({
        iss: issuer,
        sub: 'provider-tests',
        aud: environmentId,
        iat: now,
        exp: now + 60,
        jti: randomUUID(),
        scope: 'exec',
        sid: taskId,
      });
      return `${head}.${body}.${sign(null, Buffer.from(`${head}.${body}`), key).toString('base64url')}`;
    },
  };
}

/** The provider with `gateway` (issuer, JWKS) added to every spec that has none. */
export function withGatewayConfig(provider: EnvironmentProvider, signer: GatewaySigner): EnvironmentProvider {
  const gateway: EnvironmentSpec['gateway'] = { issuer: signer.issuer, jwks: signer.jwks };
  return {
    name: provider.name,
    create: (spec, options) => provider.create(spec.gateway ? spec : { ...spec, gateway }, options),
    start: (id) => provider.start(id),
    stop: (id) => provider.stop(id),
    destroy: (id) => provider.destroy(id),
    inspect: (id) => provider.inspect(id),
    list: () => provider.list(),
  };
}

/** Runs `command` as a task in the environment's gateway; resolves with its exit code and output. */
export async function gatewayExec(
  gatewayUrl: string,
  signer: GatewaySigner,
  environmentId: string,
  command: string[],
  opts: { tty?: boolean } = {},
): Promise<{ code: number | null; output: string }> {
  const task = randomUUID();
  const auth = (): Record<string, string> => ({
    authorization: `Bearer ${signer.execToken(environmentId, task)}`,
  });
  const started = await fetch(`${gatewayUrl}/exec/tasks/${task}/messages`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify({
      messages: [{ seq: 1, kind: 'start', body: { command, ...(opts.tty ? { tty: true } : {}) } }],
    }),
  });
  if (!started.ok) throw new Error(`gateway refused the task: ${started.status} ${await started.text()}`);
  const res = await fetch(`${gatewayUrl}/exec/tasks/${task}/output?offset=0`, { headers: auth() });
  if (!res.ok || !res.body) throw new Error(`gateway output: ${res.status} ${await res.text()}`);
  const dec = new ExecFrameDecoder();
  const parts: Buffer[] = [];
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`task output ended without an exit: ${Buffer.concat(parts).toString()}`);
    for (const ev of dec.push(value)) {
      if (ev.type === 'output') parts.push(ev.data);
      else if (ev.type === 'exit' || ev.type === 'lost') {
        await reader.cancel();
        if (ev.type === 'lost') throw new Error(`task lost: ${ev.reason}`);
        return { code: ev.code, output: Buffer.concat(parts).toString('utf8') };
      }
    }
  }
}
