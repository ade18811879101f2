import { z } from 'zod';

/**
 * How a provider starts the gateway inside an environment. The provider passes this JSON in the
 * `BERTH_GATEWAY_CONFIG` environment variable (or a file named by `BERTH_GATEWAY_CONFIG_FILE`).
 * The gateway prints one JSON line `{"msg":"gateway listening","port":N}` on stdout when ready,
 * and answers `GET /healthz` with `GatewayHealth`.
 */
export const GatewayConfig = z.object({
  environmentId: z.string().min(1),
  host: z.string().default('0.0.0.0'),
  /** 0 picks a free port (local provider); containers use a fixed one. */
  port: z.number().int().min(0).max(65535).default(7681),
  /** Issuer (control plane public URL) expected in every token. */
  issuer: z.string().min(1),
  /** Public JWKS of the control plane; tokens are verified offline against it. */
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
  /** Where the gateway keeps its logs, task output and state. */
  dataDir: z.string().min(1),
  /** Working directory for shells and tasks. */
  workdir: z.string().min(1),
  /** OTLP/HTTP collector the gateway sends its spans to (the operator's BERTH_GATEWAY_OTLP_ENDPOINT). */
  otlpEndpoint: z.string().url().optional(),
  terminal: z
    .object({
      ringBytes: z
        .number()
        .int()
        .positive()
        .default(1024 * 1024),
      idleTimeoutMs: z
        .number()
        .int()
        .positive()
        .default(30 * 60 * 1000),
      interactive: z.boolean().default(true),
    })
    .default({ ringBytes: 1024 * 1024, idleTimeoutMs: 30 * 60 * 1000, interactive: true }),
});
export type GatewayConfig = z.infer<typeof GatewayConfig>;
export type GatewayConfigInput = z.input<typeof GatewayConfig>;

export const GatewayHealth = z.object({
  ok: z.boolean(),
  environmentId: z.string(),
  version: z.string(),
  uptimeMs: z.number(),
});
export type GatewayHealth = z.infer<typeof GatewayHealth>;

/** Claims of a token the control plane signs for a gateway (EdDSA JWT, `aud` = environment id). */
export const GatewayTokenClaims = z.object({
  iss: z.string(),
  sub: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  exp: z.number(),
  iat: z.number(),
  jti: z.string().optional(),
  /** What the token allows: `terminal` (attach to a session), `exec` (control plane worker). */
  scope: z.enum(['terminal', 'exec', 'port']),
  role: z.enum(['driver', 'observer']).optional(),
  /** Terminal session id, when attaching to an existing session. */
  sid: z.string().optional(),
  /** Scope `port`: the one port inside the environment the ticket opens. */
  port: z.number().int().min(1).max(65535).optional(),
  /** Scope `port`: `preview` (HTTP/WebSocket through the browser) or `forward` (raw TCP, owner only). */
  access: z.enum(['preview', 'forward']).optional(),
  /**
   * Scope `terminal`: the read-only link (share id) an observer ticket came from, and when the
   * link expires (seconds since the epoch). The gateway closes such a viewer at `share_exp` and
   * when the control plane revokes the share. Scope `exec`: the share being revoked.
   */
  share: z.string().min(1).max(64).optional(),
  share_exp: z.number().int().positive().optional(),
});
export type GatewayTokenClaims = z.infer<typeof GatewayTokenClaims>;
