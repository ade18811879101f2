import express, { type RequestHandler } from 'express';
import { ApiError } from './errors.js';

/**
 * Request body size per endpoint. Small unless an endpoint needs more; the first pattern that
 * matches `METHOD path` wins. Bigger bodies get 413 with the error shape.
 */
export const BODY_LIMITS: Array<[RegExp, number]> = [
  [/^POST \/api\/v1\/tasks$/, 256 * 1024],
  [/^POST \/api\/v1\/environments$/, 256 * 1024],
  [/^[A-Z]+ \//, 16 * 1024],
];

export function bodyParsers(limits = BODY_LIMITS): RequestHandler {
  const parsers = new Map<number, RequestHandler>();
  for (const [, limit] of limits)
    if (!parsers.has(limit)) parsers.set(limit, express.json({ limit, strict: true }));
  return (req, res, next) => {
    const key = `${req.method} ${req.path}`;
    const limit = limits.find(([re]) => re.test(key))?.[1] ?? 16 * 1024;
    // Answered here: Nest would turn a parse error into a bare 400 and lose what went wrong.
    parsers.get(limit)!(req, res, (err?: unknown) => next(err ? toApiError(err, limit) : undefined));
  };
}

function toApiError(err: unknown, limit: number): unknown {
  const type = (err as { type?: unknown }).type;
  if (type === 'entity.too.large')
    return new ApiError(
      413,
      'payload_too_large',
      `request body is larger than this endpoint accepts (${limit} bytes)`,
      'send a smaller body',
    );
  if (type === 'entity.parse.failed')
    return new ApiError(
      400,
      'invalid_json',
      'request body is not valid JSON',
      'send a JSON object with Content-Type: application/json',
    );
  if (type === 'charset.unsupported' || type === 'encoding.unsupported')
    return new ApiError(415, 'unsupported_encoding', 'unsupported body encoding', 'send UTF-8 JSON');
  return err;
}
