import { DynamicModule, Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module.js';
import { DATABASE_URL, LiveService } from './live.service.js';

@Module({})
export class LiveModule {
  static forRoot(databaseUrl: string): DynamicModule {
    return {
      module: LiveModule,
      imports: [AccountsModule],
      providers: [{ provide: DATABASE_URL, useValue: databaseUrl }, LiveService],
    };
  }
}
