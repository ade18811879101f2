import { CliError, EXIT } from './errors.js';

export interface ApiTarget {
  url: string;
  token?: string;
}

interface ErrorShape {
  error?: { code?: string; message?: string; hint?: string };
}

/** Calls the Berth API; failures become CliErrors carrying the server's message and hint. */
export async function api<T = unknown>(
  target: ApiTarget,
  method: string,
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<{ data: T; headers: Headers }> {
  // The launch source in the workload identities of what this call launches (launch_source).
  const headers: Record<string, string> = {
    accept: 'application/json',
    'x-berth-client': 'cli',
    ...extraHeaders,
  };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  let res: Response;
  try {
    res = await fetch(target.url + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CliError(
      `cannot reach Berth at ${target.url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
      'check the URL (BERTH_URL or `berth login --url`) and that `berth server` is running',
      EXIT.unavailable,
    );
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json as ErrorShape | undefined)?.error;
    const code = res.status === 401 ? EXIT.auth : res.status === 404 ? EXIT.notFound : EXIT.error;
    throw new CliError(e?.message ?? `HTTP ${res.status}`, e?.hint ?? 'see the server log', code);
  }
  return { data: json as T, headers: res.headers };
}
