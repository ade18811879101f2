import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { JobCatalog } from '@berth/protocol';
import { createPool, transaction, type Pool } from '../pool.js';
import { createTestDatabase, openConnections, type TestDatabase } from '../testing/index.js';
import { claimJobs, reapExpiredLeases } from '../queue/jobs.js';
import { WorkerPool, type WorkerEvent } from '../queue/worker.js';
import { requestTaskCancel, sendTaskSignal, taskJobHandlers } from './engine.js';
import {
  LogOffsetConflictError,
  appendLogChunk,
  createTask,
  getTask,
  listMessages,
  listTaskEvents,
  readLog,
  transitionTask,
  type TaskState,
} from './repository.js';
import {
  FakeTaskRunner,
  TaskRunFailure,
  type FakeScript,
  type OutputEvent,
  type RunnableTask,
} from './runner.js';

/** A fake whose environment can be gone (prepare) or whose process is lost after some output. */
class FailingRunner extends FakeTaskRunner {
  /** Resolves the environment of `wait-env` tasks (until then prepare waits, like a provisioning one). */
  envReady!: () => void;
  private readonly ready = new Promise<void>((resolve) => (this.envReady = resolve));

  override async prepare(task: RunnableTask, signal?: AbortSignal) {
    if (task.command[0] === 'nowhere') throw new TaskRunFailure('environment e1 was destroyed');
    if (task.command[0] === 'wait-env')
      await new Promise<void>((resolve, reject) => {
        void this.ready.then(resolve);
        signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      });
    return super.prepare(task);
  }

  override async *output(
    task: RunnableTask,
    offset: number,
    signal: AbortSignal,
  ): AsyncIterable<OutputEvent> {
    for await (const ev of super.output(task, offset, signal)) {
      yield ev;
      if (task.command[0] === 'lost' && ev.type === 'output')
        throw new TaskRunFailure("the environment's gateway restarted; the task's process was lost");
    }
  }
}

