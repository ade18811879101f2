import type { Command } from 'commander';
import { PortSharing, type PortList, type PortOpen } from '@berth/protocol';
import { api } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { printJson, printTable } from '../output.js';
import { resolveEnvironment } from './env.js';

/** `3000` → 3000; anything else is a usage error naming the rule. */
export function parsePort(raw: string, what = 'port'): number {
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 65535))
    throw new CliError(`${what} ${raw} is not a TCP port`, 'use a number from 1 to 65535', EXIT.usage);
  return n;
}

const SHARING_LABEL: Record<PortSharing, string> = {
  owner: 'owner only',
  authenticated: 'signed-in users',
  public: 'PUBLIC (anyone with the link)',
};

export function portsCommand(program: Command, ctx: Ctx): void {
  program
    .command('ports <env> [port]')
    .summary('list an environment’s ports and their preview links; open or share one')
    .description(
      'Without PORT: ports listening in the environment and those in forwardPorts, with sharing and links.\n' +
        'With PORT: print a one-time URL that opens it in a browser (valid 60 s), and its stable link.\n' +
        'With PORT --share LEVEL: set who may open the link (owner, authenticated, public; public needs --yes).',
    )
    .option('--share <level>', 'owner | authenticated | public')
    .option('--yes', 'confirm making a port public')
    .option('--json', 'print as JSON')
    .action(
      async (
        envArg: string,
        portArg: string | undefined,
        o: { share?: string; yes?: boolean; json?: boolean },
      ) => {
        const target = await ctx.target();
        const env = await resolveEnvironment(target, envArg);
        const base = `/api/v1/environments/${encodeURIComponent(env)}/ports`;
        if (!portArg) {
          if (o.share)
            throw new CliError('--share needs a PORT', 'berth ports ENV PORT --share LEVEL', EXIT.usage);
          const { data } = await api<PortList>(target, 'GET', base);
          if (o.json) return printJson(data);
          if (data.gateway !== 'ok')
            process.stderr.write(
              data.gateway === 'not_ready'
                ? 'the environment is not running: listening ports are unknown\n'
                : 'the environment’s gateway did not answer: listening ports are unknown\n',
            );
          if (!data.ports.length) return void process.stdout.write('no ports listening or declared\n');
          printTable(
            data.ports.map((p) => ({
              port: p.port,
              listening: p.listening === null ? '?' : p.listening ? 'yes' : 'no',
              declared: p.declared ? 'yes' : 'no',
              sharing: SHARING_LABEL[p.sharing],
              url: p.previewUrl,
            })),
            ['port', 'listening', 'declared', 'sharing', 'url'],
          );
          return;
        }
        const port = parsePort(portArg);
        if (o.share) {
          const level = PortSharing.safeParse(o.share);
          if (!level.success)
            throw new CliError(
              `unknown sharing level ${o.share}`,
              'use owner, authenticated or public',
              EXIT.usage,
            );
          if (level.data === 'public' && !o.yes)
            throw new CliError(
              `port ${port} would be open to anyone on the internet who has the link`,
              `if you mean it: berth ports ${envArg} ${port} --share public --yes`,
              EXIT.usage,
            );
          const { data } = await api<{
            sharing: PortSharing;
            previous: PortSharing;
            previewUrl: string;
            openBrowsersRevoked: boolean | null;
          }>(target, 'PUT', `${base}/${port}/sharing`, { sharing: level.data });
          if (o.json) return printJson(data);
          process.stdout.write(
            `port ${port}: ${SHARING_LABEL[data.sharing]} (was ${SHARING_LABEL[data.previous]})\n`,
          );
          process.stdout.write(`link: ${data.previewUrl}\n`);
          if (data.openBrowsersRevoked === false)
            process.stderr.write(
              'warning: the environment did not answer; browsers that already opened the port keep it for up to an hour\n',
            );
          return;
        }
        const { data } = await api<PortOpen>(target, 'POST', `${base}/${port}/open`, {});
        if (o.json) return printJson(data);
        process.stdout.write(`open within 60 s (one use): ${data.url}\n`);
        process.stdout.write(`link (${SHARING_LABEL[data.sharing]}): ${data.previewUrl}\n`);
      },
    );
}
