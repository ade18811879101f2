export * from './embedded.js';
export * from './migrate.js';
export * from './pool.js';
export * from './url.js';
export * from './queue/index.js';
export * from './tasks/index.js';
