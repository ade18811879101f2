import { z } from 'zod';
import type { EnvironmentEventRow, EnvironmentRow } from './environments.repository.js';

export const EnvironmentName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, {
  message: 'use 1-40 lowercase letters, digits and dashes',
});

export const CreateEnvironmentBody = z.strictObject({
  name: EnvironmentName.optional(),
  provider: z.string().min(1).max(32).optional(),
  image: z.string().min(1).max(512).optional(),
  repo: z
    .strictObject({
      url: z.string().min(1).max(2048),
      ref: z.string().min(1).max(255).optional(),
      /**
       * The env name of one of the user's secret references (`/api/v1/secrets/refs`): read from
       * their Vault at clone time for that clone only. The name is stored, never the value.
       */
      tokenSecret: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { message: 'must be the env name of a secret reference' })
        .optional(),
    })
    .optional(),
  /** Contents of a berth.yaml (setup commands etc.). */
  berthYaml: z
    .string()
    .max(64 * 1024)
    .optional(),
  /** Contents of .devcontainer/devcontainer.json (JSONC). */
  devcontainer: z
    .string()
    .max(64 * 1024)
    .optional(),
  resources: z
    .strictObject({
      cpu: z.number().positive().max(64).optional(),
      memoryMb: z
        .number()
        .int()
        .min(64)
        .max(256 * 1024)
        .optional(),
      pids: z.number().int().min(16).max(65536).optional(),
    })
    .optional(),
});
export type CreateEnvironmentBody = z.output<typeof CreateEnvironmentBody>;

export const ListEnvironmentsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  all: z.enum(['true', 'false']).optional(),
});

export const EventsQuery = z.strictObject({
  after: z
    .string()
    .regex(/^\d{1,19}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(200),
});

export interface EnvironmentDto {
  id: string;
  name: string;
  provider: string;
  state: string;
  stateReason: string | null;
  gatewayUrl: string | null;
  node: string | null;
  spec: Record<string, unknown>;
  createdAt: string;
  readyAt: string | null;
  lastActivityAt: string;
}

export function toEnvironmentDto(e: EnvironmentRow): EnvironmentDto {
  return {
    id: e.id,
    name: e.name,
    provider: e.provider,
    state: e.state,
    stateReason: e.state_reason,
    gatewayUrl: e.gateway_url,
    node: e.node,
    spec: e.spec,
    createdAt: e.created_at.toISOString(),
    readyAt: e.ready_at?.toISOString() ?? null,
    lastActivityAt: e.last_activity_at.toISOString(),
  };
}

export function toEventDto(e: EnvironmentEventRow) {
  return { id: e.id, at: e.at.toISOString(), kind: e.kind, message: e.message, data: e.data };
}
