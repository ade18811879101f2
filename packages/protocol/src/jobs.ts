import { z } from 'zod';

/**
 * Every kind of background job Berth enqueues, with its payload, declared once. The queue
 * validates a payload against this catalog when it is enqueued and again when it is claimed, so
 * a job written by an older control plane that no longer parses is marked dead, not retried.
 * Payloads carry ids, never data that can go stale: handlers re-read the rows they act on.
 */
export const JobCatalog = {
  /** Drive a task: provision, start, stream output into chunks, record the exit. */
  'task.run': z.object({ taskId: z.string().uuid() }),
  /** Deliver a task's unacknowledged control messages, in sequence order. */
  'task.deliver': z.object({ taskId: z.string().uuid() }),
} as const;

/** Any catalog the queue can serve: kind → payload schema. Tests and benchmarks declare their own. */
export type JobCatalogShape = Record<string, z.ZodType>;
export type JobKind = keyof typeof JobCatalog & string;
export type JobPayload<K extends JobKind> = z.output<(typeof JobCatalog)[K]>;
