import { z } from 'zod';
import { ApiError } from './errors.js';

export const PageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});
export type PageQuery = z.output<typeof PageQuery>;

/** Keyset position: the last row's (created_at as Postgres text, id). Stable under inserts. */
export interface PageKey {
  at: string;
  id: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(key: PageKey): string {
  return Buffer.from(JSON.stringify([key.at, key.id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): PageKey | null {
  if (!cursor) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') {
      if (!Number.isNaN(Date.parse(v[0])) && /^[0-9a-f-]{36}$/.test(v[1])) return { at: v[0], id: v[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new ApiError(
    400,
    'invalid_cursor',
    'the cursor is not one this API returned',
    'pass nextCursor from the previous page unchanged, or omit it for the first page',
  );
}

/** Repositories fetch limit+1 rows; the extra one tells whether there is a next page. */
export function toPage<R extends { page_at: string; id: string }, T>(
  rows: R[],
  limit: number,
  map: (r: R) => T,
): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return {
    items: items.map(map),
    nextCursor: more && last ? encodeCursor({ at: last.page_at, id: last.id }) : null,
  };
}
