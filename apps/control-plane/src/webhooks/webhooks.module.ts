import {
  DynamicModule,
  Inject,
  Injectable,
  Module,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Pool } from '@berth/db';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, PG_POOL, type Clock } from '../common/di.js';
import { loadWebhookKey } from './secret.js';
import { startWebhookWorkers } from './webhook-workers.js';
import { WebhooksController } from './webhooks.controller.js';
import { WebhooksRepository } from './webhooks.repository.js';
import { WEBHOOK_ROOT_KEY, WebhooksService } from './webhooks.service.js';

const WEBHOOK_DEPS = Symbol('WEBHOOK_DEPS');
interface WebhookDeps {
  databaseUrl: string;
  logger: Logger;
}

/** `berth server` delivers webhooks in-process when it runs workers. */
@Injectable()
export class WebhookWorkersService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private workers: { stop(graceMs?: number): Promise<void> } | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(WEBHOOK_ROOT_KEY) private readonly rootKey: Buffer,
    @Inject(WEBHOOK_DEPS) private readonly deps: WebhookDeps,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.workers) return;
    this.workers = await startWebhookWorkers({
      pool: this.pool,
      databaseUrl: this.deps.databaseUrl,
      rootKey: this.rootKey,
      clock: this.clock,
      logger: this.deps.logger.child({ component: 'webhook-workers' }),
      allowPrivate: this.config.webhookAllowPrivate,
      timeoutMs: this.config.webhookTimeoutSeconds * 1000,
      backoff: { baseMs: this.config.webhookRetryBaseMs, maxMs: 30 * 60 * 1000 },
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.workers?.stop();
    this.workers = undefined;
  }
}

@Module({})
export class WebhooksModule {
  static forRoot(deps: WebhookDeps & { config: Config }): DynamicModule {
    return {
      module: WebhooksModule,
      controllers: [WebhooksController],
      providers: [
        { provide: WEBHOOK_DEPS, useValue: deps },
        {
          provide: WEBHOOK_ROOT_KEY,
          useFactory: () =>
            loadWebhookKey({
              ...(deps.config.webhookKey ? { inline: deps.config.webhookKey } : {}),
              dataDir: deps.config.dataDir,
            }),
        },
        WebhooksRepository,
        WebhooksService,
        WebhookWorkersService,
      ],
    };
  }
}
