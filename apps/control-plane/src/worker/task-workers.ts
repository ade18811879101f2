import { JobCatalog } from '@berth/protocol';
import {
  FakeTaskRunner,
  WorkerPool,
  newWorkerId,
  registerQueueMetrics,
  taskJobHandlers,
  type Clock,
  type FakeScript,
  type Pool,
  type QueueLogger,
  type QueueMetrics,
  type RunnableTask,
  type TaskRunner,
} from '@berth/db';
import type { Registry } from 'prom-client';
import {
  GatewayTaskRunner,
  RoutingTaskRunner,
  type ExecTokenSigner,
  type WorkloadSigner,
} from './gateway-runner.js';

export interface TaskWorkersOptions {
  pool: Pool;
  databaseUrl: string;
  logger: QueueLogger;
  clock?: Clock;
  /**
   * Where tasks run. Default: tasks with an environment through its gateway (needs
   * `signExecToken`); tasks without one on the FAKE runner (`defaultFakeScript`).
   */
  runner?: TaskRunner;
  /** Signs the short-lived `exec` tokens the gateway runner presents. */
  signExecToken?: ExecTokenSigner;
  /** Signs the per-launch workload identities for task owners' own Vaults. */
  signWorkload?: WorkloadSigner;
  /** Registers the queue metrics here (once per registry). */
  registry?: Registry;
  /** Tasks driven at once by this process (each holds a slot while it runs). */
  taskConcurrency?: number;
  leaseMs?: number;
}

export interface TaskWorkers {
  workerId: string;
  /** Graceful: stop claiming, let running jobs finish for up to `graceMs`, release the rest. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * The FAKE runner's script for tasks that name no environment (tasks with one run for real in it,
 * through its gateway; tasks that bring an environment spec get one made for them): prints the
 * command and exits 0. A few commands script it, for demos and tests: `fake:fail` exits 1,
 * `fake:hang` runs until stopped, `fake:sleep MS` exits 0 after MS ms, `fake:lines N` prints N
 * numbered lines.
 */
export function defaultFakeScript(task: RunnableTask): FakeScript {
  const [cmd, arg] = task.command;
  if (cmd === 'fake:fail') return { steps: [{ out: 'failing on purpose\n' }], exitCode: 1 };
  if (cmd === 'fake:hang') return { steps: [{ out: 'running until stopped\n' }], hang: true };
  if (cmd === 'fake:sleep')
    return {
      steps: [{ out: 'sleeping\n' }, { out: 'awake\n', afterMs: Number(arg ?? 1000) || 1000 }],
      exitCode: 0,
    };
  if (cmd === 'fake:lines')
    return {
      steps: Array.from({ length: Number(arg ?? 10) || 10 }, (_, i) => ({ out: `line ${i + 1}\n` })),
      exitCode: 0,
    };
  return { steps: [{ out: `$ ${task.command.join(' ')}\n` }], exitCode: 0 };
}

const metricsByRegistry = new WeakMap<Registry, QueueMetrics>();

/**
 * Starts this process's task workers: one pool drives tasks (`task.run`, long-lived jobs), one
 * delivers control messages (`task.deliver`, short ones), so a burst of long tasks never delays
 * a stop. Shared by `berth server` (in-process) and `berth worker` (alone).
 */
export async function startTaskWorkers(opts: TaskWorkersOptions): Promise<TaskWorkers> {
  const fake = new FakeTaskRunner(defaultFakeScript);
  const runner =
    opts.runner ??
    new RoutingTaskRunner(
      new GatewayTaskRunner({
        pool: opts.pool,
        logger: opts.logger,
        sign:
          opts.signExecToken ??
          (() => Promise.reject(new Error('this worker has no signing keys to reach environments'))),
        ...(opts.signWorkload ? { signWorkload: opts.signWorkload } : {}),
      }),
      fake,
    );
  let metrics: QueueMetrics | undefined;
  if (opts.registry) {
    metrics = metricsByRegistry.get(opts.registry) ?? registerQueueMetrics(opts.registry, opts.pool);
    metricsByRegistry.set(opts.registry, metrics);
  }
  const handlers = taskJobHandlers({
    pool: opts.pool,
    runner,
    logger: opts.logger,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const workerId = newWorkerId();
  const common = {
    pool: opts.pool,
    url: opts.databaseUrl,
    catalog: JobCatalog,
    logger: opts.logger,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(metrics ? { metrics } : {}),
    ...(opts.leaseMs ? { leaseMs: opts.leaseMs } : {}),
  };
  const pools = [
    new WorkerPool({
      ...common,
      workerId: `${workerId}/run`,
      handlers: { 'task.run': handlers['task.run'] },
      concurrency: opts.taskConcurrency ?? 50,
    }),
    new WorkerPool({
      ...common,
      workerId: `${workerId}/deliver`,
      handlers: { 'task.deliver': handlers['task.deliver'] },
      concurrency: 5,
    }),
  ];
  const started: WorkerPool<typeof JobCatalog>[] = [];
  try {
    for (const p of pools) {
      await p.start();
      started.push(p);
    }
  } catch (err) {
    await Promise.all(started.map((p) => p.stop(0)));
    throw err;
  }
  return {
    workerId,
    async stop(graceMs = 10_000) {
      await Promise.all(pools.map((p) => p.stop(graceMs)));
      fake.dispose();
      if (runner instanceof FakeTaskRunner) runner.dispose();
    },
  };
}
