import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

const bool = z
  .union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no'])])
  .transform((v) => v === true || v === '1' || v === 'true' || v === 'yes');

/**
 * Every setting of the control plane, parsed once at start. Nothing else reads process.env:
 * `loadConfig(process.env, flags)` is called by the entry point and the result passed in.
 */
export const ConfigSchema = z.object({
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  dataDir: z.string().min(1),
  /** External Postgres; when absent an embedded one runs under `<dataDir>/pg`. */
  databaseUrl: z.string().url().optional(),
  /** Where users reach this control plane; defaults to http://host:port. */
  publicUrl: z.string().url().optional(),
  adminEmail: z.string().email().optional(),
  adminPassword: z.string().min(8).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  sessionTtlHours: z.coerce
    .number()
    .positive()
    .default(24 * 7),
  tokenMaxDays: z.coerce.number().int().positive().default(365),
  /** Failed logins allowed per client address and account in a window, before 429. */
  loginRateLimit: z.coerce.number().int().positive().default(10),
  loginRateWindowSeconds: z.coerce.number().int().positive().default(60),
  /** Secure cookies need HTTPS; on by default when the public URL is https. */
  secureCookies: bool.optional(),
  /**
   * Which proxies' X-Forwarded-For to believe (Express `trust proxy`): `false`, `true`, a hop
   * count, or addresses/subnets/`loopback`/`uniquelocal`, comma-separated. The client address
   * it yields is what the audit log records and rate limits count.
   */
  trustProxy: z
    .string()
    .default('loopback')
    .transform((v): boolean | number | string => {
      const t = v.trim();
      if (t === 'false') return false;
      if (t === 'true') return true;
      return /^\d+$/.test(t) ? Number(t) : t;
    }),
  /**
   * Private signing keys (JSON array of Ed25519 JWKs, newest first). Several control planes
   * must share them; when unset, a key file under the data dir is created on first start.
   */
  signingKeys: z.string().optional(),
  signingKeyFile: z.string().optional(),
  /** Environment providers this control plane offers, the first being the default. */
  providers: z
    .string()
    .default('local')
    .transform((v) =>
      v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(['local', 'docker', 'modal', 'fake'])).min(1)),
  /**
   * Pre-started default-image environments per provider (`docker:2,local:1`), claimed by
   * `POST /environments` requests that ask for nothing but the defaults. Empty: no pool.
   */
  warmPool: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: Array<{ provider: string; size: number }> = [];
      for (const part of v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const m = /^([a-z]+):(\d{1,2})$/.exec(part);
        if (!m) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not provider:size (e.g. docker:2)` });
          return z.NEVER;
        }
        out.push({ provider: m[1]!, size: Number(m[2]) });
      }
      return out;
    }),
  /** Docker provider: the base image (default: the one docker/base builds) and where gateway ports are published. */
  dockerBaseImage: z.string().min(1).optional(),
  dockerBindAddress: z.string().min(1).default('127.0.0.1'),
  /** Where the docker provider stages the gateway's files for an engine that does not share Berth's filesystem. */
  gatewayAssetsDir: z
    .string()
    .refine((p) => p.startsWith('/'), 'must be an absolute path')
    .optional(),
  /** Modal provider: the operator's token (never logged), optional endpoint and workspace environment. */
  modalTokenId: z.string().min(1).optional(),
  modalTokenSecret: z.string().min(1).optional(),
  modalServerUrl: z.string().url().optional(),
  modalEnvironment: z.string().min(1).optional(),
  /** A registry image with node 20+ and npm, the base of Modal environments. */
  modalBaseImage: z.string().min(1).default('node:20-bookworm-slim'),
  /** Where Modal sandboxes fetch the gateway bundle; unset: it is inlined in the image build. */
  modalGatewayBundleUrl: z.string().url().optional(),
  /** Modal `timeout`: a sandbox's lifetime cap (Modal allows up to 24 h). */
  modalTimeoutHours: z.coerce.number().positive().max(24).default(24),
  /** Modal `idleTimeout`; 0: none. Modal then terminates without a snapshot, so files are lost. */
  modalIdleTimeoutMinutes: z.coerce.number().min(0).default(0),
  /** Maximums an environment may ask for, and what it gets when it asks for nothing. */
  envMaxCpus: z.coerce.number().positive().default(4),
  envMaxMemoryMb: z.coerce.number().int().positive().default(8192),
  envDefaultCpus: z.coerce.number().positive().default(1),
  envDefaultMemoryMb: z.coerce.number().int().positive().default(1024),
  /** Stop environments with no terminal attached and no activity for this long; 0 never. */
  envIdleStopMinutes: z.coerce.number().min(0).default(60),
  /** Destroy environments older than this; 0 never. */
  envMaxLifetimeHours: z.coerce.number().min(0).default(0),
  /** How often the reaper reconciles environments with their providers. */
  envReapSeconds: z.coerce.number().positive().default(30),
  /** Tasks: the timeout when a task names none, and the global maximum whatever it asks for. */
  taskDefaultTimeoutSeconds: z.coerce.number().int().positive().default(3600),
  taskMaxTimeoutSeconds: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  /** Tasks one user may have queued or running at once; a new one past it is refused (429). 0: no limit. */
  taskMaxConcurrentPerUser: z.coerce.number().int().min(0).default(20),
  /** Wildcard domain for port previews (`<port>-<envid>.<domain>`); unset: path routing on the gateway. */
  portsDomain: z
    .string()
    .regex(
      /^(?=.{1,200}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$/i,
      'must be a DNS domain like preview.example.com',
    )
    .optional(),
  /** Operator switch: when false, nobody can open or attach to a terminal (tasks still run). */
  interactiveAttach: bool.default(true),
  /** How often live sockets re-check their session or token (revocations also trigger it at once). */
  liveRecheckSeconds: z.coerce.number().int().positive().default(60),
  /** Webhooks: root key their signing secrets derive from (base64, 32+ bytes; shared by all replicas). */
  webhookKey: z.string().min(1).optional(),
  /** Let webhooks reach loopback and private networks (off: a user's URL cannot probe the control plane's network). */
  webhookAllowPrivate: bool.default(false),
  webhookTimeoutSeconds: z.coerce.number().int().positive().max(120).default(10),
  /** First retry delay of a failed delivery; doubles each attempt (8 attempts). */
  webhookRetryBaseMs: z.coerce.number().int().positive().default(30_000),
  /** Mutating API calls per user (or client address before sign-in), refilled per minute; 0 turns it off. */
  mutationRatePerMinute: z.coerce.number().int().min(0).default(600),
  /** How many of them may come at once. */
  mutationRateBurst: z.coerce.number().int().positive().default(300),
  /** Default quotas (an admin sets per-user ones): environments not ended at once, environment-hours per UTC day; 0 no limit. */
  quotaMaxEnvironments: z.coerce.number().int().min(0).default(10),
  quotaEnvHoursPerDay: z.coerce.number().min(0).default(0),
  /** A worker that stops heartbeating (crash, freeze, partition) loses its tasks to the others after this long. */
  taskLeaseSeconds: z.coerce.number().int().min(2).max(600).default(30),
  /** OpenTelemetry: traces go to `<endpoint>/v1/traces` (OTLP/HTTP JSON) when set; off otherwise. */
  otelEndpoint: z.string().url().optional(),
  otelHeaders: z.string().optional(),
  otelServiceName: z.string().min(1).default('berth-control-plane'),
  /** Where environments' gateways send their spans; unset: they send none. Must be reachable from inside them. */
  gatewayOtlpEndpoint: z.string().url().optional(),
  /** Run task workers in this process (`berth server`); `berth worker` runs them alone. */
  workers: bool.default(true),
});
export type Config = z.infer<typeof ConfigSchema> & {
  publicUrl: string;
  /** True when BERTH_PUBLIC_URL was not given: the URL follows the real listening port. */
  publicUrlDerived: boolean;
};

export type Env = Record<string, string | undefined>;

export interface ConfigFlags {
  port?: number | string;
  host?: string;
  dataDir?: string;
  logLevel?: string;
  workers?: boolean;
}

function clean<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as Partial<T>;
}

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export function loadConfig(env: Env, flags: ConfigFlags = {}): Config {
  const raw = {
    ...clean({
      port: env.BERTH_PORT,
      host: env.BERTH_HOST,
      dataDir: env.BERTH_DATA_DIR ?? join(env.HOME ?? homedir(), '.berth'),
      databaseUrl: env.DATABASE_URL,
      publicUrl: env.BERTH_PUBLIC_URL,
      adminEmail: env.BERTH_ADMIN_EMAIL,
      adminPassword: env.BERTH_ADMIN_PASSWORD,
      logLevel: env.BERTH_LOG_LEVEL,
      sessionTtlHours: env.BERTH_SESSION_TTL_HOURS,
      tokenMaxDays: env.BERTH_TOKEN_MAX_DAYS,
      loginRateLimit: env.BERTH_LOGIN_RATE_LIMIT,
      loginRateWindowSeconds: env.BERTH_LOGIN_RATE_WINDOW_SECONDS,
      secureCookies: env.BERTH_SECURE_COOKIES,
      trustProxy: env.BERTH_TRUST_PROXY,
      signingKeys: env.BERTH_SIGNING_KEYS,
      interactiveAttach: env.BERTH_INTERACTIVE_ATTACH,
      liveRecheckSeconds: env.BERTH_LIVE_RECHECK_SECONDS,
      portsDomain: env.BERTH_PORTS_DOMAIN,
      workers: env.BERTH_WORKERS,
      otelEndpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
        ? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.replace(/\/v1\/traces\/?$/, '')
        : env.OTEL_EXPORTER_OTLP_ENDPOINT,
      otelHeaders: env.OTEL_EXPORTER_OTLP_HEADERS,
      otelServiceName: env.OTEL_SERVICE_NAME,
      gatewayOtlpEndpoint: env.BERTH_GATEWAY_OTLP_ENDPOINT,
      taskLeaseSeconds: env.BERTH_TASK_LEASE_SECONDS,
      quotaMaxEnvironments: env.BERTH_QUOTA_MAX_ENVIRONMENTS,
      quotaEnvHoursPerDay: env.BERTH_QUOTA_ENV_HOURS_PER_DAY,
      mutationRatePerMinute: env.BERTH_MUTATION_RATE_PER_MINUTE,
      mutationRateBurst: env.BERTH_MUTATION_RATE_BURST,
      webhookKey: env.BERTH_WEBHOOK_KEY,
      webhookAllowPrivate: env.BERTH_WEBHOOK_ALLOW_PRIVATE,
      webhookTimeoutSeconds: env.BERTH_WEBHOOK_TIMEOUT_SECONDS,
      webhookRetryBaseMs: env.BERTH_WEBHOOK_RETRY_BASE_MS,
      taskDefaultTimeoutSeconds: env.BERTH_TASK_DEFAULT_TIMEOUT_SECONDS,
      taskMaxTimeoutSeconds: env.BERTH_TASK_MAX_TIMEOUT_SECONDS,
      taskMaxConcurrentPerUser: env.BERTH_TASK_MAX_CONCURRENT_PER_USER,
      envIdleStopMinutes: env.BERTH_ENV_IDLE_STOP_MINUTES,
      envMaxLifetimeHours: env.BERTH_ENV_MAX_LIFETIME_HOURS,
      envReapSeconds: env.BERTH_ENV_REAP_SECONDS,
      providers: env.BERTH_PROVIDERS,
      warmPool: env.BERTH_WARM_POOL,
      dockerBaseImage: env.BERTH_DOCKER_BASE_IMAGE,
      modalTokenId: env.MODAL_TOKEN_ID,
      modalTokenSecret: env.MODAL_TOKEN_SECRET,
      modalServerUrl: env.BERTH_MODAL_SERVER_URL,
      modalEnvironment: env.MODAL_ENVIRONMENT,
      modalBaseImage: env.BERTH_MODAL_BASE_IMAGE,
      modalGatewayBundleUrl: env.BERTH_MODAL_GATEWAY_BUNDLE_URL,
      modalTimeoutHours: env.BERTH_MODAL_TIMEOUT_HOURS,
      modalIdleTimeoutMinutes: env.BERTH_MODAL_IDLE_TIMEOUT_MINUTES,
      dockerBindAddress: env.BERTH_DOCKER_BIND_ADDRESS,
      gatewayAssetsDir: env.BERTH_GATEWAY_ASSETS_DIR || undefined,
      envMaxCpus: env.BERTH_ENV_MAX_CPUS,
      envMaxMemoryMb: env.BERTH_ENV_MAX_MEMORY_MB,
      envDefaultCpus: env.BERTH_ENV_DEFAULT_CPUS,
      envDefaultMemoryMb: env.BERTH_ENV_DEFAULT_MEMORY_MB,
      signingKeyFile: env.BERTH_SIGNING_KEY_FILE,
    }),
    ...clean({ ...flags }),
  };
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.join('.') ?? 'config';
    throw new ConfigError(
      `invalid setting ${where}: ${first?.message ?? 'invalid'}`,
      'check the BERTH_* environment variables and command-line flags (see docs/configuration.md)',
    );
  }
  const c = parsed.data;
  if ((c.adminEmail === undefined) !== (c.adminPassword === undefined)) {
    throw new ConfigError(
      'BERTH_ADMIN_EMAIL and BERTH_ADMIN_PASSWORD must be set together',
      'set both to create the admin on first start, or neither to get a bootstrap URL',
    );
  }
  if (c.providers.includes('modal') && !(c.modalTokenId && c.modalTokenSecret)) {
    throw new ConfigError(
      'the modal provider needs MODAL_TOKEN_ID and MODAL_TOKEN_SECRET',
      'create a token with `modal token new` and set both, or drop modal from BERTH_PROVIDERS',
    );
  }
  const unpooled = c.warmPool.find((w) => !c.providers.includes(w.provider as (typeof c.providers)[number]));
  if (unpooled)
    throw new ConfigError(
      `BERTH_WARM_POOL names provider ${unpooled.provider}, which is not in BERTH_PROVIDERS`,
      'add it to BERTH_PROVIDERS or drop it from BERTH_WARM_POOL',
    );
  if (c.taskDefaultTimeoutSeconds > c.taskMaxTimeoutSeconds) {
    throw new ConfigError(
      'BERTH_TASK_DEFAULT_TIMEOUT_SECONDS is above BERTH_TASK_MAX_TIMEOUT_SECONDS',
      'lower the default or raise the maximum',
    );
  }
  const shownHost = c.host === '0.0.0.0' || c.host === '::' ? '127.0.0.1' : c.host;
  return {
    ...c,
    publicUrl: (c.publicUrl ?? `http://${shownHost}:${c.port}`).replace(/\/+$/, ''),
    publicUrlDerived: c.publicUrl === undefined,
  };
}
