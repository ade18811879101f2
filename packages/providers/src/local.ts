import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { EnvironmentInfo, EnvironmentSpec, GatewayConfigInput } from '@berth/protocol';
import { readExecTaskRecord, taskStillRunning } from '@berth/protocol/node';
import { assertBundle, defaultGatewayAssets, type GatewayAssets } from './assets.js';
import { readContextConfig } from './config-files.js';
import { ProviderError } from './errors.js';
import { cloneRepo, run } from './repo.js';
import { validateSpec, type SpecPolicy, defaultSpecPolicy } from './spec.js';
import type { CreateOptions, CreateResult, EnvironmentProvider, ListedEnvironment } from './types.js';
import { pollUntil, waitForJsonLine } from './wait.js';

export interface LocalProviderOptions {
  /** Environments live in `<dataDir>/envs/<id>/`. */
  dataDir: string;
  /** Address the gateway listens on; loopback by default. */
  host?: string;
  /** `auto` uses bubblewrap when `bwrap` is on PATH. */
  sandbox?: 'auto' | 'bwrap' | 'none';
  assets?: Partial<GatewayAssets>;
  policy?: SpecPolicy;
  readyTimeoutMs?: number;
}

interface Meta {
  id: string;
  ownerId: string;
  installation?: string;
  /** What the operator asked for last: running or stopped. A dead pid while `running` means failed. */
  desired: 'running' | 'stopped';
  pid?: number;
  port?: number;
  spec: EnvironmentSpec;
}

const NO_BWRAP =
  'none: the gateway runs as your user on this machine; `local` is not a security boundary (install bubblewrap for filesystem confinement)';
const WITH_BWRAP =
  'bubblewrap: read-only host filesystem, writable environment directory, own pid/ipc/uts namespaces; network is shared with the host, so this is confinement, not a strong security boundary';

/**
 * What a local environment inherits from the control plane's process: enough to run programs and
 * nothing else. The control plane's own settings (DATABASE_URL, admin password, Modal and Vault
 * tokens) must never be readable by a task or a terminal.
 */
const INHERITED = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
];

function hostEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of INHERITED) {
    const v = process.env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The embedded default: the gateway as a child process per environment, no Docker needed. */
export class LocalProvider implements EnvironmentProvider {
  readonly name = 'local';
  private readonly assets: GatewayAssets;
  private readonly bwrap: boolean;

  constructor(private readonly opts: LocalProviderOptions) {
    this.assets = defaultGatewayAssets(opts.assets);
    const sandbox = opts.sandbox ?? 'auto';
    const found = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).status === 0;
    if (sandbox === 'bwrap' && !found)
      throw new ProviderError(
        'bwrap_missing',
        'sandbox "bwrap" asked for but bwrap is not installed',
        'apt-get install bubblewrap, or use sandbox "auto"',
      );
    this.bwrap = sandbox !== 'none' && found;
  }

  get isolation(): string {
    return this.bwrap ? WITH_BWRAP : NO_BWRAP;
  }

  dir(id: string): string {
    return join(this.opts.dataDir, 'envs', id);
  }

  async create(input: EnvironmentSpec, options: CreateOptions = {}): Promise<CreateResult> {
    const check = validateSpec(input, this.opts.policy ?? defaultSpecPolicy);
    if (!check.ok)
      throw new ProviderError(
        'invalid_spec',
        check.issues.map((i) => `${i.field}: ${i.message}`).join('; '),
        check.issues.map((i) => i.hint).join('; '),
        check.issues,
      );
    const spec = check.spec;
    const existing = await this.readMeta(spec.id);
    if (existing) {
      const info =
        existing.desired === 'running' && !this.alive(existing)
          ? await this.start(spec.id)
          : await this.inspect(spec.id);
      return { ...info, created: false, isolation: this.isolation };
    }
    assertBundle(this.assets);
    const dir = this.dir(spec.id);
    // No meta.json means a previous attempt died half-way: start over from a clean directory.
    await rm(dir, { recursive: true, force: true });
    try {
      const config = await readContextConfig(spec.buildContext, spec.berthYaml);
      await mkdir(join(dir, 'gateway'), { recursive: true });
      const workspace = join(dir, 'workspace');
      if (spec.repo) {
        options.onProgress?.({ phase: 'clone', message: `cloning ${spec.repo.url}` });
        await cloneRepo(spec.repo, workspace, (line) =>
          options.onProgress?.({ phase: 'clone', message: line }),
        );
      } else {
        await mkdir(workspace, { recursive: true });
      }
      const setup = config.berth?.setup ?? [];
      for (const [index, command] of setup.entries()) {
        options.onProgress?.({
          phase: 'setup',
          message: command,
          step: { index: index + 1, total: setup.length },
        });
        try {
          await run(...this.sandboxed(dir, ['bash', '-c', command]), {
            cwd: workspace,
            onLine: (line) => options.onProgress?.({ phase: 'setup', message: line }),
          });
        } catch (err) {
          throw new ProviderError(
            'setup_failed',
            `setup step ${index + 1}/${setup.length} failed (${command}): ${(err as Error).message}`,
            'fix that command in berth.yaml; it runs in the workspace directory',
          );
        }
      }
      const meta: Meta = {
        id: spec.id,
        ownerId: spec.ownerId,
        ...(spec.installation ? { installation: spec.installation } : {}),
        desired: 'stopped',
        // The repo token was for the clone only: meta.json is on disk and must not keep it.
        spec: spec.repo
          ? { ...spec, repo: { url: spec.repo.url, ...(spec.repo.ref ? { ref: spec.repo.ref } : {}) } }
          : spec,
      };
      await this.writeMeta(meta);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const info = await this.start(spec.id);
    return { ...info, created: true, isolation: this.isolation };
  }

  async start(id: string): Promise<EnvironmentInfo> {
    const meta = await this.mustMeta(id);
    if (this.alive(meta)) return this.inspect(id);
    const dir = this.dir(id);
    const logFile = join(dir, 'gateway.log');
    const config: GatewayConfigInput = {
      environmentId: id,
      host: this.opts.host ?? '127.0.0.1',
      port: 0,
      issuer: meta.spec.gateway?.issuer ?? 'berth-unconfigured',
      jwks: meta.spec.gateway?.jwks ?? { keys: [] },
      ...(meta.spec.gateway?.otlpEndpoint ? { otlpEndpoint: meta.spec.gateway.otlpEndpoint } : {}),
      dataDir: join(dir, 'gateway'),
      workdir: join(dir, 'workspace'),
    };
    await writeFile(logFile, '');
    const fd = openSync(logFile, 'a');
    const [cmd, args] = this.sandboxed(dir, [this.assets.node, this.assets.bundle, `--berth-env-dir=${dir}`]);
    // Detached in its own process group so it outlives the control plane and stop() can signal the group.
    const child = spawn(cmd, args, {
      cwd: join(dir, 'workspace'),
      detached: true,
      stdio: ['ignore', fd, fd],
      env: {
        ...hostEnv(),
        ...meta.spec.env,
        BERTH_GATEWAY_CONFIG: JSON.stringify(config),
        NODE_PATH: this.nodePath(),
      },
    });
    closeSync(fd);
    child.unref();
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, sig) => resolve(`gateway exited (${sig ?? code}) before it was ready`)),
    );
    try {
      const port = await waitForJsonLine(
        logFile,
        (l) => (l.msg === 'gateway listening' && typeof l.port === 'number' ? l.port : undefined),
        { timeoutMs: this.opts.readyTimeoutMs ?? 30_000, exited },
      );
      await this.writeMeta({ ...meta, desired: 'running', pid: child.pid, port });
    } catch (err) {
      if (child.pid) this.killGroup(child.pid, 'SIGKILL');
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new ProviderError(
        'gateway_failed',
        `${(err as Error).message}; log: ${log.slice(-500)}`,
        'see the gateway log in the environment directory',
      );
    }
    return this.inspect(id);
  }

  async stop(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) return;
    if (meta.pid && this.alive(meta)) {
      const pid = meta.pid;
      this.killGroup(pid, 'SIGTERM');
      // bwrap's outer process exits at once while the gateway inside is still closing, so wait for
      // the whole process group; there is no event for that, hence a poll with a deadline.
      if (!(await pollUntil(() => !this.groupAlive(pid), 10_000))) {
        this.killGroup(pid, 'SIGKILL');
        await pollUntil(() => !this.groupAlive(pid), 5_000);
      }
    }
    this.killLeftoverTasks(id);
    await this.writeMeta({ ...meta, desired: 'stopped', pid: undefined, port: undefined });
  }

  /**
   * Without a sandbox, tasks run in process groups of their own (so a task stops as a whole) and
   * outlive a gateway killed from outside. The gateway kills them when it starts again, but an
   * environment stopped or destroyed instead would leave them running: kill what the gateway's
   * task records (`ExecTaskRecord` in `<env>/gateway/exec/<task>/`, @berth/protocol)
   * name, when pid and kernel start time still match. Under bubblewrap the pids are the sandbox's
   * own, and its pid namespace ended with the gateway.
   */
  private killLeftoverTasks(id: string): void {
    if (this.bwrap) return;
    const root = join(this.dir(id), 'gateway', 'exec');
    for (const task of existsSync(root) ? readdirSync(root) : []) {
      const record = readExecTaskRecord(join(root, task));
      if (record?.pid && taskStillRunning(record)) this.killGroup(record.pid, 'SIGKILL');
    }
  }

  async destroy(id: string): Promise<void> {
    await this.stop(id);
    await rm(this.dir(id), { recursive: true, force: true });
  }

  async inspect(id: string): Promise<EnvironmentInfo> {
    const meta = await this.readMeta(id);
    const base = { id, node: hostname(), provider: this.name, gatewayUrl: null };
    if (!meta) return { ...base, state: 'missing', detail: 'no environment directory' };
    if (meta.desired === 'stopped') return { ...base, state: 'stopped' };
    if (!this.alive(meta))
      return {
        ...base,
        state: 'failed',
        detail: 'the gateway process is gone (killed or crashed outside Berth)',
      };
    return { ...base, state: 'ready', gatewayUrl: `http://${this.urlHost()}:${meta.port}` };
  }

  async node(): Promise<string> {
    return Promise.resolve(hostname());
  }

  async list(): Promise<ListedEnvironment[]> {
    const names = await readdir(join(this.opts.dataDir, 'envs')).catch(() => [] as string[]);
    const out: ListedEnvironment[] = [];
    for (const id of names) {
      const info = await this.inspect(id);
      const meta = await this.readMeta(id);
      out.push({ id, ownerId: meta?.ownerId, installation: meta?.installation, state: info.state });
    }
    return out;
  }

  /** Process-group id of a running environment (for tests that kill it from outside). */
  async pid(id: string): Promise<number | undefined> {
    return (await this.readMeta(id))?.pid;
  }

  private urlHost(): string {
    const h = this.opts.host ?? '127.0.0.1';
    return h === '0.0.0.0' ? '127.0.0.1' : h;
  }

  private nodePath(): string {
    return join(this.assets.nodePtyDir, '..');
  }

  private sandboxed(dir: string, argv: string[]): [string, string[]] {
    if (!this.bwrap) return [argv[0] ?? 'true', argv.slice(1)];
    return [
      'bwrap',
      [
        '--ro-bind',
        '/',
        '/',
        '--dev',
        '/dev',
        '--proc',
        '/proc',
        '--tmpfs',
        '/tmp',
        // A private /tmp must not hide what the gateway runs from (a checkout under /tmp).
        ...this.assetDirs().flatMap((d) => ['--ro-bind', d, d]),
        '--bind',
        dir,
        dir,
        '--unshare-pid',
        '--unshare-ipc',
        '--unshare-uts',
        '--',
        ...argv,
      ],
    ];
  }

  /** Directories holding the node binary, the gateway bundle and node-pty, outermost only. */
  private assetDirs(): string[] {
    const dirs = [dirname(this.assets.node), dirname(this.assets.bundle), this.nodePath()].sort();
    return dirs.filter((d, i) => !dirs.slice(0, i).some((p) => d === p || d.startsWith(`${p}/`)));
  }

  private killGroup(pid: number, sig: NodeJS.Signals): void {
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  }

  private groupAlive(pgid: number): boolean {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }

  private alive(meta: Meta): boolean {
    if (!meta.pid) return false;
    try {
      // The env dir on the command line guards against a recycled pid.
      const cmdline = readFileSync(`/proc/${meta.pid}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${meta.pid}/stat`, 'utf8');
      return cmdline.includes(this.dir(meta.id)) && !/^\d+ \(.*\) Z/.test(stat);
    } catch {
      return false;
    }
  }

  private async readMeta(id: string): Promise<Meta | undefined> {
    const file = join(this.dir(id), 'meta.json');
    if (!existsSync(file)) return undefined;
    return JSON.parse(await readFile(file, 'utf8')) as Meta;
  }

  private async mustMeta(id: string): Promise<Meta> {
    const meta = await this.readMeta(id);
    if (!meta) throw new ProviderError('not_found', `environment ${id} does not exist`, 'create it first');
    return meta;
  }

  private async writeMeta(meta: Meta): Promise<void> {
    const file = join(this.dir(meta.id), 'meta.json');
    await writeFile(`${file}.tmp`, JSON.stringify(meta));
    await rename(`${file}.tmp`, file);
  }
}
