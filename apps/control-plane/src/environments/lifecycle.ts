import type { JobContext, JobHandlers, Pool, Queryable, QueueLogger } from '@berth/db';
import { ProviderError, type EnvironmentProvider } from '@berth/providers';
import type { EnvironmentJobCatalog, EnvironmentSpec } from '@berth/protocol';
import type { EnvironmentsRepository, EnvironmentRow } from './environments.repository.js';
import type { ProviderRegistry } from './providers.js';
import { resolveRepoToken, type SignWorkload } from './repo-token.js';
import { removeBuildContext, toProviderSpec, writeBuildContext, type StoredSpec } from './spec.js';

export interface LifecycleDeps {
  pool: Pool;
  envs: EnvironmentsRepository;
  providers: ProviderRegistry;
  /** What every gateway verifies tickets against. */
  gateway: () => EnvironmentSpec['gateway'];
  dataDir: string;
  logger: QueueLogger;
  /** This installation's id (metadata), labelled on what providers create so only we reap it. */
  installation?: string;
  /** For `repo.tokenSecret`: a workload identity for the owner's Vault (absent: such repos fail). */
  signWorkload?: SignWorkload;
}

const MAX_PROGRESS_EVENTS = 500;

function describe(err: unknown): { message: string; hint: string; permanent: boolean } {
  if (err instanceof ProviderError) {
    const retryable = (err as ProviderError & { retryable?: boolean }).retryable === true;
    return { message: err.message, hint: err.hint, permanent: !retryable };
  }
  return {
    message: (err as Error).message ?? String(err),
    hint: 'it will be retried; see the control plane log',
    permanent: false,
  };
}

/**
 * The environment lifecycle as jobs. Provider calls are idempotent on the environment id, so a
 * job re-run after a crash is harmless; the state change is applied in the job's completing
 * transaction, and only if no later request (a destroy during provisioning) overtook it.
 */
