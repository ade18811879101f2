import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ackMessages,
  createPool,
  createTask,
  sendTaskSignal,
  transaction,
  transitionTask,
  type Pool,
} from '@berth/db';
import { createTestDatabase, openConnections, type TestDatabase } from '@berth/db/testing';
import { randomBetween, spawnFixture, until, type Child } from './helpers.js';

const BATCHES = 40;
const PER_BATCH = 5;

describe('task control messages across crashes (real processes, SIGKILL)', () => {
  let db: TestDatabase;
  let pool: Pool;
  let taskId: string;
  const children: Child[] = [];

  beforeEach(async () => {
    db = await createTestDatabase();
    pool = createPool(db.url, 4);
    await pool.query(
      `CREATE TABLE receiver_state (task_id uuid PRIMARY KEY, applied_seq integer NOT NULL, redeliveries integer NOT NULL DEFAULT 0)`,
    );
    // No unique constraint: a message applied twice must show up, not be hidden by an error.
    await pool.query(
      `CREATE TABLE receiver_applied (id bigserial PRIMARY KEY, task_id uuid NOT NULL, seq integer NOT NULL, kind text NOT NULL)`,
    );
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO users (email, role) VALUES ('m@example.com', 'member') RETURNING id`,
    );
    // A task already started: its `start` (seq 1) was applied and acknowledged, as task.run does.
    taskId = await transaction(pool, async (tx) => {
      const { task } = await createTask(
        tx,
        { ownerId: rows[0]!.id, command: ['sleep', 'infinity'], timeoutSeconds: 3600 },
        new Date(),
      );
      await transitionTask(tx, task.id, { to: 'provisioning', now: new Date() });
      await transitionTask(tx, task.id, { to: 'running', now: new Date() });
      await ackMessages(tx, task.id, 1, new Date());
      await tx.query(`DELETE FROM jobs WHERE kind = 'task.run'`);
      await tx.query(`INSERT INTO receiver_state (task_id, applied_seq) VALUES ($1, 1)`, [task.id]);
      return task.id;
    });
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await c.exited;
    }
    await pool.end();
    await until(
      async () => (await openConnections(inject('pgAdminUrl'), db.name)) === 0,
      'connections to close',
      10_000,
    );
    await db.drop();
  });

  const spawnWorker = () => {
    const c = spawnFixture('message-worker.ts', {
      ENGINE_TEST_CONFIG: JSON.stringify({
        url: db.url,
        leaseMs: 1200,
        maxPauseMs: 15,
        receiverFailRate: 0.03,
      }),
    });
    children.push(c);
    return c;
  };

  /** Writes a batch of signals the way the API does: each in the transaction that causes it. */
  const writeBatch = (b: number) =>
    transaction(pool, async (tx) => {
      for (let i = 0; i < PER_BATCH; i++) await sendTaskSignal(tx, taskId, `SIGUSR${1 + ((b + i) % 2)}`);
    });

  it('messages written before any worker runs, and while workers are killed mid-delivery, are each applied once, in order', async () => {
    // Crash between write and delivery: written and committed, no worker alive to deliver.
    for (let b = 0; b < 5; b++) await writeBatch(b);

    const live: Child[] = [spawnWorker(), spawnWorker()];
    await Promise.all(live.map((c) => c.ready));
    let kills = 0;
    for (let b = 5; b < BATCHES; b++) {
      await writeBatch(b);
      await sleep(randomBetween(20, 120));
      if (b % 7 === 3) {
        // Kill a worker wherever it is: before delivering, between the receiver applying and the
        // ack being recorded, or in the ack transaction.
        const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0]!;
        victim.proc.kill('SIGKILL');
        await victim.exited;
        kills++;
        const fresh = spawnWorker();
        live.push(fresh);
        void fresh.ready.catch(() => undefined);
      }
    }
    expect(kills).toBeGreaterThanOrEqual(4);
    await Promise.all(live.map((c) => c.ready));

    const total = 1 + BATCHES * PER_BATCH;
    await until(async () => {
      const { rows } = await pool.query<{ acked: number }>(
        `SELECT acked_message_seq AS acked FROM tasks WHERE id = $1`,
        [taskId],
      );
      return rows[0]!.acked === total;
    }, 'every message to be acknowledged').catch(async (e) => {
      // Diagnostics for a failure: the queue, the receiver, the workers' stderr.
      console.log(
        JSON.stringify(
          (
            await pool.query(
              `SELECT id, kind, state, attempts, locked_by, left(last_error, 200) AS e FROM jobs LIMIT 20`,
            )
          ).rows,
        ),
      );
      console.log(
        JSON.stringify(
          (
            await pool.query(
              `SELECT t.acked_message_seq, t.last_message_seq, r.applied_seq, r.redeliveries FROM tasks t, receiver_state r`,
            )
          ).rows,
        ),
      );
      for (const c of live) console.log(c.stderr().slice(-3000));
      throw e;
    });

    // Applied exactly once each, in sequence order, with nothing skipped.
    const { rows: applied } = await pool.query<{ seq: number }>(
      `SELECT seq FROM receiver_applied WHERE task_id = $1 ORDER BY id`,
      [taskId],
    );
    expect(applied.map((r) => r.seq)).toEqual(Array.from({ length: total - 1 }, (_, i) => i + 2));
    const { rows: unacked } = await pool.query(
      `SELECT seq FROM task_messages WHERE task_id = $1 AND acked_at IS NULL`,
      [taskId],
    );
    expect(unacked).toEqual([]);
    // The crash windows were really hit: the receiver was handed messages it had already applied.
    const { rows: st } = await pool.query<{ redeliveries: number }>(
      `SELECT redeliveries FROM receiver_state WHERE task_id = $1`,
      [taskId],
    );
    expect(st[0]!.redeliveries).toBeGreaterThan(0);

    for (const c of live) c.proc.kill('SIGTERM');
    for (const c of live) expect(await c.exited).toEqual({ code: 0, signal: null });
  });
});
