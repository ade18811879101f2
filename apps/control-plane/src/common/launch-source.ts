import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { LaunchSource } from '@berth/db';
import { ApiError } from './errors.js';

export const LAUNCH_SOURCE_HEADER = 'x-berth-client';
const CLIENTS = new Set<LaunchSource>(['web', 'mobile', 'cli', 'api']);

/**
 * Where the request says it was launched from (`X-Berth-Client: web | mobile | cli`), for the
 * workload identity's `launch_source` claim. Scripts calling the API send nothing: `api`. A
 * value outside the list is refused rather than guessed, so a typo in a client shows up at once.
 */
export function parseLaunchSource(header: string | string[] | undefined): LaunchSource {
  if (header === undefined || header === '') return 'api';
  const v = (Array.isArray(header) ? header[0] : header)?.trim().toLowerCase() ?? '';
  if (CLIENTS.has(v as LaunchSource)) return v as LaunchSource;
  throw new ApiError(
    400,
    'bad_client_header',
    `X-Berth-Client must be one of web, mobile, cli or api, not ${JSON.stringify(v.slice(0, 40))}`,
    'leave the header out (the launch is recorded as `api`), or send one of the listed values',
  );
}

export const ClientLaunchSource = createParamDecorator((_: unknown, ctx: ExecutionContext): LaunchSource =>
  parseLaunchSource(ctx.switchToHttp().getRequest<Request>().headers[LAUNCH_SOURCE_HEADER]),
);
