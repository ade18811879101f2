#!/usr/bin/env node
// Builds the web app's static export only when its sources changed since the last build.
// "Changed" is a hash of the sources' contents (not mtimes, which a fresh clone or a branch
// switch resets), stored in out/.source-hash. Used by the root `prepare` script (so `npm ci`
// leaves a built app) and by the browser tests' setup. Concurrent callers wait on a flock.
//   --optional  never fail: print a warning instead (an install must not break on the web build)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(web, 'out');
const stampFile = join(out, '.source-hash');
const optional = process.argv.includes('--optional');
// The terminal client and the protocol it speaks are bundled into the app too.
const SOURCES = [
  'app',
  'components',
  'lib',
  'public',
  'next.config.mjs',
  'package.json',
  'tsconfig.json',
  '../../packages/terminal/src',
  '../../packages/protocol/src',
];

function fail(msg) {
  if (optional) {
    console.warn(
      `warning: ${msg}; the control plane will show "web app not built" until \`npm run build:web\` succeeds`,
    );
    process.exit(0);
  }
  console.error(msg);
  process.exit(1);
}

// One build at a time across processes: re-run this script under flock(1) (util-linux).
if (!process.env.BERTH_WEB_BUILD_LOCKED) {
  const r = spawnSync('flock', [join(web, '.build.lock'), process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BERTH_WEB_BUILD_LOCKED: '1' },
  });
  if (r.error) fail(`could not run flock: ${r.error.message}`);
  if (r.status !== 0) fail(`the web build exited ${r.status ?? r.signal}`);
  process.exit(0);
}

function files(p) {
  if (!existsSync(p)) return [];
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => files(join(p, e.name)));
}

const require = createRequire(join(web, 'package.json'));
let nextBin;
try {
  nextBin = require.resolve('next/dist/bin/next');
} catch {
  fail('next is not installed: run `npm ci` at the repository root');
}
const hash = createHash('sha256');
hash.update(`next ${JSON.parse(readFileSync(require.resolve('next/package.json'), 'utf8')).version}\n`);
for (const f of SOURCES.flatMap((s) => files(join(web, s))).filter((f) => !f.endsWith('.test.ts'))) {
  hash.update(`${relative(web, f)}\n`);
  hash.update(readFileSync(f));
}
const want = hash.digest('hex');
const have = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : '';
if (have === want && existsSync(join(out, 'index.html'))) {
  console.log('web app is up to date (apps/web/out)');
  process.exit(0);
}

console.log('building the web app (apps/web/out)…');
const started = Date.now();
const r = spawnSync(process.execPath, [nextBin, 'build', '--webpack'], {
  cwd: web,
  stdio: 'inherit',
  env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
});
if (r.status !== 0) fail(`the web build failed (exit ${r.status ?? r.signal})`);
writeFileSync(stampFile, `${want}\n`);
console.log(`web app built in ${Math.round((Date.now() - started) / 1000)} s`);
