/**
 * A failed Vault call. The message is built only from the method, the API path, Vault's own
 * error strings and a hint: never from request bodies or headers, so a token or secret value
 * cannot end up in a log line through this error.
 */
export class VaultError extends Error {
  override readonly name = 'VaultError';
  /** HTTP status Vault answered with; undefined when no answer came (network, TLS, timeout). */
  readonly status: number | undefined;
  /** Vault's own `{"errors": [...]}` strings, as sent. */
  readonly vaultErrors: string[];
  /** The API path (e.g. `secret/data/users/x`), never a token. */
  readonly path: string;
  /** What to check or do next, in words a user can act on. */
  readonly hint: string;
  /** Low-level cause code when there was no HTTP answer (ECONNREFUSED, ETIMEDOUT, …). */
  readonly code: string | undefined;

  constructor(init: {
    message: string;
    path: string;
    hint: string;
    status?: number;
    vaultErrors?: string[];
    code?: string;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.vaultErrors = init.vaultErrors ?? [];
    this.path = init.path;
    this.hint = init.hint;
    this.code = init.code;
  }
}

/**
 * Vault wraps ACL denials in a go-multierror ("1 error occurred:\n\t* permission denied\n\n");
 * flatten that so messages read on one line.
 */
export function flattenVaultError(text: string): string {
  const bullets = [...text.matchAll(/^\t\* (.+)$/gm)].map((m) => m[1] ?? '');
  if (/^\d+ errors? occurred:/.test(text) && bullets.length > 0) return bullets.join('; ');
  return text.trim();
}
