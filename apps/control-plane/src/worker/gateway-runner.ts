import {
  TaskRunFailure,
  type ControlMessage,
  type OutputEvent,
  type Pool,
  type QueueLogger,
  type RunnableTask,
  type TaskRunner,
} from '@berth/db';
import { ExecFrameDecoder, type ExecMessagesReply } from '@berth/protocol';
import type { IdentityService, WorkloadIdentityRequest } from '../identity/identity.service.js';

/** Signs a short-lived `exec` token for one task on one environment (IdentityService in the app). */
export type ExecTokenSigner = (r: {
  environmentId: string;
  ownerId: string;
  taskId: string;
}) => Promise<string>;

/** Signs a per-launch workload-identity JWT for the user's own Vault (IdentityService in the app). */
export type WorkloadSigner = (r: WorkloadIdentityRequest) => Promise<string>;

export interface GatewayRunnerOptions {
  pool: Pool;
  sign: ExecTokenSigner;
  /** Needed only for owners with secret settings; without it their tasks fail with the reason. */
  signWorkload?: WorkloadSigner;
  logger: QueueLogger;
  /** How often prepare re-reads an environment that is still being provisioned or started. */
  pollMs?: number;
  /** A stream quiet this long (the gateway sends heartbeats) is presumed dead and reopened. */
  idleMs?: number;
  /** How often the stored offset is passed to the gateway, so it can drop what is stored. */
  ackMs?: number;
}

interface TaskEnvironment {
  id: string;
  owner_id: string;
  state: string;
  state_reason: string | null;
  gateway_url: string | null;
  node: string | null;
  provider: string;
}

interface SecretSettings {
  vault_address: string;
  auth_mount: string;
  role: string;
  audience: string;
  namespace: string | null;
  ca_cert: string | null;
  kv_mount: string;
}

/** How long the launch's JWT is good for: the gateway logs in with it right away. */
const WORKLOAD_TTL_SECONDS = 300;

/**
 * Set by `berth run --vault-wrapped-token/--secrets-file` in the task's env: the id of the launch
 * whose secrets it sent straight to the gateway. Only an id: the secrets never come this way.
 */
export const CLIENT_SECRETS_ENV = 'BERTH_CLIENT_SECRETS';