export function environmentJobHandlers(deps: LifecycleDeps): JobHandlers<typeof EnvironmentJobCatalog> {
  const { envs } = deps;

  async function load(
    id: string,
  ): Promise<{ env: EnvironmentRow; provider: EnvironmentProvider } | undefined> {
    const env = await envs.findById(id);
    if (!env) return undefined;
    const provider = deps.providers.get(env.provider);
    if (!provider)
      throw new ProviderError(
        'provider_unavailable',
        `provider ${env.provider} is not enabled on this worker`,
        'enable it in BERTH_PROVIDERS',
      );
    return { env, provider };
  }

  /** Records the failure; a permanent one (or the last attempt) marks the environment failed. */
  async function fail(
    ctx: JobContext,
    id: string,
    action: string,
    err: unknown,
    expect: EnvironmentRow['state'][],
  ): Promise<void> {
    const d = describe(err);
    const last = ctx.job.attempts >= ctx.job.max_attempts;
    deps.logger.warn(
      { environmentId: id, action, err: d.message, attempt: ctx.job.attempts },
      'environment job failed',
    );
    if (!d.permanent && !last) {
      await envs.addEvent(
        deps.pool,
        id,
        'retry',
        `${action} failed (attempt ${ctx.job.attempts}): ${d.message}; retrying`,
      );
      throw err;
    }
    await ctx.complete(async (tx) => {
      const cur = await envs.lock(tx, id);
      if (!cur || !expect.includes(cur.state)) return;
      await envs.setState(tx, id, 'failed', { reason: `${action} failed: ${d.message}` });
      await envs.addEvent(tx, id, 'failed', `${action} failed: ${d.message}`, { hint: d.hint });
    });
  }

  /**
   * Runs a job's work with every failure (the load included) recorded against the environment, so
   * none leaves it stuck in a transitional state once the retries are used up.
   */
  async function guarded(
    ctx: JobContext,
    id: string,
    action: string,
    expect: EnvironmentRow['state'][],
    work: () => Promise<void>,
  ): Promise<void> {
    try {
      await work();
    } catch (err) {
      await fail(ctx, id, action, err, expect);
    }
  }

  /**
   * A create or start that finished after a stop or destroy was requested: that job may already
   * have run against a container that did not exist yet, so bring the provider in line with the
   * state the user asked for. Runs in the completing transaction, holding the row lock, so a new
   * request waits until the provider matches. A failure here is recorded as `failed`: the
   * environment may still be running and the user should know.
   */
  async function matchRequestedState(
    tx: Queryable,
    cur: EnvironmentRow,
    provider: EnvironmentProvider,
    action: 'provisioning' | 'start',
  ): Promise<void> {
    const destroy = cur.state === 'destroying' || cur.state === 'destroyed';
    if (!destroy && cur.state !== 'stopping' && cur.state !== 'stopped') return;
    const what = destroy ? 'destroy' : 'stop';
    try {
      if (destroy) {
        await provider.destroy(cur.id);
        await removeBuildContext(deps.dataDir, cur.id);
      } else await provider.stop(cur.id);
    } catch (err) {
      const d = describe(err);
      const reason = `${action} finished after a ${what} was requested, and the ${what} failed: ${d.message}`;
      if (!destroy) await envs.setState(tx, cur.id, 'failed', { reason, gatewayUrl: null });
      await envs.addEvent(tx, cur.id, 'failed', reason, { hint: `${what} it again` });
      return;
    }
    const done = `${action} finished after a ${what} was requested; ${destroy ? 'destroyed' : 'stopped'} it`;
    await envs.addEvent(tx, cur.id, destroy ? 'destroyed' : 'stopped', done);
    // Still stopping/destroying: that job's own completion tells the user; a settled one gets the story.
    if (cur.state === 'stopped' || cur.state === 'destroyed') await envs.setReason(tx, cur.id, done);
  }

  return {
    async 'environment.provision'({ environmentId }, ctx) {
      await guarded(ctx, environmentId, 'provisioning', ['pending', 'provisioning'], async () => {
        const loaded = await load(environmentId);
        if (!loaded) return;
        const { env, provider } = loaded;
        if (env.state !== 'pending' && env.state !== 'provisioning') return;
        if (env.state === 'pending') {
          // Conditional: a destroy that came in since the read above must not be overwritten.
          const moved = await envs.transition(deps.pool, env.id, 'pending', 'provisioning', {
            reason: null,
          });
          if (!moved) return;
          await envs.addEvent(deps.pool, env.id, 'provisioning', `provisioning on ${provider.name}`);
          Object.assign(env, moved);
        }
        let events = 0;
        const spec = env.spec as StoredSpec;
        const buildContext = await writeBuildContext(deps.dataDir, env.id, spec);
        const providerSpec = toProviderSpec(
          env.id,
          env.owner_id,
          spec,
          deps.gateway(),
          buildContext,
          deps.installation,
        );
        if (spec.repo?.tokenSecret && providerSpec.repo) {
          await envs.addEvent(
            deps.pool,
            env.id,
            'clone',
            `reading the repository token ${spec.repo.tokenSecret} from your Vault`,
          );
          // Lives in this call only: the provider uses it for the clone, nothing stores it.
          providerSpec.repo.token = await resolveRepoToken(deps, env, spec.repo.tokenSecret);
        }
        // Progress events are written one after another, in the order the provider reports them.
        let written: Promise<unknown> = Promise.resolve();
        const result = await provider.create(providerSpec, {
          onProgress: (p) => {
            events += 1;
            if (events > MAX_PROGRESS_EVENTS) return;
            const step = p.step ? ` [${p.step.index}/${p.step.total}]` : '';
            const message =
              events === MAX_PROGRESS_EVENTS ? '… further output omitted' : `${p.message}${step}`;
            written = written
              .then(() => envs.addEvent(deps.pool, env.id, p.phase, message.slice(0, 2000)))
              .catch(() => undefined);
          },
        });
        await written;
        if (result.state !== 'ready' || !result.gatewayUrl)
          throw new ProviderError(
            'not_ready',
            `environment is ${result.state}${result.detail ? `: ${result.detail}` : ''}`,
            'see its events',
          );
        await ctx.complete(async (tx) => {
          const cur = await envs.lock(tx, env.id);
          if (!cur) return;
          if (cur.state !== 'provisioning') return matchRequestedState(tx, cur, provider, 'provisioning');
          await envs.setState(tx, env.id, 'ready', { gatewayUrl: result.gatewayUrl, node: result.node });
          await envs.addEvent(tx, env.id, 'ready', `ready on ${result.node} (${result.isolation})`, {
            gatewayUrl: result.gatewayUrl,
          });
        });
      });
    },

    async 'environment.stop'({ environmentId }, ctx) {
      await guarded(ctx, environmentId, 'stop', ['stopping'], async () => {
        const loaded = await load(environmentId);
        if (!loaded || loaded.env.state !== 'stopping') return;
        await loaded.provider.stop(environmentId);
        await ctx.complete(async (tx) => {
          const cur = await envs.lock(tx, environmentId);
          if (!cur || cur.state !== 'stopping') return;
          // Why it was stopped (requested by someone, idle, over quota) stays readable on it.
          await envs.setState(tx, environmentId, 'stopped', { gatewayUrl: null, reason: cur.state_reason });
          await envs.addEvent(tx, environmentId, 'stopped', 'stopped; files in /workspace are kept');
        });
      });
    },

    async 'environment.start'({ environmentId }, ctx) {
      await guarded(ctx, environmentId, 'start', ['starting'], async () => {
        const loaded = await load(environmentId);
        if (!loaded || loaded.env.state !== 'starting') return;
        const info = await loaded.provider.start(environmentId);
        if (info.state !== 'ready' || !info.gatewayUrl)
          throw new ProviderError(
            'not_ready',
            `environment is ${info.state}${info.detail ? `: ${info.detail}` : ''}`,
            'destroy it and create a new one',
          );
        await ctx.complete(async (tx) => {
          const cur = await envs.lock(tx, environmentId);
          if (!cur) return;
          if (cur.state !== 'starting') return matchRequestedState(tx, cur, loaded.provider, 'start');
          await envs.setState(tx, environmentId, 'ready', { gatewayUrl: info.gatewayUrl, node: info.node });
          await envs.addEvent(tx, environmentId, 'ready', `started on ${info.node}`);
        });
      });
    },

    async 'environment.destroy'({ environmentId }, ctx) {
      await guarded(ctx, environmentId, 'destroy', ['destroying'], async () => {
        const loaded = await load(environmentId);
        if (!loaded || loaded.env.state !== 'destroying') return;
        await loaded.provider.destroy(environmentId);
        await removeBuildContext(deps.dataDir, environmentId);
        await ctx.complete(async (tx) => {
          const cur = await envs.lock(tx, environmentId);
          if (!cur || cur.state !== 'destroying') return;
          await envs.setState(tx, environmentId, 'destroyed', { gatewayUrl: null });
          await envs.addEvent(
            tx,
            environmentId,
            'destroyed',
            'destroyed: container or process and files removed',
          );
        });
      });
    },
  };
}
