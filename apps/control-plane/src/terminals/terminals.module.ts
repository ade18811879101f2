import { Module } from '@nestjs/common';
import { EnvironmentsRepository } from '../environments/environments.repository.js';
import { GatewaySessions } from '../environments/gateway-sessions.js';
import { SharedTerminalsController, TerminalSharesController } from './shares.controller.js';
import { SharesRepository } from './shares.repository.js';
import { SharesService } from './shares.service.js';
import { TerminalsController } from './terminals.controller.js';
import { TerminalsService } from './terminals.service.js';

@Module({
  controllers: [TerminalsController, TerminalSharesController, SharedTerminalsController],
  providers: [TerminalsService, SharesService, SharesRepository, EnvironmentsRepository, GatewaySessions],
})
export class TerminalsModule {}