const WAITING = ['pending', 'provisioning', 'starting'];

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(done, ms);
    function done() {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(t);
      reject(signal.reason as Error);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Runs tasks in their environment through the gateway's exec API. The worker always connects
 * to the gateway (environments need no route back), with a fresh `exec` token per request that
 * names the environment and the task. Output is read from the offset the engine asks for and
 * what is stored in Postgres is acknowledged, so the gateway keeps only what is not stored yet.
 */
export class GatewayTaskRunner implements TaskRunner {
  private readonly pollMs: number;
  private readonly idleMs: number;
  private readonly ackMs: number;

  constructor(private readonly opts: GatewayRunnerOptions) {
    this.pollMs = opts.pollMs ?? 500;
    this.idleMs = opts.idleMs ?? 45_000;
    this.ackMs = opts.ackMs ?? 1000;
  }

  /**
   * The task's environment, owned by the task's owner (checked here as well as on create). A
   * failed, stopped or gone environment fails the task; one still coming up is waited for.
   */
  private async environment(
    task: RunnableTask,
    signal: AbortSignal,
    wait: boolean,
  ): Promise<TaskEnvironment> {
    for (;;) {
      const { rows } = await this.opts.pool.query<TaskEnvironment>(
        `SELECT e.id, e.owner_id, e.state, e.state_reason, e.gateway_url, e.node, e.provider
         FROM tasks t JOIN environments e ON e.id = t.environment_id AND e.owner_id = t.owner_id
         WHERE t.id = $1`,
        [task.id],
      );
      const env = rows[0];
      if (!env) throw new TaskRunFailure(`environment ${task.environmentId} does not exist`);
      if (env.state === 'ready' && env.gateway_url) return env;
      const why = env.state_reason ? `: ${env.state_reason}` : '';
      if (!wait)
        // Past prepare the task was started there: the environment went away under it.
        throw new TaskRunFailure(`environment ${env.id} went ${env.state} while the task ran${why}`);
      if (!WAITING.includes(env.state))
        throw new TaskRunFailure(
          env.state === 'stopped' || env.state === 'stopping'
            ? `environment ${env.id} is ${env.state}; start it and run the task again`
            : `environment ${env.id} is ${env.state}${why}`,
        );
      await sleep(this.pollMs, signal);
    }
  }

  private async headers(env: TaskEnvironment, task: RunnableTask): Promise<Record<string, string>> {
    const token = await this.opts.sign({ environmentId: env.id, ownerId: env.owner_id, taskId: task.id });
    return { authorization: `Bearer ${token}` };
  }

  async prepare(task: RunnableTask, signal: AbortSignal): Promise<{ node: string }> {
    if (!task.environmentId) throw new TaskRunFailure('the task names no environment to run in');
    const env = await this.environment(task, signal, true);
    return { node: env.node ?? env.id };
  }

  async deliver(
    task: RunnableTask,
    messages: ControlMessage[],
    signal: AbortSignal,
  ): Promise<{ appliedSeq: number }> {
    const env = await this.environment(task, signal, false);
    // The start carries the task's env from its row (never stored on the gateway's disk), and
    // the owner's Vault references with a fresh JWT: added to what is sent, never to the stored
    // message, so nothing credential-like reaches Postgres.
    const start = messages.find((m) => m.kind === 'start');
    const secrets = start ? await this.launchSecrets(env, task) : undefined;
    const taskEnv = Object.fromEntries(Object.entries(task.env).filter(([k]) => k !== CLIENT_SECRETS_ENV));
    const body = messages.map((m) =>
      m.kind === 'start'
        ? { seq: m.seq, kind: m.kind, body: { ...m.body, env: taskEnv, ...(secrets ? { secrets } : {}) } }
        : m,
    );
    const res = await fetch(`${env.gateway_url}/exec/tasks/${task.id}/messages`, {
      method: 'POST',
      headers: { ...(await this.headers(env, task)), 'content-type': 'application/json' },
      body: JSON.stringify({ messages: body }),
      signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
    });
    if (!res.ok) throw new Error(`gateway answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    return { appliedSeq: ((await res.json()) as ExecMessagesReply).appliedSeq };
  }

  /**
   * The `secrets` section of a start: the owner's Vault settings and references, and a
   * workload-identity JWT minted for this launch (sub = the owner, aud = their audience).
   * Undefined for owners with no settings or no references: their tasks run as before.
   */
  private async launchSecrets(
    env: TaskEnvironment,
    task: RunnableTask,
  ): Promise<Record<string, unknown> | undefined> {
    const { rows } = await this.opts.pool.query<SecretSettings>(
      `SELECT vault_address, auth_mount, role, audience, namespace, ca_cert, kv_mount
       FROM secret_settings WHERE user_id = $1`,
      [env.owner_id],
    );
    const s = rows[0];
    const launch = task.env[CLIENT_SECRETS_ENV];
    const clientLaunch = launch && /^[0-9a-f-]{36}$/.test(launch) ? { clientLaunch: launch } : {};
    if (!s && task.secretNames?.length)
      throw new TaskRunFailure(
        `the task asks for secret reference ${task.secretNames.join(', ')}, but its owner's Vault is no longer set up in Berth; set it up again (berth secrets config) and relaunch`,
      );
    if (!s) return launch ? { refs: [], ...clientLaunch } : undefined;
    const refs = await this.opts.pool.query<{
      env_name: string;
      path: string;
      key: string;
      mount: string | null;
    }>(`SELECT env_name, path, key, mount FROM secret_refs WHERE user_id = $1 ORDER BY env_name`, [
      env.owner_id,
    ]);
    const chosen = task.secretNames
      ? refs.rows.filter((r) => task.secretNames?.includes(r.env_name))
      : refs.rows;
    const gone = (task.secretNames ?? []).filter((n) => !refs.rows.some((r) => r.env_name === n));
    if (gone.length)
      throw new TaskRunFailure(
        `the task asks for secret reference ${gone.join(', ')}, which its owner no longer has (removed after launch); add it again (berth secrets add) and relaunch`,
      );
    if (chosen.length === 0) return launch ? { refs: [], ...clientLaunch } : undefined;
    if (!this.opts.signWorkload)
      throw new TaskRunFailure(
        "this worker cannot sign workload identities, so the task owner's secrets cannot be read",
      );
    const jwt = await this.opts.signWorkload({
      userId: env.owner_id,
      audience: s.audience,
      environmentId: env.id,
      taskId: task.id,
      provider: env.provider,
      launchSource: task.launchSource,
      ttlSeconds: WORKLOAD_TTL_SECONDS,
    });
    return {
      vault: {
        address: s.vault_address,
        authMount: s.auth_mount,
        role: s.role,
        kvMount: s.kv_mount,
        ...(s.namespace ? { namespace: s.namespace } : {}),
        ...(s.ca_cert ? { caCert: s.ca_cert } : {}),
      },
      jwt,
      refs: chosen.map((r) => ({
        env: r.env_name,
        path: r.path,
        key: r.key,
        ...(r.mount ? { mount: r.mount } : {}),
      })),
      ...clientLaunch,
    };
  }

  async *output(task: RunnableTask, offset: number, signal: AbortSignal): AsyncIterable<OutputEvent> {
    let at = offset;
    let failures = 0;
    let refusals = 0;
    const acker = this.startAcker(task, signal);
    try {
      for (;;) {
        const env = await this.environment(task, signal, false);
        const idle = new AbortController();
        let idleTimer = setTimeout(() => idle.abort(new Error('output stream went quiet')), this.idleMs);
        try {
          const res = await fetch(`${env.gateway_url}/exec/tasks/${task.id}/output?offset=${at}`, {
            headers: await this.headers(env, task),
            signal: AbortSignal.any([signal, idle.signal]),
          });
          if (res.status === 404 || res.status === 410) {
            const text = await res.text();
            throw new TaskRunFailure(
              res.status === 404
                ? "the environment's gateway has no record of the task (it restarted without its data); the task's process was lost"
                : `the environment's gateway no longer has the task's output from offset ${at}: ${text.slice(0, 200)}`,
            );
          }
          if (res.status === 401 && ++refusals >= 5)
            throw new TaskRunFailure(
              `the environment's gateway refuses this control plane's tokens (${(await res.text()).slice(0, 200)}); ` +
                'its signing keys or public URL changed since the environment was created: recreate the environment',
            );
          if (!res.ok || !res.body) throw new Error(`gateway answered ${res.status}`);
          refusals = 0;
          const dec = new ExecFrameDecoder();
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            clearTimeout(idleTimer);
            idleTimer = setTimeout(() => idle.abort(new Error('output stream went quiet')), this.idleMs);
            for (const ev of dec.push(chunk)) {
              failures = 0;
              if (ev.type === 'output') {
                at = ev.offset + ev.data.length;
                yield ev;
              } else if (ev.type === 'exit') {
                yield ev;
                return;
              } else if (ev.type === 'lost') {
                throw new TaskRunFailure(ev.reason);
              }
            }
          }
          // The response ended without an exit: the gateway closed (restarting?). Read again.
          throw new Error('output stream ended before the exit');
        } catch (err) {
          if (err instanceof TaskRunFailure || signal.aborted) throw err;
          failures += 1;
          this.opts.logger.warn({ taskId: task.id, err, failures }, 'reading task output failed; retrying');
          await sleep(Math.min(200 * 2 ** Math.min(failures, 5), 5000), signal);
        } finally {
          clearTimeout(idleTimer);
        }
      }
    } finally {
      acker.stop();
    }
  }

  /** Passes the stored offset (Postgres is the truth) to the gateway while the output is read. */
  private startAcker(task: RunnableTask, signal: AbortSignal): { stop(): void } {
    let acked = -1;
    let busy = false;
    let touched = 0;
    const tick = async () => {
      // A task at work is activity: the idle reaper must not stop its environment under it.
      if (Date.now() - touched >= 30_000) {
        touched = Date.now();
        await this.opts.pool.query(
          `UPDATE environments SET last_activity_at = greatest(last_activity_at, now())
           WHERE id = (SELECT environment_id FROM tasks WHERE id = $1)`,
          [task.id],
        );
      }
      const { rows } = await this.opts.pool.query<{ log_bytes: string }>(
        `SELECT log_bytes FROM tasks WHERE id = $1`,
        [task.id],
      );
      const stored = Number(rows[0]?.log_bytes ?? 0);
      if (stored <= acked) return;
      const env = await this.environment(task, signal, false);
      const res = await fetch(`${env.gateway_url}/exec/tasks/${task.id}/ack`, {
        method: 'POST',
        headers: { ...(await this.headers(env, task)), 'content-type': 'application/json' },
        body: JSON.stringify({ offset: stored }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
      });
      await res.body?.cancel();
      if (res.ok) acked = stored;
    };
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      tick()
        .catch(() => undefined) // the next tick tries again; reading does not depend on it
        .finally(() => (busy = false));
    }, this.ackMs);
    return { stop: () => clearInterval(timer) };
  }
}

