import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { ApiError, notFound } from '../common/errors.js';
import { decodeCursor, toPage, type PageQuery } from '../common/pagination.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { toRefDto, toSettingsDto, type AddRefBody, type PutSettingsBody } from './dto.js';
import { IdentityService } from '../identity/identity.service.js';
import { SecretsRepository } from './secrets.repository.js';

const MAX_REFS = 100;

/** Per-user Vault settings and references. Only where secrets live; never their values. */
@Injectable()
export class SecretsService {
  constructor(
    @Inject(SecretsRepository) private readonly repo: SecretsRepository,
    @Inject(IdentityService) private readonly identity: IdentityService,
  ) {}

  /**
   * Where `berth run --vault-wrapped-token/--secrets-file` sends its secrets: straight to the
   * environment's gateway, with a 60 s token scoped to a fresh launch id (not to any task, so it
   * cannot drive one). The control plane sees only the id, never what is sent.
   */
  async launchTicket(ctx: AuthContext, environmentId: string) {
    const env = await this.repo.ownedEnvironment(ctx.userId, environmentId);
    if (!env) throw notFound('environment', environmentId);
    if (env.state !== 'ready' || !env.gateway_url)
      throw new ApiError(
        409,
        'environment_not_ready',
        `environment ${env.name} is ${env.state}`,
        'wait until it is ready (berth env show), or start it',
      );
    const launchId = randomUUID();
    const { token, expiresAt } = await this.identity.signGatewayToken({
      environmentId: env.id,
      userId: ctx.userId,
      scope: 'exec',
      sessionId: launchId,
      ttlSeconds: 60,
    });
    return {
      launchId,
      url: `${env.gateway_url.replace(/\/+$/, '')}/exec/launches/${launchId}/secrets`,
      token,
      expiresAt: expiresAt.toISOString(),
      env: { BERTH_CLIENT_SECRETS: launchId },
    };
  }

  async getSettings(ctx: AuthContext) {
    const s = await this.repo.getSettings(ctx.userId);
    return { settings: s ? toSettingsDto(s) : null };
  }

  async putSettings(ctx: AuthContext, body: z.output<typeof PutSettingsBody>) {
    const next = {
      user_id: ctx.userId,
      vault_address: body.vaultAddress.replace(/\/+$/, ''),
      auth_mount: body.authMount,
      role: body.role,
      audience: body.audience,
      namespace: body.namespace ?? null,
      ca_cert: body.caCert ?? null,
      kv_mount: body.kvMount,
    };
    const cur = await this.repo.getSettings(ctx.userId);
    if (cur && (Object.keys(next) as Array<keyof typeof next>).every((k) => cur[k] === next[k]))
      return { settings: toSettingsDto(cur), changed: false };
    return { settings: toSettingsDto(await this.repo.putSettings(next)), changed: true };
  }

  async deleteSettings(ctx: AuthContext) {
    return { deleted: await this.repo.deleteSettings(ctx.userId) };
  }

  async addRef(ctx: AuthContext, body: z.output<typeof AddRefBody>) {
    if ((await this.repo.countRefs(ctx.userId)) >= MAX_REFS)
      throw new ApiError(
        409,
        'too_many_refs',
        `at most ${MAX_REFS} secret references per user`,
        'remove references you no longer use',
      );
    const row = await this.repo.addRef({
      userId: ctx.userId,
      env: body.env,
      path: body.path,
      key: body.key,
      mount: body.mount ?? null,
    });
    if (!row)
      throw new ApiError(
        409,
        'env_taken',
        `${body.env} already has a secret reference`,
        'remove it first (berth secrets rm ID) or pick another name',
      );
    return { ref: toRefDto(row) };
  }

  async listRefs(ctx: AuthContext, q: PageQuery) {
    const rows = await this.repo.listRefs(ctx.userId, { limit: q.limit, after: decodeCursor(q.cursor) });
    return toPage(rows, q.limit, toRefDto);
  }

  async deleteRef(ctx: AuthContext, id: string) {
    if (!(await this.repo.deleteRef(ctx.userId, id))) throw notFound('secret reference', id);
    return { deleted: true };
  }
}
