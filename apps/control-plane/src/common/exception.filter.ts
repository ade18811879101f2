import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { errorBody } from '@berth/protocol';
import { ApiError } from './errors.js';

const HINTS: Record<number, string> = {
  400: 'check the request against the API docs at /api/docs',
  401: 'sign in or send a valid token',
  403: 'ask an admin for access',
  404: 'check the URL; the API lives under /api/v1 and is described at /api/docs',
  405: 'check the HTTP method in the API docs at /api/docs',
  413: 'send a smaller body',
  429: 'wait a little and try again',
};

/** Maps every error, ours, Nest's and Express's, to the one error shape. Never leaks a stack. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  constructor(private readonly log: (err: unknown, req: Request) => void) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const { status, body } = this.toResponse(exception);
    if (status >= 500) this.log(exception, req);
    if (res.headersSent) return;
    res.status(status).json(body);
  }

  private toResponse(exception: unknown) {
    if (exception instanceof ApiError) return { status: exception.status, body: exception.toBody() };
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = status === 404 ? 'not_found' : status === 405 ? 'method_not_allowed' : `http_${status}`;
      const message = status === 404 ? 'no such endpoint' : exception.message;
      return {
        status,
        body: errorBody(code, message, HINTS[status] ?? 'check the request against /api/docs'),
      };
    }
    return {
      status: 500,
      body: errorBody(
        'internal',
        'internal error',
        'try again; if it keeps failing, report it with the x-request-id header of this response',
      ),
    };
  }
}