/**
 * Tasks with an environment run through its gateway; tasks without one (until environment-spec
 * tasks provision their own) go to `withoutEnvironment`, today the FAKE runner.
 */
export class RoutingTaskRunner implements TaskRunner {
  constructor(
    private readonly withEnvironment: TaskRunner,
    private readonly withoutEnvironment: TaskRunner,
  ) {}

  private pick(task: RunnableTask): TaskRunner {
    return task.environmentId ? this.withEnvironment : this.withoutEnvironment;
  }

  prepare(task: RunnableTask, signal: AbortSignal) {
    return this.pick(task).prepare(task, signal);
  }

  deliver(task: RunnableTask, messages: ControlMessage[], signal: AbortSignal) {
    return this.pick(task).deliver(task, messages, signal);
  }

  output(task: RunnableTask, offset: number, signal: AbortSignal) {
    return this.pick(task).output(task, offset, signal);
  }
}

/** An `exec` token for one task on one environment, as short-lived as a terminal ticket. */
export async function execToken(
  identity: IdentityService,
  r: { environmentId: string; ownerId: string; taskId: string },
): Promise<string> {
  const { token } = await identity.signGatewayToken({
    environmentId: r.environmentId,
    userId: r.ownerId,
    scope: 'exec',
    sessionId: r.taskId,
    ttlSeconds: 60,
  });
  return token;
}

/** A per-launch workload identity for the task owner's Vault. */
export async function workloadToken(identity: IdentityService, r: WorkloadIdentityRequest): Promise<string> {
  return (await identity.signWorkloadIdentity(r)).token;
}
