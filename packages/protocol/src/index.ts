export * from './errors.js';
export * from './gateway.js';
export * from './jobs.js';
export * from './terminal.js';
