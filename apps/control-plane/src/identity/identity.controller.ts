import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { Public } from '../accounts/auth.guard.js';
import { IdentityService } from './identity.service.js';

/** OIDC discovery, so a user's Vault (JWT auth) can trust Berth-signed workload identities. */
@ApiTags('identity')
@Controller('.well-known')
export class IdentityController {
  constructor(@Inject(IdentityService) private readonly identity: IdentityService) {}

  @Public()
  @Get('openid-configuration')
  @Header('Cache-Control', 'public, max-age=300')
  @ApiOperation({ summary: 'OIDC discovery document' })
  discovery() {
    const iss = this.identity.issuer;
    return {
      issuer: iss,
      jwks_uri: `${iss}/.well-known/jwks.json`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['EdDSA'],
      claims_supported: [
        'iss',
        'sub',
        'aud',
        'exp',
        'iat',
        'nbf',
        'jti',
        'environment_id',
        'task_id',
        'provider',
        'launch_source',
      ],
    };
  }

  @Public()
  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=300')
  @ApiOperation({ summary: 'Public signing keys' })
  jwks() {
    return this.identity.jwks();
  }
}
