import { z } from 'zod';
import { Uuid } from '../common/validation.js';

const When = z.coerce.date({ message: 'must be an ISO 8601 date or date-time' });

export const AuditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  /** Actor's user id. */
  user: Uuid.optional(),
  /** `tokens.create`, `POST /api/v1/tokens`, or a prefix ending in `*` (`tokens.*`). */
  action: z.string().min(1).max(240).optional(),
  since: When.optional(),
  until: When.optional(),
  /** A target id, or `type:id` (`user:<uuid>`). */
  target: z.string().min(1).max(200).optional(),
});
export type AuditQuery = z.output<typeof AuditQuery>;
