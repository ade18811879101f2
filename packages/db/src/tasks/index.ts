export * from './repository.js';
export * from './runner.js';
export * from './engine.js';
