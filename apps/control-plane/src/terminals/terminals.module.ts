import { Module } from '@nestjs/common';
import { EnvironmentsRepository } from '../environments/environments.repository.js';
import { GatewaySessions } from '../environments/gateway-sessions.js';
import { TerminalsController } from './terminals.controller.js';
import { TerminalsService } from './terminals.service.js';

@Module({
  controllers: [TerminalsController],
  providers: [TerminalsService, EnvironmentsRepository, GatewaySessions],
})
export class TerminalsModule {}
