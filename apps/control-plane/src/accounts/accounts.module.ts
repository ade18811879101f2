import { Module } from '@nestjs/common';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { BootstrapService } from './bootstrap.service.js';
import { MetadataRepository } from './metadata.repository.js';
import { SessionsRepository } from './sessions.repository.js';
import { TokensController } from './tokens.controller.js';
import { TokensRepository } from './tokens.repository.js';
import { TokensService } from './tokens.service.js';
import { UsersController } from './users.controller.js';
import { UsersRepository } from './users.repository.js';
import { UsersService } from './users.service.js';

@Module({
  controllers: [AuthController, UsersController, TokensController],
  providers: [
    AuthService,
    BootstrapService,
    UsersService,
    TokensService,
    UsersRepository,
    TokensRepository,
    SessionsRepository,
    MetadataRepository,
  ],
  exports: [AuthService, BootstrapService, UsersRepository],
})
export class AccountsModule {}
