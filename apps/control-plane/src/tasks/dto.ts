import { z } from 'zod';
import type { TaskEventRow, TaskRow } from '@berth/db';
import { CreateEnvironmentBody } from '../environments/dto.js';

/** An environment made for the task alone; destroyed when the task ends unless `keep`. */
export const TaskEnvironmentSpec = CreateEnvironmentBody.extend({ keep: z.boolean().optional() });
export type TaskEnvironmentSpec = z.output<typeof TaskEnvironmentSpec>;

export const CreateTaskBody = z
  .strictObject({
    /** argv: the program and its arguments (no shell unless you run one). */
    command: z.array(z.string().min(1).max(4096)).min(1).max(256),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name'),
        z.string().max(32_768),
      )
      .optional(),
    /** Seconds from when a worker picks the task up; capped by the server's global maximum. */
    timeoutSeconds: z.number().int().positive().optional(),
    /** Run under a pseudo-terminal (output merged, line discipline) instead of pipes. */
    tty: z.boolean().optional(),
    /** Terminal size for `tty`. */
    cols: z.number().int().min(1).max(1000).optional(),
    rows: z.number().int().min(1).max(1000).optional(),
    /**
     * Which of your secret references (by their env name, see /api/v1/secrets/refs) the task
     * gets, read from your Vault when it starts. Left out: all of them; `[]`: none.
     */
    secrets: z
      .array(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the env name of one of your secret references'),
      )
      .max(100)
      .optional(),
    /** Run in this existing environment of yours... */
    environmentId: z.string().uuid().optional(),
    /** ...or in a new one made from this spec (same fields as POST /api/v1/environments). */
    environment: TaskEnvironmentSpec.optional(),
  })
  .refine((b) => !(b.environmentId && b.environment), {
    message: 'give environmentId or environment, not both',
    path: ['environment'],
  });
export type CreateTaskBody = z.output<typeof CreateTaskBody>;

export const IdempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

export const LogQuery = z.strictObject({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(4 * 1024 * 1024)
    .default(1024 * 1024),
  /** Offsets count bytes; utf8 may split a multi-byte character at a page edge, base64 never does. */
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
  /** Keep the response open and stream output as server-sent events until the task ends. */
  follow: z.enum(['1', 'true', '0', 'false']).optional(),
});
export type LogQuery = z.output<typeof LogQuery>;

/** SSE resume point: the id of the last event received, a byte offset. */
export const LastEventId = z.coerce.number().int().min(0);

export interface TaskDto {
  id: string;
  state: TaskRow['state'];
  command: string[];
  environmentId: string | null;
  timeoutSeconds: number;
  deadlineAt: string | null;
  exitCode: number | null;
  error: string | null;
  cancelRequested: boolean;
  logBytes: number;
  node: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The secret references asked for by name; null: all of the owner's. */
  secrets: string[] | null;
  /** Where the launch came from (X-Berth-Client), as carried in its workload identity. */
  launchSource: TaskRow['launch_source'];
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** Env values are not echoed back: they may hold credentials. */
export function toTaskDto(t: TaskRow): TaskDto {
  return {
    id: t.id,
    state: t.state,
    command: t.command,
    environmentId: t.environment_id,
    timeoutSeconds: t.timeout_seconds,
    deadlineAt: iso(t.deadline_at),
    exitCode: t.exit_code,
    error: t.error,
    cancelRequested: t.cancel_requested_at !== null,
    logBytes: Number(t.log_bytes),
    node: t.node,
    createdAt: t.created_at.toISOString(),
    startedAt: iso(t.started_at),
    finishedAt: iso(t.finished_at),
    secrets: t.secret_names,
    launchSource: t.launch_source,
  };
}

export interface TaskEventDto {
  from: string | null;
  to: string;
  reason: string | null;
  workerId: string | null;
  node: string | null;
  at: string;
}

export const toTaskEventDto = (e: TaskEventRow): TaskEventDto => ({
  from: e.from_state,
  to: e.to_state,
  reason: e.reason,
  workerId: e.worker_id,
  node: e.node,
  at: e.at.toISOString(),
});
