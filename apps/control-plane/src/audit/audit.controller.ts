import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { forbidden } from '../common/errors.js';
import { zQuery } from '../common/validation.js';
import { AuditQuery } from './dto.js';
import { AuditService } from './audit.service.js';

@ApiTags('audit')
@Controller('api/v1/audit')
export class AuditController {
  constructor(@Inject(AuditService) private readonly audit: AuditService) {}

  @Get()
  @ApiOperation({
    summary: 'Audit log, newest first (admin). Filters: user, action (prefix with *), since, until, target',
  })
  list(@Auth() ctx: AuthContext, @Query(zQuery(AuditQuery)) q: AuditQuery) {
    if (ctx.role !== 'admin')
      throw forbidden(
        'the audit log is for admins',
        'ask an admin to look it up; an admin token needs the admin scope: berth token create audit --scope read admin',
      );
    const [type, id] = q.target?.includes(':') ? q.target.split(':', 2) : [undefined, q.target];
    return this.audit.list(
      {
        ...(q.user ? { userId: q.user } : {}),
        ...(q.action ? { action: q.action } : {}),
        ...(q.since ? { since: q.since } : {}),
        ...(q.until ? { until: q.until } : {}),
        ...(type ? { targetType: type } : {}),
        ...(id ? { targetId: id } : {}),
      },
      q,
    );
  }
}
