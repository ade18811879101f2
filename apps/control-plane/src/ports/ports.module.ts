import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import { EnvironmentsRepository } from '../environments/environments.repository.js';
import { PortsController } from './ports.controller.js';
import { PortsRepository } from './ports.repository.js';
import { PortsService } from './ports.service.js';
import { PreviewController } from './preview.controller.js';

@Module({
  imports: [AccountsModule],
  controllers: [PortsController, PreviewController],
  providers: [PortsService, PortsRepository, EnvironmentsRepository],
})
export class PortsModule {}