describe('tasks on the job engine (fake runner)', () => {
  let db: TestDatabase;
  let pool: Pool;
  let owner: string;
  let runner: FakeTaskRunner;
  let workers: WorkerPool<typeof JobCatalog> | undefined;
  const scripts = new Map<string, FakeScript>();
  const waiters: Array<{ id: string; states: TaskState[]; resolve: () => void }> = [];

  beforeEach(async () => {
    db = await createTestDatabase();
    pool = createPool(db.url, 12);
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO users (email, role) VALUES ('t@example.com', 'member') RETURNING id`,
    );
    owner = rows[0]!.id;
    runner = new FakeTaskRunner(
      (t) => scripts.get(t.command[0]!) ?? { steps: [{ out: 'hello\n' }], exitCode: 0 },
    );
  });

  afterEach(async () => {
    await workers?.stop(1000);
    workers = undefined;
    runner.dispose();
    await pool.end();
    expect(await openConnections(inject('pgAdminUrl'), db.name)).toBe(0);
    await db.drop();
  });

  /** Resolves once the task reaches one of `states` (checked after every job the pool finishes). */
  function reaches(id: string, states: TaskState[]): Promise<void> {
    return new Promise((resolve) => waiters.push({ id, states, resolve }));
  }
  async function onEvent(e: WorkerEvent | { type: 'transition' }) {
    if (e.type !== 'completed' && e.type !== 'failed' && e.type !== 'transition') return;
    for (const w of [...waiters]) {
      const t = await getTask(pool, w.id);
      const i = waiters.indexOf(w);
      // Checks run concurrently: only the first to see it settles (and removes) a waiter.
      if (t && i >= 0 && w.states.includes(t.state)) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  async function startWorkers(leaseMs = 30_000, only?: 'task.run') {
    const all = taskJobHandlers({
      pool,
      runner,
      flushMs: 20,
      redeliverMs: 100,
      onTransition: () => void onEvent({ type: 'transition' }),
    });
    workers = new WorkerPool({
      pool,
      url: db.url,
      catalog: JobCatalog,
      handlers: only ? { [only]: all[only] } : all,
      leaseMs,
      onEvent: (e) => void onEvent(e),
      backoff: { baseMs: 20, maxMs: 100 },
      pollMs: 100,
    });
    await workers.start();
  }

  const create = (command: string[], opts: { key?: string; timeoutSeconds?: number } = {}) =>
    transaction(pool, (tx) =>
      createTask(
        tx,
        {
          ownerId: owner,
          command,
          timeoutSeconds: opts.timeoutSeconds ?? 60,
          idempotencyKey: opts.key ?? null,
        },
        new Date(),
      ),
    );

  it('the same idempotency key returns the same task, also when both requests race', async () => {
    const [a, b] = await Promise.all([create(['echo'], { key: 'k1' }), create(['echo'], { key: 'k1' })]);
    expect(a.task.id).toBe(b.task.id);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    const c = await create(['echo'], { key: 'k2' });
    expect(c.task.id).not.toBe(a.task.id);
    const { rows } = await pool.query(`SELECT kind FROM jobs ORDER BY id`);
    expect(rows).toEqual([{ kind: 'task.run' }, { kind: 'task.run' }]); // one job per task created
  });

  it('runs a task to success: timeline with worker and node, output in batched chunks readable from any offset', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => ({ out: `line ${i}\n` }));
    scripts.set('build', { steps: lines, exitCode: 0 });
    const { task } = await create(['build']);
    const done = reaches(task.id, ['succeeded', 'failed']);
    await startWorkers();
    await done;

    const t = (await getTask(pool, task.id))!;
    expect(t).toMatchObject({ state: 'succeeded', exit_code: 0, node: 'fake-node', acked_message_seq: 1 });
    const events = await listTaskEvents(pool, task.id);
    expect(events.map((e) => [e.from_state, e.to_state])).toEqual([
      [null, 'queued'],
      ['queued', 'provisioning'],
      ['provisioning', 'running'],
      ['running', 'succeeded'],
    ]);
    for (const e of events.slice(1)) expect(e.worker_id).toBe(workers!.workerId);
    expect(events[2]!.node).toBe('fake-node');

    const full = lines.map((l) => l.out).join('');
    const all = await readLog(pool, task.id, 0);
    expect(all.data.toString()).toBe(full);
    expect(all.nextOffset).toBe(Buffer.byteLength(full));
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM task_log_chunks WHERE task_id = $1`,
      [task.id],
    );
    expect(rows[0]!.n).toBeLessThan(lines.length); // never a row per line
    const mid = await readLog(pool, task.id, 1000);
    expect(mid.data.toString()).toBe(full.slice(1000));
    const page = await readLog(pool, task.id, 10, 15);
    expect(page).toMatchObject({ offset: 10, nextOffset: 25 });
    expect(page.data.toString()).toBe(full.slice(10, 25));
    const past = await readLog(pool, task.id, 10_000_000);
    expect(past).toMatchObject({ offset: Buffer.byteLength(full), nextOffset: Buffer.byteLength(full) });
  });

  it('a tty task carries tty in its start message', async () => {
    const { task } = await transaction(pool, (tx) =>
      createTask(tx, { ownerId: owner, command: ['top'], timeoutSeconds: 60, tty: true }, new Date()),
    );
    expect((await listMessages(pool, task.id)).map((m) => m.body)).toEqual([{ command: ['top'], tty: true }]);
    const plain = (await create(['ls'])).task;
    expect((await listMessages(pool, plain.id)).map((m) => m.body)).toEqual([{ command: ['ls'] }]);
  });

  it('a runner failure fails the task with its reason and keeps the output read; 127 gets a hint', async () => {
    runner.dispose();
    runner = new FailingRunner((t) => scripts.get(t.command[0]!) ?? { steps: [{ out: 'hello\n' }] });
    scripts.set('lost', { steps: [{ out: 'partial\n' }], hang: true });
    scripts.set('missing', { steps: [{ out: 'sh: 1: exec: missing: not found\n' }], exitCode: 127 });
    const lost = (await create(['lost'])).task;
    const nowhere = (await create(['nowhere'])).task;
    const missing = (await create(['missing'])).task;
    const all = Promise.all([lost, nowhere, missing].map((t) => reaches(t.id, ['failed'])));
    await startWorkers();
    await all;
    expect(await getTask(pool, lost.id)).toMatchObject({
      state: 'failed',
      error: "the environment's gateway restarted; the task's process was lost",
    });
    expect((await readLog(pool, lost.id, 0)).data.toString()).toBe('partial\n');
    expect(await getTask(pool, nowhere.id)).toMatchObject({
      state: 'failed',
      error: 'environment e1 was destroyed',
    });
    expect((await listTaskEvents(pool, nowhere.id)).map((e) => e.to_state)).toEqual([
      'queued',
      'provisioning',
      'failed',
    ]);
    const m = (await getTask(pool, missing.id))!;
    expect(m).toMatchObject({ state: 'failed', exit_code: 127 });
    expect(m.error).toMatch(/command not found: check that the program is installed/);
  });

  it('waiting for its environment: past the timeout it is timed_out, canceled meanwhile it never starts', async () => {
    runner.dispose();
    const failing = new FailingRunner();
    runner = failing;
    const slow = (await create(['wait-env'], { timeoutSeconds: 1 })).task;
    const canceled = (await create(['wait-env'])).task;
    const provisioning = reaches(canceled.id, ['provisioning']);
    const timedOut = reaches(slow.id, ['timed_out']);
    await startWorkers();
    await timedOut;
    expect((await getTask(pool, slow.id))!.error).toMatch(/timed out after 1s before it could start/);
    await provisioning;
    const done = reaches(canceled.id, ['canceled']);
    await transaction(pool, (tx) => requestTaskCancel(tx, canceled.id, new Date()));
    failing.envReady();
    await done;
    expect(failing.applied(canceled.id)).toEqual([]); // the start was never delivered
    expect((await listTaskEvents(pool, canceled.id)).at(-1)!.reason).toBe('canceled; before it started');
  });

  it('a non-zero exit is failed; past its timeout a task is stopped and timed_out', async () => {
    scripts.set('bad', { steps: [{ out: 'oops\n' }], exitCode: 3 });
    scripts.set('hang', { steps: [{ out: 'started\n' }], hang: true });
    const bad = (await create(['bad'])).task;
    const hang = (await create(['hang'], { timeoutSeconds: 1 })).task;
    const both = Promise.all([reaches(bad.id, ['failed']), reaches(hang.id, ['timed_out'])]);
    await startWorkers();
    await both;
    expect(await getTask(pool, bad.id)).toMatchObject({ state: 'failed', exit_code: 3 });
    const h = (await getTask(pool, hang.id))!;
    expect(h).toMatchObject({ state: 'timed_out', exit_code: 143 });
    expect(
      (await listMessages(pool, hang.id)).map((m) => [
        m.seq,
        m.kind,
        m.body.reason ?? null,
        m.acked_at !== null,
      ]),
    ).toEqual([
      [1, 'start', null, true],
      [2, 'stop', 'timeout', true],
    ]);
    // Whether it printed before the stop depends on how busy the machine was; either way the
    // stored log is exactly what the process wrote.
    expect(['', 'started\n']).toContain((await readLog(pool, hang.id, 0)).data.toString());
  });

  it('cancel: a queued task at once; a running one through a stop message, delivered once and in order', async () => {
    const queued = (await create(['x'])).task;
    const r1 = await transaction(pool, (tx) => requestTaskCancel(tx, queued.id, new Date(), 'tester'));
    expect(r1.changed).toBe(true);
    expect(r1.task?.state).toBe('canceled');
    const again = await transaction(pool, (tx) => requestTaskCancel(tx, queued.id, new Date()));
    expect(again.changed).toBe(false); // a cancel that changes nothing says so

    scripts.set('server', { steps: [{ out: 'listening\n' }], hang: true });
    const t = (await create(['server'])).task;
    const running = reaches(t.id, ['running']);
    await startWorkers();
    await running;
    await transaction(pool, (tx) => sendTaskSignal(tx, t.id, 'SIGUSR1'));
    const canceled = reaches(t.id, ['canceled']);
    await transaction(pool, (tx) => requestTaskCancel(tx, t.id, new Date(), 'tester'));
    await canceled;
    expect(runner.applied(t.id).map((m) => [m.seq, m.kind])).toEqual([
      [1, 'start'],
      [2, 'signal'],
      [3, 'stop'],
    ]);
    expect((await getTask(pool, t.id))?.state).toBe('canceled');
    expect((await getTask(pool, queued.id))?.state).toBe('canceled');
    expect(runner.applied(queued.id)).toEqual([]); // never started
  });

  it('the driver of a running task delivers messages no delivery job got to (none runs here)', async () => {
    scripts.set('server', { steps: [{ out: 'up\n' }], hang: true });
    const t = (await create(['server'])).task;
    const running = reaches(t.id, ['running']);
    await startWorkers(30_000, 'task.run');
    await running;
    const canceled = reaches(t.id, ['canceled']);
    await transaction(pool, (tx) => requestTaskCancel(tx, t.id, new Date(), 'tester'));
    await canceled;
    expect(runner.applied(t.id).map((m) => m.kind)).toEqual(['start', 'stop']);
    const { rows } = await pool.query(`SELECT kind, state FROM jobs`);
    expect(rows).toEqual([{ kind: 'task.deliver', state: 'ready' }]); // nobody here handles it
  });

  it('a task whose worker died mid-run is resumed by another from the stored log offset: no gap, no duplicate', async () => {
    scripts.set('job', { steps: [{ out: 'aaaa' }, { out: 'bbbb' }, { out: 'cccc' }], exitCode: 0 });
    const { task } = await create(['job']);
    // The first worker claims the job, starts the task and stores part of its output, then dies.
    const t0 = new Date();
    const [job] = await claimJobs(pool, {
      workerId: 'dead-worker',
      now: t0,
      leaseMs: 1000,
      limit: 1,
      kinds: ['task.run'],
    });
    expect(job?.kind).toBe('task.run');
    await transaction(pool, (tx) =>
      transitionTask(tx, task.id, {
        to: 'provisioning',
        now: t0,
        workerId: 'dead-worker',
        deadlineAt: new Date(t0.getTime() + 60_000),
      }),
    );
    const { appliedSeq } = await runner.deliver(
      { id: task.id, command: ['job'], env: {}, environmentId: null, launchSource: 'api', secretNames: null },
      [{ seq: 1, kind: 'start', body: {} }],
    );
    expect(appliedSeq).toBe(1);
    await transaction(pool, (tx) =>
      transitionTask(tx, task.id, { to: 'running', now: t0, workerId: 'dead-worker', node: 'fake-node' }),
    );
    await transaction(pool, (tx) => appendLogChunk(tx, task.id, 0, Buffer.from('aaaa')));
    // It dies before acknowledging seq 1; the next worker redelivers it and the receiver ignores it.

    expect(await reapExpiredLeases(pool, { now: () => new Date(t0.getTime() + 5000) }, 'reaper')).toEqual({
      requeued: 1,
      dead: 0,
    });
    const done = reaches(task.id, ['succeeded', 'failed']);
    await startWorkers();
    await done;
    expect((await readLog(pool, task.id, 0)).data.toString()).toBe('aaaabbbbcccc');
    expect(runner.applied(task.id).map((m) => m.seq)).toEqual([1]);
    const events = await listTaskEvents(pool, task.id);
    expect(events.map((e) => e.worker_id)).toEqual([null, 'dead-worker', 'dead-worker', workers!.workerId]);
  });

  it('log chunks are fenced by offset: a stale writer cannot store the same bytes twice', async () => {
    const { task } = await create(['x']);
    await transaction(pool, (tx) => appendLogChunk(tx, task.id, 0, Buffer.from('hello ')));
    await expect(
      transaction(pool, (tx) => appendLogChunk(tx, task.id, 0, Buffer.from('hello '))),
    ).rejects.toBeInstanceOf(LogOffsetConflictError);
    await transaction(pool, (tx) => appendLogChunk(tx, task.id, 6, Buffer.from('world')));
    expect((await readLog(pool, task.id, 3)).data.toString()).toBe('lo world');
  });
});
