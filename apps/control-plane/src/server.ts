import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import cookieParser from 'cookie-parser';
import pg from 'pg';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import {
  createPool,
  migrate,
  startEmbeddedPostgres,
  withDatabase,
  type EmbeddedDatabase,
  type Pool,
} from '@berth/db';
import type { Config } from './config.js';
import { AppModule } from './app.module.js';
import { systemClock, type Clock } from './common/di.js';
import { bodyParsers } from './common/body-limits.js';
import { httpMetrics } from './common/http-metrics.js';
import { PinoNestLogger, createLogger, httpLogger } from './common/logging.js';
import { BootstrapService, type BootstrapOutcome } from './accounts/bootstrap.service.js';
import { loadKeys } from './identity/keys.js';
import { createProviders } from './environments/providers.js';
import type { EnvironmentProvider } from '@berth/providers';
import { webApp } from './web/static.js';
import { auditTrail } from './audit/audit.middleware.js';
import { httpTracing, parseOtlpHeaders, startTracing } from './common/tracing.js';
import { AuditService } from './audit/audit.service.js';

export interface RunningServer {
  url: string;
  port: number;
  databaseUrl: string;
  bootstrap: BootstrapOutcome;
  app: NestExpressApplication;
  pool: Pool;
  close(): Promise<void>;
}

export interface ServerOptions {
  logger?: Logger;
  clock?: Clock;
  /** Print to the operator (bootstrap URL, listening address). */
  announce?: (line: string) => void;
  /** Provider instances to use instead of building them from the config (tests). */
  providers?: Record<string, EnvironmentProvider>;
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount)
      await c.query(`CREATE DATABASE ${name}`).catch((e: { code?: string }) => {
        if (e.code !== '42P04') throw e; // another control plane created it first
      });
  } finally {
    await c.end();
  }
}

/** A stable id for this installation (names its Modal app), made once and kept in `metadata`. */
export async function installationId(pool: Pool): Promise<string> {
  await pool.query(
    `INSERT INTO metadata (key, value) VALUES ('installation_id', to_jsonb(substr(md5(random()::text), 1, 12)))
     ON CONFLICT (key) DO NOTHING`,
  );
  const { rows } = await pool.query<{ value: string }>(
    `SELECT value FROM metadata WHERE key = 'installation_id'`,
  );
  return rows[0]!.value;
}

/** The control plane: database (embedded unless DATABASE_URL), migrations, API. */
export async function startServer(config: Config, opts: ServerOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const announce = opts.announce ?? ((line: string) => logger.info(line));
  const cleanup: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const fn of cleanup.reverse())
      await fn().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
    cleanup.length = 0;
  };
  try {
    if (config.otelEndpoint) {
      // First in, last out: spans of the whole shutdown are still exported.
      const tracing = startTracing({
        endpoint: config.otelEndpoint,
        headers: parseOtlpHeaders(config.otelHeaders),
        serviceName: config.otelServiceName,
        serviceVersion: '0.1.0',
      });
      cleanup.push(() => tracing.shutdown());
    }
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const embedded: EmbeddedDatabase = await startEmbeddedPostgres({
        dataDir: config.dataDir,
        onLog: (line) => logger.debug({ component: 'postgres' }, line),
      });
      cleanup.push(() => embedded.stop());
      await ensureDatabase(embedded.url, 'berth');
      databaseUrl = withDatabase(embedded.url, 'berth');
      logger.info({ port: embedded.port, dataDir: config.dataDir }, 'embedded postgres started');
    }
    const applied = await migrate(databaseUrl);
    if (applied.length) logger.info({ applied }, 'migrations applied');
    const pool = createPool(databaseUrl, 20);
    cleanup.push(() => pool.end());

    const keys = await loadKeys({
      inline: config.signingKeys,
      file: config.signingKeyFile,
      dataDir: config.dataDir,
    });
    const providers = await createProviders(config, opts.providers, await installationId(pool), pool);
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'berth_' });
    const app = await NestFactory.create<NestExpressApplication>(
      AppModule.forRoot({
        config,
        pool,
        clock: opts.clock ?? systemClock,
        registry,
        logger,
        keys,
        databaseUrl,
        providers,
      }),
      { bodyParser: false, logger: new PinoNestLogger(logger), abortOnError: false },
    );
    app.set('trust proxy', config.trustProxy); // BERTH_TRUST_PROXY: whose X-Forwarded-For to believe
    app.disable('x-powered-by');
    app.use(httpTracing());
    app.use(httpLogger(logger));
    app.use(httpMetrics(registry));
    app.use(auditTrail(app.get(AuditService))); // every mutating /api/v1 call, failures included
    app.use(cookieParser());
    app.use(bodyParsers());
    app.use(webApp()); // the built web app at `/`; never answers /api, health, metrics or /.well-known
    const doc = SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('Berth API')
        .setVersion('1')
        .addBearerAuth()
        .addCookieAuth('berth_session')
        .build(),
    );
    SwaggerModule.setup('api/docs', app, doc, { jsonDocumentUrl: 'api/docs/openapi.json' });
    app.enableShutdownHooks([]);
    await app.listen(config.port, config.host);
    cleanup.push(() => app.close());
    const port = (app.getHttpServer().address() as AddressInfo).port;
    // With --port 0 the real port is known only now; links and the token issuer must use it.
    if (config.port === 0 && config.publicUrlDerived)
      config.publicUrl = config.publicUrl.replace(/:0$/, `:${port}`);
    const url = config.publicUrl;

    const bootstrap = await app.get(BootstrapService).onFirstStart();
    if (bootstrap.kind === 'token-issued') {
      announce(`First start: create the admin account at ${bootstrap.url}`);
      announce('(this one-time link is shown only now)');
    } else if (bootstrap.kind === 'admin-created') {
      announce(`Admin ${bootstrap.email} created from BERTH_ADMIN_EMAIL`);
    } else if (bootstrap.kind === 'token-already-issued') {
      announce(
        `No admin yet: use the bootstrap link printed on the first start (valid until ${bootstrap.expiresAt})`,
      );
    } else if (bootstrap.kind === 'token-expired') {
      announce(`No admin yet and the one-time bootstrap link is no longer valid: ${bootstrap.hint}`);
    }
    const bound = `http://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host}:${port}`;
    // Behind a proxy the public URL is not where this process listens: say both.
    announce(
      config.publicUrlDerived
        ? `Berth control plane listening on ${url}`
        : `Berth control plane listening on ${bound} (public URL ${url})`,
    );
    return { url, port, databaseUrl, bootstrap, app, pool, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
