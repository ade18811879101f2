import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Pool } from '../pool.js';
import { queueDepth } from './jobs.js';

/** What a WorkerPool reports; all optional so a pool runs the same without metrics. */
export interface QueueMetrics {
  claimLatency: Histogram<'kind'>;
  jobDuration: Histogram<'kind' | 'outcome'>;
  retries: Counter<'kind'>;
  deadJobs: Counter<'kind' | 'reason'>;
  leasesReaped: Counter<'outcome'>;
}

/**
 * Registers the queue metrics on the given registry (the control plane owns `/metrics`). Queue
 * depth is read from the table at scrape time, so it is right whichever process did the work.
 * Call once per registry; pass the result to every WorkerPool in the process.
 */
export function registerQueueMetrics(registry: Registry, pool: Pool): QueueMetrics {
  new Gauge({
    name: 'berth_jobs_queue_depth',
    help: 'Jobs in the queue by state (ready, running, dead)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const depth = await queueDepth(pool);
      for (const [state, n] of Object.entries(depth)) this.set({ state }, n);
    },
  });
  const seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
  return {
    claimLatency: new Histogram({
      name: 'berth_jobs_claim_latency_seconds',
      help: 'From when a job became runnable (run_at) to when a worker claimed it',
      labelNames: ['kind'],
      buckets: seconds,
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'berth_jobs_duration_seconds',
      help: 'Handler run time including its completion transaction',
      labelNames: ['kind', 'outcome'],
      buckets: seconds,
      registers: [registry],
    }),
    retries: new Counter({
      name: 'berth_jobs_retries_total',
      help: 'Failed attempts scheduled for another try',
      labelNames: ['kind'],
      registers: [registry],
    }),
    deadJobs: new Counter({
      name: 'berth_jobs_dead_total',
      help: 'Jobs marked dead (attempts used up, permanent error, or invalid payload)',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    leasesReaped: new Counter({
      name: 'berth_jobs_leases_reaped_total',
      help: 'Expired leases taken back by the reaper',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
