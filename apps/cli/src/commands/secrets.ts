import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { api } from '../api.js';
import { CliError, EXIT } from '../errors.js';
import type { Ctx } from '../context.js';
import { printJson, printTable } from '../output.js';

interface RefDto {
  id: string;
  env: string;
  path: string;
  key: string;
  mount: string | null;
}

export function secretsCommands(program: Command, ctx: Ctx): void {
  const secrets = program
    .command('secrets')
    .description('where your secrets live in your own Vault (Berth stores no values)');

  secrets
    .command('config')
    .description('set your Vault: address, JWT auth mount and role, audience')
    .requiredOption('--vault-address <url>', 'e.g. https://vault.example.com:8200')
    .requiredOption('--role <role>', 'the JWT auth role that trusts Berth')
    .requiredOption('--audience <aud>', 'bound_audiences of that role')
    .option('--auth-mount <path>', 'JWT auth mount (default jwt)')
    .option('--kv-mount <path>', 'KV v2 mount (default secret)')
    .option('--namespace <ns>', 'Vault Enterprise namespace')
    .option('--ca-cert <file>', "PEM file of the CA that signed your Vault's TLS certificate (a private CA)")
    .option('--json', 'print as JSON')
    .action(
      async (o: {
        vaultAddress: string;
        role: string;
        audience: string;
        authMount?: string;
        kvMount?: string;
        namespace?: string;
        caCert?: string;
        json?: boolean;
      }) => {
        const caCert = o.caCert === undefined ? undefined : await readCaCert(o.caCert);
        const { data } = await api<{ settings: unknown; changed: boolean }>(
          await ctx.target(),
          'PUT',
          '/api/v1/secrets/settings',
          {
            vaultAddress: o.vaultAddress,
            role: o.role,
            audience: o.audience,
            ...(o.authMount ? { authMount: o.authMount } : {}),
            ...(o.kvMount ? { kvMount: o.kvMount } : {}),
            ...(o.namespace ? { namespace: o.namespace } : {}),
            ...(caCert ? { caCert } : {}),
          },
        );
        if (o.json) printJson(data);
        else process.stdout.write(data.changed ? 'Vault settings saved\n' : 'Vault settings unchanged\n');
      },
    );

  secrets
    .command('show')
    .description('show your Vault settings and references')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }) => {
      const target = await ctx.target();
      const { data: s } = await api<{ settings: Record<string, unknown> | null }>(
        target,
        'GET',
        '/api/v1/secrets/settings',
      );
      const { data: refs } = await api<{ items: RefDto[] }>(target, 'GET', '/api/v1/secrets/refs?limit=200');
      if (o.json) return printJson({ settings: s.settings, refs: refs.items });
      if (!s.settings)
        process.stdout.write(
          'No Vault configured: berth secrets config --vault-address … --role … --audience …\n',
        );
      else
        for (const [k, v] of Object.entries(s.settings))
          if (v !== null && k !== 'caCert') process.stdout.write(`${k.padEnd(13)}${String(v)}\n`);
      process.stdout.write('\n');
      printTable(
        refs.items.map((r) => ({ ...r })),
        ['id', 'env', 'path', 'key', 'mount'],
      );
    });

  secrets
    .command('add <env>')
    .description('map an env var to a key of a KV v2 path in your Vault')
    .requiredOption('--path <path>', 'KV v2 path, e.g. users/alice/github')
    .requiredOption('--key <key>', 'key within that secret')
    .option('--mount <mount>', 'KV v2 mount, when not the default')
    .option('--json', 'print as JSON')
    .action(async (env: string, o: { path: string; key: string; mount?: string; json?: boolean }) => {
      const { data } = await api<{ ref: RefDto }>(await ctx.target(), 'POST', '/api/v1/secrets/refs', {
        env,
        path: o.path,
        key: o.key,
        ...(o.mount ? { mount: o.mount } : {}),
      });
      if (o.json) printJson(data.ref);
      else process.stdout.write(`${data.ref.env} ← ${data.ref.path}#${data.ref.key} (${data.ref.id})\n`);
    });

  secrets
    .command('unset')
    .description('forget your Vault settings (references stay; tasks then run without secrets)')
    .action(async () => {
      await api(await ctx.target(), 'DELETE', '/api/v1/secrets/settings');
      process.stdout.write('Vault settings removed\n');
    });

  secrets
    .command('rm <id>')
    .description('remove a reference')
    .action(async (id: string) => {
      await api(await ctx.target(), 'DELETE', `/api/v1/secrets/refs/${encodeURIComponent(id)}`);
      process.stdout.write(`Removed ${id}\n`);
    });
}

async function readCaCert(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(
      `cannot read --ca-cert ${path}: ${(err as Error).message}`,
      'give the path of a PEM file',
      EXIT.usage,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new CliError(
      `--ca-cert ${path} is not a PEM certificate`,
      'give the CA certificate in PEM form (the text starting with -----BEGIN CERTIFICATE-----)',
      EXIT.usage,
    );
  return pem;
}
