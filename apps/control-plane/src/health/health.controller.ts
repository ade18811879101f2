import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Registry } from 'prom-client';
import type { Pool } from '@berth/db';
import { errorBody } from '@berth/protocol';
import { METRICS, PG_POOL } from '../common/di.js';
import { Public } from '../accounts/auth.guard.js';

@ApiExcludeController()
@Controller()
export class HealthController {
  constructor(
    @Inject(PG_POOL) private readonly db: Pool,
    @Inject(METRICS) private readonly registry: Registry,
  ) {}

  /** Liveness: the process answers. Never touches the database, so a DB outage does not restart pods. */
  @Public()
  @Get('healthz')
  healthz() {
    return { ok: true };
  }

  /** Readiness: the database answers within a second. */
  @Public()
  @Get('readyz')
  async readyz(@Res() res: Response) {
    try {
      await Promise.race([
        this.db.query('SELECT 1'),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('database did not answer within 1 s')), 1000).unref(),
        ),
      ]);
      res.json({ ok: true, database: 'ok' });
    } catch (err) {
      res
        .status(503)
        .json(
          errorBody(
            'not_ready',
            `database unavailable: ${(err as Error).message}`,
            'check DATABASE_URL and that Postgres is running',
          ),
        );
    }
  }

  @Public()
  @Get('metrics')
  async metrics(@Res() res: Response) {
    res.setHeader('Content-Type', this.registry.contentType);
    res.send(await this.registry.metrics());
  }
}
