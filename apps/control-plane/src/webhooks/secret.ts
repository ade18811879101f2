import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * The installation's webhook root key. Each webhook's signing secret is derived from it, so the
 * secrets themselves are never stored. Several control planes must share it (BERTH_WEBHOOK_KEY),
 * else a 0600 file under the data dir is created once, exclusively, so two processes starting
 * together end up reading the same key.
 */
export async function loadWebhookKey(opts: { inline?: string; dataDir: string }): Promise<Buffer> {
  if (opts.inline) {
    const key = Buffer.from(opts.inline, 'base64');
    if (key.length < 32) throw new Error('BERTH_WEBHOOK_KEY must be at least 32 bytes, base64-encoded');
    return key;
  }
  const file = join(opts.dataDir, 'keys', 'webhook.key');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFile(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
  if (key.length < 32) throw new Error(`${file} does not hold a base64 key of 32 bytes or more`);
  return key;
}

/** `whsec_…`: changes when the user rotates it (secret_version), and with the root key. */
export function webhookSecret(rootKey: Buffer, webhookId: string, version: number): string {
  return `whsec_${createHmac('sha256', rootKey).update(`webhook:${webhookId}:${version}`).digest('base64url')}`;
}

/**
 * The `Berth-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. The
 * timestamp is signed too, so a receiver can refuse replays older than a few minutes.
 */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a receiver does (and what the docs show): recompute and compare in constant time. */
export function verifySignature(
  secret: string,
  body: string,
  header: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = new Map(
    header.split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i), p.slice(i + 1)] as const;
    }),
  );
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || !v1 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const given = Buffer.from(v1);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
