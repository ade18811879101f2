import { DynamicModule, Global, Module } from '@nestjs/common';
import { IdentityController } from './identity.controller.js';
import { IdentityService, KEYS } from './identity.service.js';
import type { KeySet } from './keys.js';

@Global()
@Module({})
export class IdentityModule {
  static forRoot(keys: KeySet): DynamicModule {
    return {
      module: IdentityModule,
      controllers: [IdentityController],
      providers: [{ provide: KEYS, useValue: keys }, IdentityService],
      exports: [IdentityService],
    };
  }
}
