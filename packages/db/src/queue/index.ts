export * from './jobs.js';
export * from './listener.js';
export * from './metrics.js';
export * from './worker.js';
export { NOTIFY_CHANNEL } from './sql.js';
export * from './tracing.js';
