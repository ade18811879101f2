#!/usr/bin/env node
// The CLI runs its TypeScript sources directly through tsx, with the repo's compiler options
// (NestJS needs legacy decorators), whatever directory it is started from.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';

register({ tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) });
const { main } = await import('../src/main.ts');
await main(process.argv);
// Some dependencies hook process exit and would turn a failure into exit code 0 on the way
// out; a failed command leaves now, with its code (stdio to pipes and files is synchronous).
if (process.exitCode) process.exit(process.exitCode);
