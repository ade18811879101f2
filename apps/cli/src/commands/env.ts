import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Command } from 'commander';
import { api, type ApiTarget } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { printJson, printTable } from '../output.js';

interface EnvironmentDto {
  id: string;
  name: string;
  provider: string;
  state: string;
  stateReason: string | null;
  gatewayUrl: string | null;
  node: string | null;
  createdAt: string;
  readyAt: string | null;
}
interface EventDto {
  id: string;
  at: string;
  kind: string;
  message: string;
}

const SETTLED = new Set(['ready', 'stopped', 'destroyed', 'failed']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Accepts an environment id or one of your environment names. */
export async function resolveEnvironment(target: ApiTarget, idOrName: string): Promise<string> {
  if (UUID.test(idOrName)) return idOrName;
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const { data } = await api<{ items: EnvironmentDto[]; nextCursor: string | null }>(
      target,
      'GET',
      `/api/v1/environments?limit=200${q}`,
    );
    const hit = data.items.find((e) => e.name === idOrName);
    if (hit) return hit.id;
    cursor = data.nextCursor;
  } while (cursor);
  throw new CliError(`no environment named ${idOrName}`, 'list yours with: berth env ls', EXIT.notFound);
}

/** How long a command waits for an environment by default: an image build can take minutes. */
export const DEFAULT_WAIT = '15m';

/** `90s`, `15m`, `1h` or plain seconds, in milliseconds. */
export function parseWait(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  const n = m ? Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? 1) * 1000 : NaN;
  if (!m || !(n > 0))
    throw new CliError(
      `--timeout must be a duration, got ${text}`,
      'e.g. --timeout 90s, 15m or 1h',
      EXIT.usage,
    );
  return n;
}

