import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { api, type ApiTarget } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { printJson } from '../output.js';
import { resolveEnvironment } from './env.js';
import { sendLaunchSecrets, type RunSecretsOptions } from './run-secrets.js';
import { exitCodeFor, followTask, type TaskDto } from './task.js';

interface RunOptions extends RunSecretsOptions {
  env?: string;
  provider?: string;
  image?: string;
  repo?: string;
  ref?: string;
  keep?: boolean;
  timeout?: string;
  tty?: boolean;
  setenv: string[];
  secret: string[];
  /** false with --no-secrets (commander's negatable option). */
  secrets: boolean;
  detach?: boolean;
  json?: boolean;
}

/** What `berth run` ends with when the user detaches (the task goes on). */
export const EXIT_DETACHED = 130;

function howToResume(id: string): string {
  return `the task goes on. Follow it: berth task logs -f ${id}\nCancel it: berth task cancel ${id}\n`;
}

/**
 * Asks on the terminal; a second Ctrl-C while asking means detach. `onOpen` receives a way to
 * close the question if the task ends before it is answered.
 */
function askCancelOrDetach(onOpen: (close: () => void) => void): Promise<'cancel' | 'detach'> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    onOpen(() => rl.close());
    let answered = false;
    const done = (a: 'cancel' | 'detach') => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(a);
    };
    rl.on('SIGINT', () => done('detach'));
    rl.on('close', () => done('detach'));
    const ask = () =>
      rl.question('\ncancel the task or detach? [c/d] ', (a) => {
        const x = a.trim().toLowerCase();
        if (x === 'c' || x === 'cancel') done('cancel');
        else if (x === 'd' || x === 'detach') done('detach');
        else ask();
      });
    ask();
  });
}

/**
 * While a new environment is made for the task (image build, clone…), its steps go to stderr,
 * so a long build is not a silent wait. Stops at the first output, or when the environment
 * settles, or on `signal`.
 */
async function showEnvironmentProgress(
  target: ApiTarget,
  envId: string,
  since: string,
  signal: AbortSignal,
): Promise<void> {
  let after: string | null = null;
  // Times count from the task's creation, on the server's clock like the events.
  const started = Date.parse(since);
  while (!signal.aborted) {
    const q: string = after ? `?after=${after}` : '';
    const { data } = await api<{ items: Array<{ id: string; at: string; kind: string; message: string }> }>(
      target,
      'GET',
      `/api/v1/environments/${envId}/events${q}`,
    );
    for (const e of data.items) {
      if (signal.aborted) return;
      process.stderr.write(
        `  ${((Date.parse(e.at) - started) / 1000).toFixed(1).padStart(6)}s  env ${e.kind.padEnd(10)} ${e.message}\n`,
      );
      after = e.id;
    }
    const { data: env } = await api<{ environment: { state: string } }>(
      target,
      'GET',
      `/api/v1/environments/${envId}`,
    );
    if (['ready', 'failed', 'destroying', 'destroyed'].includes(env.environment.state)) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 500);
      signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
}

async function createTask(
  target: ApiTarget,
  argv: string[],
  o: RunOptions,
): Promise<{ task: TaskDto; environment?: { id: string; name: string } }> {
  const spec = o.provider || o.image || o.repo;
  if (o.env && spec)
    throw new CliError(
      '--env runs in an existing environment; --provider/--image/--repo make a new one',
      'give one or the other',
      EXIT.usage,
    );
  const env: Record<string, string> = {};
  for (const kv of o.setenv) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`-e ${kv}: expected NAME=VALUE`, 'e.g. -e CI=1', EXIT.usage);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const timeout = o.timeout === undefined ? undefined : Number(o.timeout);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0))
    throw new CliError('--timeout must be a whole number of seconds', 'e.g. --timeout 600', EXIT.usage);
  const environmentId = o.env ? await resolveEnvironment(target, o.env) : undefined;
  if (o.vaultWrappedToken || o.secretsFile) {
    if (!environmentId)
      throw new CliError(
        '--vault-wrapped-token and --secrets-file need --env (an environment that is ready)',
        'berth env create first, then berth run --env NAME ...',
        EXIT.usage,
      );
    // Sent before the task exists; the task's start takes them from the gateway's memory.
    Object.assign(env, await sendLaunchSecrets(target, environmentId, o));
  }
  const body = {
    command: argv,
    ...(Object.keys(env).length ? { env } : {}),
    ...(o.tty
      ? {
          tty: true,
          ...(process.stdout.columns ? { cols: process.stdout.columns, rows: process.stdout.rows } : {}),
        }
      : {}),
    ...(timeout ? { timeoutSeconds: timeout } : {}),
    ...(o.secret.length ? { secrets: o.secret } : o.secrets === false ? { secrets: [] } : {}),
    ...(environmentId ? { environmentId } : {}),
    ...(spec
      ? {
          environment: {
            ...(o.provider ? { provider: o.provider } : {}),
            ...(o.image ? { image: o.image } : {}),
            ...(o.repo ? { repo: { url: o.repo, ...(o.ref ? { ref: o.ref } : {}) } } : {}),
            ...(o.keep ? { keep: true } : {}),
          },
        }
      : {}),
  };
  const { data } = await api<{ task: TaskDto; environment?: { id: string; name: string } }>(
    target,
    'POST',
    '/api/v1/tasks',
    body,
  );
  return data;
}

