import { DynamicModule, Global, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { AuditController } from './audit.controller.js';
import { AuditRepository } from './audit.repository.js';
import { AUDIT_LOGGER, AuditService } from './audit.service.js';

/** Global so any feature module can inject AuditService (terminal attach) without importing this. */
@Global()
@Module({})
export class AuditModule {
  static forRoot(deps: { logger: Logger }): DynamicModule {
    return {
      module: AuditModule,
      controllers: [AuditController],
      providers: [{ provide: AUDIT_LOGGER, useValue: deps.logger }, AuditRepository, AuditService],
      exports: [AuditService],
    };
  }
}
