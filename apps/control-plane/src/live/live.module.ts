import { DynamicModule, Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import { DATABASE_URL, LiveService } from './live.service.js';

@Module({})
export class LiveModule {
  static forRoot(databaseUrl: string): DynamicModule {
    return {
      module: LiveModule,
      // Global so features (tasks: following output) can use the one socket.io server.
      global: true,
      imports: [AccountsModule],
      providers: [{ provide: DATABASE_URL, useValue: databaseUrl }, LiveService],
      exports: [LiveService],
    };
  }
}
