import { readFile } from 'node:fs/promises';
import { api, type ApiTarget } from '../api.js';
import { CliError, EXIT } from '../errors.js';

export interface RunSecretsOptions {
  vaultWrappedToken?: string;
  secretsFile?: string;
}

/**
 * `.env` lines: NAME=VALUE, optional `export `, blank lines and `#` comments skipped, one pair of
 * matching outer quotes removed. No interpolation: values are passed exactly.
 */
export function parseDotenv(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m)
      throw new CliError(`${file}:${i + 1}: expected NAME=VALUE`, 'e.g. GITHUB_TOKEN=ghp_...', EXIT.usage);
    let v = m[2] ?? '';
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.endsWith(v[0])) v = v.slice(1, -1);
    out[m[1]!] = v;
  });
  return out;
}

/**
 * Sends a launch's secrets straight to the environment's gateway, with a one-minute ticket the
 * control plane issues for a fresh launch id; returns the env entry that ties the task to them.
 * The control plane never sees the wrapping token or the values.
 */
export async function sendLaunchSecrets(
  target: ApiTarget,
  environmentId: string,
  o: RunSecretsOptions,
): Promise<Record<string, string>> {
  if (o.vaultWrappedToken && o.secretsFile)
    throw new CliError('give --vault-wrapped-token or --secrets-file, not both', '', EXIT.usage);
  let body: Record<string, unknown>;
  if (o.secretsFile) {
    const text = await readFile(o.secretsFile, 'utf8').catch((err: unknown) => {
      throw new CliError(`cannot read ${o.secretsFile}: ${(err as Error).message}`, '', EXIT.usage);
    });
    const values = parseDotenv(text, o.secretsFile);
    if (Object.keys(values).length === 0)
      throw new CliError(`${o.secretsFile} holds no NAME=VALUE lines`, '', EXIT.usage);
    body = { values };
  } else body = { wrappedToken: o.vaultWrappedToken };
  const { data: ticket } = await api<{ url: string; token: string; env: Record<string, string> }>(
    target,
    'POST',
    '/api/v1/secrets/launches',
    { environmentId },
  );
  let res: Response;
  try {
    res = await fetch(ticket.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${ticket.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CliError(
      `cannot reach the environment's gateway at ${new URL(ticket.url).origin}: ${(err as Error).message}`,
      'secrets go straight to the environment, so this machine must reach its gateway',
      EXIT.unavailable,
    );
  }
  if (!res.ok)
    throw new CliError(
      `the environment's gateway refused the secrets (${res.status}): ${(await res.text()).slice(0, 300)}`,
      '',
      EXIT.error,
    );
  await res.body?.cancel();
  return ticket.env;
}
