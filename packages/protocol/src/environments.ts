import { z } from 'zod';

/** Lifecycle as seen by a provider; `missing` means the provider has no trace of it. */
export const EnvironmentState = z.enum(['provisioning', 'ready', 'stopped', 'failed', 'missing']);
export type EnvironmentState = z.infer<typeof EnvironmentState>;

export const EnvironmentResources = z
  .object({
    cpus: z.number().positive().optional(),
    memoryMb: z.number().int().positive().optional(),
    pids: z.number().int().positive().optional(),
  })
  .strict();
export type EnvironmentResources = z.infer<typeof EnvironmentResources>;

export const RepoSpec = z
  .object({
    url: z.string().min(1),
    ref: z.string().min(1).optional(),
    /** Used for the clone only; never written into the environment. */
    token: z.string().min(1).optional(),
  })
  .strict();
export type RepoSpec = z.infer<typeof RepoSpec>;

/** What a provider needs to create one environment. */
export const EnvironmentSpec = z
  .object({
    id: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9_.-]{0,62}$/,
        'lowercase letters, digits, "_", "." and "-", at most 63 characters',
      ),
    ownerId: z.string().min(1),
    /** The Berth installation that made it; labels the container so only that one reaps it. */
    installation: z.string().min(1).optional(),
    /** An image reference; the operator's base image when absent. */
    image: z.string().min(1).optional(),
    /** A host directory holding berth.yaml and/or .devcontainer/devcontainer.json to derive an image from. */
    buildContext: z.string().min(1).optional(),
    /** berth.yaml text given inline (takes precedence over the one in buildContext). */
    berthYaml: z.string().optional(),
    repo: RepoSpec.optional(),
    resources: EnvironmentResources.optional(),
    /** Container runtime (docker provider), from the operator's allow-list. */
    runtime: z.string().min(1).optional(),
    env: z.record(z.string(), z.string()).optional(),
    /** What the gateway verifies tokens against. */
    gateway: z
      .object({
        issuer: z.string().min(1),
        jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
        /** Where the gateway exports its spans; unset: it exports none. */
        otlpEndpoint: z.string().url().optional(),
      })
      .optional(),
  })
  .strict();
export type EnvironmentSpec = z.infer<typeof EnvironmentSpec>;

export const EnvironmentInfo = z.object({
  id: z.string(),
  state: EnvironmentState,
  gatewayUrl: z.string().nullable(),
  /** Hostname of the machine the environment runs on. */
  node: z.string(),
  provider: z.string(),
  /** Why it is failed or missing, when known. */
  detail: z.string().optional(),
  /** Forwarded ports: container port → host URL. */
  ports: z.record(z.string(), z.string()).optional(),
});
export type EnvironmentInfo = z.infer<typeof EnvironmentInfo>;

/** `berth.yaml` at the root of a repo or build context. */
export const BerthYaml = z
  .object({
    /** Image to start from instead of the base image. */
    image: z.string().min(1).optional(),
    /** Shell commands run in order at image build time, as root; the image is cached by their hash. */
    setup: z.array(z.string().min(1, 'a setup command cannot be empty')).optional(),
    env: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type BerthYaml = z.infer<typeof BerthYaml>;

const LifecycleCommand = z.union([
  z.string(),
  z.array(z.string()),
  z.record(z.string(), z.union([z.string(), z.array(z.string())])),
]);

/** The subset of devcontainer.json Berth understands; other keys are kept and ignored. */
export const DevcontainerJson = z
  .object({
    name: z.string().optional(),
    image: z.string().min(1).optional(),
    build: z
      .object({
        dockerfile: z.string().min(1),
        context: z.string().optional(),
        args: z.record(z.string(), z.string()).optional(),
      })
      .loose()
      .optional(),
    postCreateCommand: LifecycleCommand.optional(),
    containerEnv: z.record(z.string(), z.string()).optional(),
    remoteUser: z.string().min(1).optional(),
    forwardPorts: z.array(z.union([z.number().int().min(1).max(65535), z.string()])).optional(),
  })
  .loose();
export type DevcontainerJson = z.infer<typeof DevcontainerJson>;
