import { z } from 'zod';

// One error shape for every failure the API or a gateway returns; `hint` says what to do next.
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export function errorBody(code: string, message: string, hint: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message, hint } : { code, message, hint, details } };
}