export function runCommand(program: Command, ctx: Ctx): void {
  program
    .command('run')
    .description(
      'run a command as a task, print its output as it comes and exit with its exit code ' +
        '(Ctrl-C: cancel or detach)',
    )
    .argument('<command...>', 'the program and its arguments (put them after --)')
    .option('--env <env>', 'run in this environment of yours (id or name)')
    .option('--provider <name>', 'run in a new environment from this provider (destroyed afterwards)')
    .option('--image <image>', 'image of the new environment')
    .option('--repo <url>', 'git repository cloned into the new environment')
    .option('--ref <ref>', 'branch, tag or commit of --repo')
    .option('--keep', 'keep the new environment after the task ends')
    .option('--timeout <seconds>', 'stop the task after this long')
    .option('-t, --tty', 'run it under a pseudo-terminal (colours, line buffering; output merged)')
    .option('-e, --setenv <NAME=VALUE>', 'an environment variable for the command (repeatable)', collect, [])
    .option(
      '--secret <NAME>',
      'give the task only these of your secret references (repeatable; default: all of them)',
      collect,
      [],
    )
    .option('--no-secrets', 'give the task none of your secret references')
    .option(
      '--vault-wrapped-token <token>',
      'a Vault response-wrapping token for a path in your secret references; unwrapped once by the environment',
    )
    .option(
      '--secrets-file <path>',
      'NAME=VALUE lines (.env) sent straight to the environment, never to the Berth server',
    )
    .option('--detach', 'print the task id and return at once')
    .option('--json', 'with --detach: print the task as JSON')
    .action(async (argv: string[], o: RunOptions) => {
      const target = await ctx.target();
      const { task, environment } = await createTask(target, argv, o);
      if (o.detach) {
        if (o.json) printJson(task);
        else process.stdout.write(`${task.id}\n`);
        return;
      }
      process.stderr.write(
        `task ${task.id}${environment ? ` in a new environment ${environment.name} (${environment.id})` : ''}\n`,
      );
      const ac = new AbortController();
      const progress = new AbortController();
      if (environment)
        void showEnvironmentProgress(target, environment.id, task.createdAt, progress.signal).catch(
          () => undefined,
        );
      let detached = false;
      let asking = false;
      let ended = false;
      let closePrompt: (() => void) | undefined;
      const onSigint = () => {
        if (asking) return;
        if (!process.stdin.isTTY) {
          detached = true;
          ac.abort();
          return;
        }
        asking = true;
        void askCancelOrDetach((close) => (closePrompt = close)).then(async (choice) => {
          asking = false;
          closePrompt = undefined;
          if (ended) return; // the task ended while we asked: nothing to choose
          if (choice === 'detach') {
            detached = true;
            ac.abort();
            return;
          }
          await api(target, 'POST', `/api/v1/tasks/${task.id}/cancel`).catch((err: unknown) =>
            process.stderr.write(`could not cancel: ${(err as Error).message}\n`),
          );
          process.stderr.write('canceling…\n');
        });
      };
      process.on('SIGINT', onSigint);
      let end;
      try {
        end = await followTask(
          target,
          task.id,
          (b) => {
            progress.abort();
            process.stdout.write(b);
          },
          ac.signal,
        );
      } finally {
        progress.abort();
        ended = true;
        process.off('SIGINT', onSigint);
        closePrompt?.();
      }
      if (detached || !end) {
        process.stderr.write(`\ndetached from task ${task.id}: ${howToResume(task.id)}`);
        process.exitCode = EXIT_DETACHED;
        return;
      }
      if (end.state !== 'succeeded') {
        process.stderr.write(
          `task ${task.id} ${end.state}${end.exitCode !== null ? ` (exit ${end.exitCode})` : ''}; ` +
            `see: berth task show ${task.id}\n`,
        );
        // Why, when the server knows (environment gone, command not found…).
        const why = await api<{ task: TaskDto }>(target, 'GET', `/api/v1/tasks/${task.id}`).catch(
          () => undefined,
        );
        if (why?.data.task.error) process.stderr.write(`  ${why.data.task.error}\n`);
      }
      process.exitCode = exitCodeFor(end.state, end.exitCode);
    });
}

function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}
