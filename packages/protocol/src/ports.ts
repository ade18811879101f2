import { z } from 'zod';

/**
 * Who may open a port's preview URL: the environment's owner (default), anyone signed in to this
 * Berth, or anyone with the link. The control plane decides and mints tickets; the gateway only
 * trusts tickets.
 */
export const PortSharing = z.enum(['owner', 'authenticated', 'public']);
export type PortSharing = z.infer<typeof PortSharing>;

export const PortNumber = z.number().int().min(1).max(65535);

/** One row of `GET /api/v1/environments/:id/ports`. */
export const PortInfo = z.object({
  port: PortNumber,
  /** Something listens on it now (read by the gateway); null when the gateway could not be asked. */
  listening: z.boolean().nullable(),
  /** Listed in devcontainer.json `forwardPorts`. */
  declared: z.boolean(),
  sharing: PortSharing,
  /** Addresses it listens on inside the environment (`127.0.0.1`, `0.0.0.0`, `::`). */
  addresses: z.array(z.string()),
  /** Stable link on the control plane; each visit gets a fresh ticket if the visitor may open it. */
  previewUrl: z.string(),
});
export type PortInfo = z.infer<typeof PortInfo>;

export const PortList = z.object({
  ports: z.array(PortInfo),
  /** `ok`, or why listening ports are unknown. */
  gateway: z.enum(['ok', 'unreachable', 'not_ready']),
});
export type PortList = z.infer<typeof PortList>;

/** `POST …/ports/:port/open`: a URL on the gateway with a one-time ticket (use within 60 s). */
export const PortOpen = z.object({
  port: PortNumber,
  url: z.string(),
  previewUrl: z.string(),
  sharing: PortSharing,
  expiresAt: z.string(),
});
export type PortOpen = z.infer<typeof PortOpen>;

/**
 * `POST …/ports/:port/forward`: WebSocket URL and a ticket for `berth port-forward` (owner only).
 * The ticket may open many connections within its minute. On the WebSocket, binary frames are
 * TCP bytes and a text frame `eof` is a half-close; a normal close (1000) follows the TCP close.
 */
export const PortForwardTicket = z.object({
  port: PortNumber,
  url: z.string(),
  token: z.string(),
  expiresAt: z.string(),
});
export type PortForwardTicket = z.infer<typeof PortForwardTicket>;
export const TCP_EOF_MESSAGE = 'eof';
