import type { Command } from 'commander';
import { api } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { printJson, printTable } from '../output.js';

interface AuditItem {
  id: string;
  at: string;
  userId: string | null;
  actorEmail: string | null;
  tokenId: string | null;
  ip: string | null;
  action: string;
  route: string | null;
  targetType: string | null;
  targetId: string | null;
  result: number;
  requestId: string | null;
  details: Record<string, unknown>;
}

const isoOk = (v: string) => !Number.isNaN(Date.parse(v));

export function auditCommand(program: Command, ctx: Ctx): void {
  program
    .command('audit')
    .description('read the audit log, newest first (admin)')
    .option('--user <id>', 'only what this user id did')
    .option(
      '--action <action>',
      'an action (tokens.create), a route (POST /api/v1/tokens), or a prefix ending in * (tokens.*)',
    )
    .option('--target <target>', 'a target id, or type:id (user:<id>)')
    .option('--since <iso>', 'from this date or date-time (ISO 8601)')
    .option('--until <iso>', 'before this date or date-time (ISO 8601)')
    .option('--limit <n>', 'at most this many rows (default 50)')
    .option('--json', 'print as JSON')
    .action(
      async (opts: {
        user?: string;
        action?: string;
        target?: string;
        since?: string;
        until?: string;
        limit?: string;
        json?: boolean;
      }) => {
        for (const k of ['since', 'until'] as const) {
          const v = opts[k];
          if (v !== undefined && !isoOk(v))
            throw new CliError(
              `--${k} must be an ISO 8601 date`,
              `e.g. --${k} 2026-01-31 or --${k} 2026-01-31T12:00:00Z`,
              EXIT.usage,
            );
        }
        const limit = opts.limit === undefined ? 50 : Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw new CliError('--limit must be a positive whole number', 'e.g. --limit 200', EXIT.usage);
        const target = await ctx.target();
        const q = new URLSearchParams();
        if (opts.user) q.set('user', opts.user);
        if (opts.action) q.set('action', opts.action);
        if (opts.target) q.set('target', opts.target);
        if (opts.since) q.set('since', opts.since);
        if (opts.until) q.set('until', opts.until);
        const items: AuditItem[] = [];
        let cursor: string | null = null;
        do {
          q.set('limit', String(Math.min(200, limit - items.length)));
          if (cursor) q.set('cursor', cursor);
          const { data } = await api<{ items: AuditItem[]; nextCursor: string | null }>(
            target,
            'GET',
            `/api/v1/audit?${q.toString()}`,
          );
          items.push(...data.items);
          cursor = data.nextCursor;
        } while (cursor && items.length < limit);
        if (opts.json) printJson(items);
        else
          printTable(
            items.map((i) => ({
              ...i,
              at: i.at.slice(0, 19).replace('T', ' '),
              who:
                i.actorEmail ??
                i.userId ??
                (typeof i.details.email === 'string' ? `(${i.details.email})` : null),
              target: i.targetId ? `${i.targetType ?? ''}:${i.targetId}` : i.targetType,
            })),
            ['at', 'who', 'ip', 'action', 'target', 'result'],
          );
      },
    );
}
