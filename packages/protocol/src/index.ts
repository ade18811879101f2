export * from './errors.js';
export * from './gateway.js';
export * from './jobs.js';
export * from './terminal.js';
export * from './environments.js';
export * from './environment-jobs.js';
export * from './webhooks.js';
export * from './exec.js';
