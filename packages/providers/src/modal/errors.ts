import { ProviderError } from '../errors.js';

/**
 * The providers package has `ProviderError {code, message, hint}` but no notion of "transient".
 * This subclass adds `retryable`: true means the same call may succeed later unchanged (Modal
 * unavailable, a deadline, a race with a concurrent create), so the task engine should retry it
 * with backoff; false means retrying without a change (credentials, quota, the Dockerfile) is
 * pointless. `isRetryable` reads it from any error, so callers need not know this class.
 */
export class ModalProviderError extends ProviderError {
  constructor(
    code: string,
    message: string,
    hint: string,
    readonly retryable: boolean,
    details?: unknown,
  ) {
    super(code, message, hint, details);
    this.name = 'ModalProviderError';
  }
}

export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}

// gRPC status codes (nice-grpc's ClientError carries them as numbers).
const CANCELLED = 1;
const UNKNOWN = 2;
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const FAILED_PRECONDITION = 9;
const ABORTED = 10;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

const TRANSIENT_CODES = new Set([CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNAVAILABLE]);

/** Removes credentials from text that may have echoed them (an SDK message, a server detail). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.replaceAll(s, '***');
  return out;
}

/**
 * Turns whatever the SDK threw into a ModalProviderError with a hint. `doing` names the step
 * ("creating the sandbox") so the message says where it failed. Never includes credentials.
 */
export function fromModal(err: unknown, doing: string, secrets: readonly string[]): ModalProviderError {
  if (err instanceof ModalProviderError) return err;
  const e = err as { name?: string; code?: unknown; details?: unknown; message?: unknown };
  const raw =
    typeof e.details === 'string' && e.details
      ? e.details
      : typeof e.message === 'string'
        ? e.message
        : String(err);
  // Build failures carry the step's output; keep the head (which step) and the tail (why).
  const clean = scrub(raw, secrets);
  const text = clean.length > 4000 ? `${clean.slice(0, 1000)}\n…\n${clean.slice(-3000)}` : clean;
  const code = typeof e.code === 'number' ? e.code : undefined;
  const name = e.name ?? '';
  const msg = `Modal: ${doing} failed: ${text}`;

  if (
    code === UNAUTHENTICATED ||
    code === PERMISSION_DENIED ||
    /missing credentials|invalid token|unauthenticated/i.test(text)
  ) {
    return new ModalProviderError(
      'modal_auth',
      msg,
      'check the Modal token (MODAL_TOKEN_ID / MODAL_TOKEN_SECRET) in the Berth operator config; create one with `modal token new` or in the Modal dashboard under Settings > API Tokens',
      false,
    );
  }
  if (code === RESOURCE_EXHAUSTED || name === 'ResourceExhaustedError' || /quota|limit reached/i.test(text)) {
    return new ModalProviderError(
      'modal_quota',
      msg,
      'a Modal workspace limit was reached: stop or destroy idle environments, or raise the limit in the Modal dashboard (Settings > Usage and limits)',
      false,
    );
  }
  if (/^Image build for .* (terminated due to external shut-down|timed out)/s.test(text)) {
    return new ModalProviderError(
      'build_failed',
      msg,
      'the Modal image build was interrupted; it is retried automatically',
      true,
    );
  }
  if (/^Image build for /s.test(text)) {
    return new ModalProviderError(
      'build_failed',
      msg,
      'fix the failing setup command, Dockerfile step or image reference and retry; the build output is in the message',
      false,
    );
  }
  if (code === ALREADY_EXISTS || name === 'AlreadyExistsError') {
    return new ModalProviderError(
      'modal_conflict',
      msg,
      'another create for this environment is in flight; a retry finds the sandbox it made',
      true,
    );
  }
  if (code === INVALID_ARGUMENT || name === 'InvalidError') {
    return new ModalProviderError(
      'modal_invalid',
      msg,
      'Modal refused the request; check the environment spec (resources, names) against Modal limits',
      false,
    );
  }
  if (code === NOT_FOUND || name === 'NotFoundError') {
    return new ModalProviderError(
      'not_found',
      msg,
      'the Modal object is gone (terminated or deleted); recreate the environment',
      false,
    );
  }
  if (code === FAILED_PRECONDITION || name === 'ConflictError') {
    return new ModalProviderError(
      'modal_sandbox_exited',
      msg,
      'the sandbox has already finished; start the environment again',
      false,
    );
  }
  if (
    (code !== undefined && TRANSIENT_CODES.has(code)) ||
    name === 'TimeoutError' ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|No connection established/i.test(text)
  ) {
    return new ModalProviderError(
      'modal_unavailable',
      msg,
      'Modal did not answer or failed transiently; the operation is retried with backoff (see status.modal.com if it persists)',
      true,
    );
  }
  return new ModalProviderError(
    'modal_error',
    msg,
    'see the message; if it names a Modal limit or setting, change it in the Modal dashboard',
    false,
  );
}
