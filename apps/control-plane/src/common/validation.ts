import { PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { ApiError } from './errors.js';

function describe(issues: z.core.$ZodIssue[]) {
  return issues.map((i) => {
    const path = i.path.map(String).join('.') || '(body)';
    if (i.code === 'unrecognized_keys') return { path, message: `unknown field(s): ${i.keys.join(', ')}` };
    return { path, message: i.message };
  });
}

/** Parses input with a zod schema; on failure a 400 naming each bad field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where = 'body'): z.output<S> {
  const r = schema.safeParse(value ?? (where === 'body' ? {} : value));
  if (r.success) return r.data;
  const details = describe(r.error.issues);
  const first = details[0];
  throw new ApiError(
    400,
    'validation_failed',
    `invalid ${where}: ${first ? `${first.path}: ${first.message}` : 'invalid'}`,
    'fix the fields listed in error.details; the schema is in the API docs at /api/docs',
    details,
  );
}

export class ZodPipe<S extends z.ZodType> implements PipeTransform {
  constructor(
    private readonly schema: S,
    private readonly where: 'body' | 'query' | 'params' = 'body',
  ) {}
  transform(value: unknown): z.output<S> {
    return parseInput(this.schema, value, this.where);
  }
}

export const zBody = <S extends z.ZodType>(s: S) => new ZodPipe(s, 'body');
export const zQuery = <S extends z.ZodType>(s: S) => new ZodPipe(s, 'query');

export const Uuid = z.string().uuid({ message: 'must be a UUID' });

/** Path ids that are not UUIDs cannot exist: answer 404 rather than leak a 500 from Postgres. */
export function idOr404(id: string, what: string): string {
  if (!Uuid.safeParse(id).success)
    throw new ApiError(
      404,
      'not_found',
      `${what} ${id} not found`,
      `check the ${what} id; list them to see the ones you can access`,
    );
  return id;
}

export function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}
