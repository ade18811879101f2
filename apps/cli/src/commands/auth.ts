import { hostname } from 'node:os';
import type { Command } from 'commander';
import { api } from '../api.js';
import { readConfigFile, writeConfigFile } from '../config-file.js';
import { DEFAULT_URL, type Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { printJson } from '../output.js';
import { ask, readAllStdin } from '../prompt.js';

interface UserDto {
  id: string;
  email: string;
  role: string;
}

export function authCommands(program: Command, ctx: Ctx): void {
  program
    .command('login')
    .description('sign in and store an API token in ~/.config/berth/config.json (mode 0600)')
    .option('--url <url>', 'Berth server URL (env BERTH_URL)')
    .option('--email <email>', 'account email')
    .option('--password-stdin', 'read the password from standard input')
    .option('--token <token>', 'store this existing API token instead of signing in')
    .option('--json', 'print the result as JSON')
    .action(
      async (opts: {
        url?: string;
        email?: string;
        passwordStdin?: boolean;
        token?: string;
        json?: boolean;
      }) => {
        const file = await readConfigFile(ctx.env.configPath);
        const url = (opts.url ?? ctx.env.url ?? file.url ?? DEFAULT_URL).replace(/\/+$/, '');
        let token = opts.token;
        let tokenId: string | undefined;
        if (!token) {
          const email = opts.email ?? (process.stdin.isTTY ? await ask('Email: ') : undefined);
          if (!email)
            throw new CliError(
              'no email given',
              'pass --email, or run in a terminal to be asked',
              EXIT.usage,
            );
          const password = opts.passwordStdin
            ? (await readAllStdin()).replace(/\r?\n$/, '')
            : process.stdin.isTTY
              ? await ask('Password: ', true)
              : undefined;
          if (!password)
            throw new CliError(
              'no password given',
              'pass --password-stdin, or run in a terminal to be asked',
              EXIT.usage,
            );
          const login = await api<{ user: UserDto }>({ url }, 'POST', '/api/v1/auth/login', {
            email,
            password,
          });
          const cookie = login.headers
            .getSetCookie()
            .find((c) => c.startsWith('berth_session='))
            ?.split(';')[0];
          if (!cookie)
            throw new CliError('the server did not start a session', 'check that the URL points at Berth');
          const created = await api<{ id: string; token: string }>(
            { url },
            'POST',
            '/api/v1/tokens',
            { name: `cli@${hostname()}`, expiresInDays: 30 },
            { cookie },
          );
          await api({ url }, 'POST', '/api/v1/auth/logout', {}, { cookie });
          token = created.data.token;
          tokenId = created.data.id;
        }
        const me = await api<{ user: UserDto }>({ url, token }, 'GET', '/api/v1/me');
        await writeConfigFile(ctx.env.configPath, {
          url,
          token,
          email: me.data.user.email,
          ...(tokenId ? { tokenId } : {}),
        });
        if (opts.json) printJson({ url, user: me.data.user, configPath: ctx.env.configPath });
        else process.stdout.write(`Signed in to ${url} as ${me.data.user.email} (${me.data.user.role})\n`);
      },
    );

  program
    .command('logout')
    .description('revoke the stored CLI token and forget it')
    .action(async () => {
      const file = await readConfigFile(ctx.env.configPath);
      if (file.url && file.token && file.tokenId)
        await api({ url: file.url, token: file.token }, 'DELETE', `/api/v1/tokens/${file.tokenId}`).catch(
          () => undefined,
        );
      await writeConfigFile(ctx.env.configPath, file.url ? { url: file.url } : {});
      process.stdout.write('Signed out\n');
    });

  program
    .command('whoami')
    .description('show the signed-in user')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const target = await ctx.target();
      const { data } = await api<{ user: UserDto; via: string; scopes: string[] }>(
        target,
        'GET',
        '/api/v1/me',
      );
      if (opts.json) printJson({ url: target.url, ...data });
      else
        process.stdout.write(
          `${data.user.email} (${data.user.role}) at ${target.url}; scopes: ${data.scopes.join(', ')}\n`,
        );
    });
}
