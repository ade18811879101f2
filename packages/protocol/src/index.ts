export * from './errors.js';
export * from './gateway.js';