/** Follows an environment's events until it settles, printing each one (the progress display). */
export async function followEnvironment(
  target: ApiTarget,
  id: string,
  opts: { quiet?: boolean; until?: (e: EnvironmentDto) => boolean; timeoutMs?: number } = {},
): Promise<EnvironmentDto> {
  let after: string | null = null;
  const started = Date.now();
  const until = opts.until ?? ((e: EnvironmentDto) => SETTLED.has(e.state));
  const deadline = started + (opts.timeoutMs ?? parseWait(DEFAULT_WAIT));
  for (;;) {
    const q: string = after ? `?after=${after}` : '';
    const { data: ev } = await api<{ items: EventDto[] }>(
      target,
      'GET',
      `/api/v1/environments/${id}/events${q}`,
    );
    for (const e of ev.items) {
      if (!opts.quiet)
        process.stderr.write(
          `  ${((Date.parse(e.at) - started) / 1000).toFixed(1).padStart(6)}s  ${e.kind.padEnd(10)} ${e.message}\n`,
        );
      after = e.id;
    }
    const { data } = await api<{ environment: EnvironmentDto }>(target, 'GET', `/api/v1/environments/${id}`);
    if (until(data.environment)) return data.environment;
    if (Date.now() >= deadline) {
      const e = data.environment;
      const waited = Math.round((Date.now() - started) / 1000);
      throw new CliError(
        `gave up waiting after ${waited}s: ${e.name} is still ${e.state}${e.stateReason ? ` (${e.stateReason})` : ''}`,
        `it carries on in the background; check it with \`berth env show ${e.id}\`, or wait longer with --timeout`,
        EXIT.unavailable,
      );
    }
    // The API has no push channel for the CLI yet; half a second keeps the display live enough.
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function readSpecFile(file: string): Promise<{ berthYaml?: string; devcontainer?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(
      `cannot read ${file}: ${(err as Error).message}`,
      'pass the path of a berth.yaml or devcontainer.json',
      EXIT.usage,
    );
  }
  const name = basename(file);
  if (name.endsWith('.json') || basename(dirname(file)) === '.devcontainer') return { devcontainer: text };
  return { berthYaml: text };
}

export function envCommands(program: Command, ctx: Ctx): void {
  const env = program.command('env').description('create and manage environments');

  env
    .command('create')
    .description('create an environment and wait until it is ready')
    .option('--name <name>', 'a name (lowercase letters, digits, dashes)')
    .option('--image <image>', 'container image (docker provider)')
    .option('--repo <url>', 'git repository cloned into /workspace')
    .option('--ref <ref>', 'branch, tag or commit of --repo')
    .option('--file <path>', 'a berth.yaml, or a .devcontainer/devcontainer.json')
    .option('--provider <name>', 'local, docker or modal (default: the server’s)')
    .option('--cpu <n>', 'CPUs')
    .option('--memory <mb>', 'memory in MiB')
    .option('--detach', 'return once the environment is created, without waiting')
    .option('--timeout <duration>', 'how long to wait for it to be ready (e.g. 90s, 15m, 1h)', DEFAULT_WAIT)
    .option('--json', 'print the environment as JSON')
    .action(
      async (o: {
        name?: string;
        image?: string;
        repo?: string;
        ref?: string;
        file?: string;
        provider?: string;
        cpu?: string;
        memory?: string;
        detach?: boolean;
        timeout: string;
        json?: boolean;
      }) => {
        const timeoutMs = parseWait(o.timeout);
        const target = await ctx.target();
        const resources: Record<string, number> = {};
        if (o.cpu !== undefined) resources.cpu = Number(o.cpu);
        if (o.memory !== undefined) resources.memoryMb = Number(o.memory);
        for (const [k, v] of Object.entries(resources))
          if (!Number.isFinite(v) || v <= 0)
            throw new CliError(
              `--${k === 'cpu' ? 'cpu' : 'memory'} must be a positive number`,
              'e.g. --cpu 2 --memory 2048',
              EXIT.usage,
            );
        const body = {
          ...(o.name ? { name: o.name } : {}),
          ...(o.provider ? { provider: o.provider } : {}),
          ...(o.image ? { image: o.image } : {}),
          ...(o.repo ? { repo: { url: o.repo, ...(o.ref ? { ref: o.ref } : {}) } } : {}),
          ...(o.file ? await readSpecFile(o.file) : {}),
          ...(Object.keys(resources).length ? { resources } : {}),
        };
        const { data } = await api<{ environment: EnvironmentDto; warnings?: string[] }>(
          target,
          'POST',
          '/api/v1/environments',
          body,
        );
        for (const w of data.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
        let e = data.environment;
        if (!o.detach) {
          if (!o.json)
            process.stderr.write(`Creating ${e.name} (${e.id}) with the ${e.provider} provider…\n`);
          e = await followEnvironment(target, e.id, { quiet: o.json === true, timeoutMs });
        }
        if (o.json) printJson(e);
        else
          process.stdout.write(
            `${e.name} ${e.id} ${e.state}${e.stateReason && e.state !== 'ready' ? `: ${e.stateReason}` : ''}\n`,
          );
        if (e.state === 'failed')
          throw new CliError(
            `environment ${e.name} failed: ${e.stateReason ?? 'unknown reason'}`,
            `see its events: berth env show ${e.id}`,
          );
      },
    );

  env
    .command('ls')
    .description('list your environments')
    .option('--all', 'include destroyed ones')
    .option('--json', 'print as JSON')
    .action(async (o: { all?: boolean; json?: boolean }) => {
      const target = await ctx.target();
      const items: EnvironmentDto[] = [];
      let cursor: string | null = null;
      do {
        const q: string = `?limit=200${o.all ? '&all=true' : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const { data } = await api<{ items: EnvironmentDto[]; nextCursor: string | null }>(
          target,
          'GET',
          `/api/v1/environments${q}`,
        );
        items.push(...data.items);
        cursor = data.nextCursor;
      } while (cursor);
      if (o.json) printJson(items);
      else
        printTable(
          items.map((e) => ({ ...e, created: e.createdAt.slice(0, 19) })),
          ['id', 'name', 'provider', 'state', 'node', 'created'],
        );
    });

  env
    .command('show <env>')
    .description('show an environment (id or name) and its events')
    .option('--json', 'print as JSON')
    .action(async (env: string, o: { json?: boolean }) => {
      const target = await ctx.target();
      const id = await resolveEnvironment(target, env);
      const { data } = await api<{ environment: EnvironmentDto }>(
        target,
        'GET',
        `/api/v1/environments/${encodeURIComponent(id)}`,
      );
      const { data: ev } = await api<{ items: EventDto[] }>(
        target,
        'GET',
        `/api/v1/environments/${encodeURIComponent(id)}/events?limit=500`,
      );
      if (o.json) return printJson({ ...data.environment, events: ev.items });
      const e = data.environment;
      for (const [k, v] of Object.entries({
        id: e.id,
        name: e.name,
        provider: e.provider,
        state: e.state,
        reason: e.stateReason,
        gateway: e.gatewayUrl,
        node: e.node,
        created: e.createdAt,
      }))
        if (v) process.stdout.write(`${k.padEnd(9)}${v}\n`);
      process.stdout.write('events:\n');
      for (const x of ev.items)
        process.stdout.write(`  ${x.at.slice(11, 23)}  ${x.kind.padEnd(10)} ${x.message}\n`);
    });

  for (const [action, verb, method, path, wanted] of [
    ['stop', 'stop', 'POST', '/stop', 'stopped'],
    ['start', 'start', 'POST', '/start', 'ready'],
    ['rm', 'destroy', 'DELETE', '', 'destroyed'],
  ] as const) {
    env
      .command(`${action} <env>`)
      .description(`${verb} an environment (id or name)`)
      .option('--detach', 'do not wait for it to finish')
      .option('--timeout <duration>', 'how long to wait for it to finish (e.g. 90s, 15m)', DEFAULT_WAIT)
      .option('--json', 'print as JSON')
      .action(async (envArg: string, o: { detach?: boolean; timeout: string; json?: boolean }) => {
        const timeoutMs = parseWait(o.timeout);
        const target = await ctx.target();
        const id = await resolveEnvironment(target, envArg);
        const { data } = await api<{ environment: EnvironmentDto; changed: boolean }>(
          target,
          method,
          `/api/v1/environments/${encodeURIComponent(id)}${path}`,
        );
        let e = data.environment;
        if (!data.changed && !o.json) process.stderr.write(`${e.name} is already ${e.state}\n`);
        if (!o.detach)
          e = await followEnvironment(target, e.id, {
            quiet: o.json === true,
            until: (x) => SETTLED.has(x.state),
            timeoutMs,
          });
        if (o.json) printJson({ ...e, changed: data.changed });
        else process.stdout.write(`${e.name} ${e.state}\n`);
        if (e.state !== wanted && !o.detach)
          throw new CliError(
            `${verb} did not finish: ${e.name} is ${e.state}${e.stateReason ? ` (${e.stateReason})` : ''}`,
            `see: berth env show ${e.id}`,
          );
      });
  }
}
