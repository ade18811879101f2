import type { Command } from 'commander';
import { api } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { printJson, printTable } from '../output.js';

interface TokenDto {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
}

export function tokenCommands(program: Command, ctx: Ctx): void {
  const token = program.command('token').description('manage API tokens');

  token
    .command('create <name>')
    .description('create an API token (shown once)')
    .option('--expires-in-days <n>', 'lifetime in days (default 90)')
    .option('--scope <scope...>', 'read, write, admin (default: all you hold)')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { expiresInDays?: string; scope?: string[]; json?: boolean }) => {
      const days = opts.expiresInDays === undefined ? undefined : Number(opts.expiresInDays);
      if (days !== undefined && (!Number.isInteger(days) || days < 1))
        throw new CliError(
          '--expires-in-days must be a whole number of days',
          'e.g. --expires-in-days 30',
          EXIT.usage,
        );
      const { data } = await api<TokenDto & { token: string }>(await ctx.target(), 'POST', '/api/v1/tokens', {
        name,
        ...(days !== undefined ? { expiresInDays: days } : {}),
        ...(opts.scope ? { scopes: opts.scope } : {}),
      });
      if (opts.json) printJson(data);
      else {
        process.stdout.write(`${data.token}\n`);
        process.stderr.write(
          `Token ${data.name} (${data.id}) expires ${data.expiresAt ?? 'never'}. It is shown only now.\n`,
        );
      }
    });

  token
    .command('ls')
    .description('list your API tokens')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const target = await ctx.target();
      const items: TokenDto[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const { data } = await api<{ items: TokenDto[]; nextCursor: string | null }>(
          target,
          'GET',
          `/api/v1/tokens?limit=200${q}`,
        );
        items.push(...data.items);
        cursor = data.nextCursor;
      } while (cursor);
      if (opts.json) printJson(items);
      else
        printTable(
          items.map((t) => ({
            ...t,
            scopes: t.scopes.join(','),
            expires: t.expiresAt?.slice(0, 10),
            lastUsed: t.lastUsedAt?.slice(0, 19),
          })),
          ['id', 'name', 'prefix', 'scopes', 'expires', 'lastUsed'],
        );
    });

  token
    .command('rm <id>')
    .description('revoke an API token')
    .option('--json', 'print as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      await api(await ctx.target(), 'DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`);
      if (opts.json) printJson({ id, revoked: true });
      else process.stdout.write(`Revoked ${id}\n`);
    });
}
