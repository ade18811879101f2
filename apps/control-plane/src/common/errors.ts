import { errorBody } from '@berth/protocol';

/** Every failure the API reports: an HTTP status, a stable code, and a hint of what to do next. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  toBody() {
    return errorBody(this.code, this.message, this.hint, this.details);
  }
}

export const notFound = (what: string, id: string) =>
  new ApiError(
    404,
    'not_found',
    `${what} ${id} not found`,
    `check the ${what} id; list them to see the ones you can access`,
  );

export const forbidden = (message: string, hint: string) => new ApiError(403, 'forbidden', message, hint);

export const unauthorized = (message = 'authentication required') =>
  new ApiError(
    401,
    'unauthorized',
    message,
    'sign in (POST /api/v1/auth/login) or send "Authorization: Bearer <token>"; `berth login` stores a token for the CLI',
  );
